"""Fixtures for the outgoing-call instrumentations: real servers on loopback.

:class:`RecordingServer` is a threaded ``http.server`` on 127.0.0.1 that records
every request it receives (method, path, headers) and answers ``/status/<code>``
with that status (anything else: 200), so tests can check the header that really
arrived and the flags each status produces.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from fluoroscope.sdk.instrument import get_instrumentor

BODY = b"hello from loopback"


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lowered:
                return value
        return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self.server.received.append(Received(self.command, self.path, dict(self.headers.items())))
        status = 200
        parts = self.path.split("?", 1)[0].split("/")
        if len(parts) >= 3 and parts[1] == "status":
            status = int(parts[2])
        if status in (301, 302):
            self.send_response(status)
            self.send_header("Location", "/status/200")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def do_PUT(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    received: list[Received]


class RecordingServer:
    """A loopback HTTP server that records what it receives."""

    def __init__(self) -> None:
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.received = []
        self.port: int = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def received(self) -> list[Received]:
        return self.httpd.received

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    s = RecordingServer()
    yield s
    s.close()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens (connection refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


HTTP = ("requests", "httpx", "urllib3", "http.client", "aiohttp")


@pytest.fixture
def all_http() -> Iterator[None]:
    insts = [get_instrumentor(name) for name in (*HTTP, "botocore")]
    for inst in insts:
        assert inst is not None
        assert inst.instrument()
    yield
    for inst in insts:
        assert inst is not None
        inst.uninstrument()
        assert not inst.instrumented
