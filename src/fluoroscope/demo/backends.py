"""What the sample app calls: a local AWS emulator and a flaky "third-party" payments API.

* :class:`AwsEmulator` runs moto in server mode on loopback, in its own process with a
  clean environment (DynamoDB and S3 are what the app uses), and creates the app's
  table and bucket, seeded with a few orders — so neither the user's AWS configuration
  nor a real AWS endpoint is ever involved.
* :class:`PaymentsApi` is an HTTP server standing in for a SaaS dependency:
  ``POST /v1/charges`` and ``GET /v1/rates`` answer after a varied latency (mostly
  tens of ms, sometimes hundreds), with occasional 429 (rate limited) and 5xx.

The payments API serves from background daemon threads, moto from its own process;
``start``/``close`` belong to the owner. Neither is traced: they play services outside
the app.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

from fluoroscope.demo._env import app_environ

__all__ = ["AwsEmulator", "PaymentsApi"]


class AwsEmulator:
    """The app's AWS (moto with the table and bucket) in its own process; see
    :mod:`fluoroscope.demo._moto`. ``url`` is its endpoint once :meth:`start` returned.
    """

    def __init__(
        self,
        *,
        table: str,
        bucket: str,
        host: str = "127.0.0.1",
        region: str = "us-east-1",
        log: IO[str] | None = None,
    ) -> None:
        self.table = table
        self.bucket = bucket
        self.host = host
        self.region = region
        self._log = log
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until it is provisioned (seconds); RuntimeError if it fails."""
        proc = self._proc = subprocess.Popen(
            [sys.executable, "-m", "fluoroscope.demo._moto", self.host, self.table,
             self.bucket, self.region],
            stdin=subprocess.PIPE,  # closed when the demo exits: the emulator exits too
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            env=app_environ(self.region),
            text=True,
            start_new_session=True,
        )  # fmt: skip
        timer = threading.Timer(timeout, proc.kill)
        timer.daemon = True
        timer.start()
        try:
            line = proc.stdout.readline() if proc.stdout is not None else ""
        finally:
            timer.cancel()
        try:
            message = json.loads(line) if line else {}
        except ValueError:
            message = {}
        if not message.get("ready"):
            self.close()
            reason = message.get("error") or "no answer"
            raise RuntimeError(f"the local AWS emulator (moto) did not start: {reason}")
        self.url = f"http://{self.host}:{message['port']}"

    def close(self) -> None:
        """Stop it (bounded: killed if it does not exit within seconds)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class PaymentsApi:
    """The flaky payments API on ``host`` (a free port); ``fault_rate``/``throttle_rate`` in [0, 1]."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        fault_rate: float = 0.03,
        throttle_rate: float = 0.05,
        seed: int | None = None,
    ) -> None:
        self.fault_rate = fault_rate
        self.throttle_rate = throttle_rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), _payments_handler(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Serve in a background daemon thread."""
        threading.Thread(
            target=self._server.serve_forever, name="demo-payments", daemon=True
        ).start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def decide(self) -> tuple[float, int]:
        """(latency in seconds, status) for the next request."""
        with self._lock:
            r = self._random.random()
            latency = min(self._random.lognormvariate(-3.4, 0.7), 1.5)  # median ~33 ms
            if self._random.random() < 0.04:
                latency += self._random.uniform(0.3, 0.8)  # a slow call now and then
        if r < self.fault_rate:
            return latency, self._random.choice((500, 502, 503))
        if r < self.fault_rate + self.throttle_rate:
            return latency / 4, 429
        return latency, 200


def _payments_handler(api: PaymentsApi) -> type[BaseHTTPRequestHandler]:
    class PaymentsHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            latency, status = api.decide()
            time.sleep(latency)
            path = self.path.split("?", 1)[0]
            body: dict[str, Any]
            if status == 429:
                body = {"error": "rate_limited", "retry_after": 1}
            elif status >= 500:
                body = {"error": "upstream_unavailable"}
            elif path == "/v1/charges" and self.command == "POST":
                body = {"id": f"ch_{uuid.uuid4().hex[:20]}", "status": "succeeded"}
            elif path == "/v1/rates" and self.command == "GET":
                body = {"base": "USD", "EUR": 0.92, "GBP": 0.79, "JPY": 151.2}
            else:
                status, body = 404, {"error": "not_found"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return PaymentsHandler
