"""Running ``fluoroscope daemon`` as a user would, for the daemon's tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from tests.support import HEADER, free_port


@dataclass
class DaemonProcess:
    """A running ``fluoroscope daemon`` subprocess."""

    port: int
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/status", timeout=5) as response:
            return dict(json.loads(response.read()))

    def xray(self) -> Any:
        """A boto3 ``xray`` client pointed at the daemon's TCP port (the sampling proxy)."""
        return boto3.client(
            "xray",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    def send(self, *payloads: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            for payload in payloads:
                sock.sendto(payload, ("127.0.0.1", self.port))

    def send_documents(self, docs: list[dict[str, Any]], pace: int = 200) -> None:
        """Send ``docs`` as datagrams, waiting every ``pace`` until the daemon has read
        them (a loaded machine must not overflow the socket buffer)."""
        base = self.status()["received"]
        for start in range(0, len(docs), pace):
            chunk = docs[start : start + pace]
            self.send(*(HEADER + json.dumps(d).encode() for d in chunk))
            want = base + start + len(chunk)
            deadline = time.monotonic() + 30
            while self.status()["received"] < want:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the daemon read {self.status()['received']} of {want}")
                time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> str:
        """Stop the daemon with ``sig`` and return everything it printed."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        self.output.append(out or "")
        return "".join(self.output)


def start_daemon(server_url: str, buffer_dir: Path, *extra: str, port: int | None = None,
                 env: dict[str, str] | None = None) -> DaemonProcess:  # fmt: skip
    """Start ``fluoroscope daemon`` and wait until its ``/status`` answers."""
    port = port or free_port()
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("FLUOROSCOPE_", "AWS_"))
    }
    environment.update(env or {})
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "daemon", "--server", server_url,
         "--listen", f"127.0.0.1:{port}", "--buffer-dir", str(buffer_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )  # fmt: skip
    daemon = DaemonProcess(port, proc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited early:\n{daemon.stop()}")
        try:
            daemon.status()
            return daemon
        except OSError:
            time.sleep(0.05)
    daemon.stop()
    raise RuntimeError("daemon did not come up within 60 s")
