"""Fixtures for the SDK tests: a real UDP "daemon" on loopback that checks every datagram.

Every datagram the tests receive is checked for the daemon header line, the size
limit, and against :func:`fluoroscope.model.documents.validate_document`.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fluoroscope.model.documents import validate_document
from fluoroscope.sdk import Tracer
from fluoroscope.sdk import _tracer as _tracer_module
from fluoroscope.sdk._context import CURRENT
from fluoroscope.sdk._log import reset_warnings

MAX_DATAGRAM = 64 * 1024


class UDPDaemon:
    """Receives datagrams on 127.0.0.1 in a thread; parses and validates them."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.datagrams: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(1 << 17)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.datagrams.append(data)

    def documents(
        self,
        count: int = 1,
        timeout: float = 5.0,
        until: Callable[[list[dict[str, Any]]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` documents arrived (and ``until`` holds); return all, checked."""
        deadline = time.monotonic() + timeout
        while True:
            docs = self._parsed()
            if len(docs) >= count and (until is None or until(docs)):
                return docs
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} documents, got {len(docs)}: {docs!r:.2000}")
            time.sleep(0.01)

    def quiet(self, wait: float = 0.3) -> list[dict[str, Any]]:
        """Everything received after ``wait`` seconds (for 'nothing was sent' checks)."""
        time.sleep(wait)
        return self._parsed()

    def _parsed(self) -> list[dict[str, Any]]:
        with self._lock:
            raw = list(self.datagrams)
        docs = []
        now = time.time()
        for data in raw:
            assert len(data) < MAX_DATAGRAM, f"datagram of {len(data)} bytes"
            header, sep, body = data.partition(b"\n")
            assert sep, "datagram without a header line"
            assert json.loads(header) == {"format": "json", "version": 1}
            doc = json.loads(body)
            validate_document(doc, now=now)
            docs.append(doc)
        return docs

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def flatten(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every entity in ``docs`` by id; each gets ``_parent`` (its parent's id or None)."""
    found: dict[str, dict[str, Any]] = {}

    def walk(entity: dict[str, Any], parent: str | None) -> None:
        assert entity["id"] not in found, f"entity {entity['id']} sent twice"
        found[entity["id"]] = {**entity, "_parent": parent}
        for child in entity.get("subsegments", ()):
            walk(child, entity["id"])

    for doc in docs:
        walk(doc, doc.get("parent_id") if doc.get("type") == "subsegment" else None)
    return found


def by_name(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Entities by name (names must be unique in the test)."""
    out: dict[str, dict[str, Any]] = {}
    for entity in flatten(docs).values():
        assert entity["name"] not in out, f"name {entity['name']} is not unique"
        out[entity["name"]] = entity
    return out


@pytest.fixture
def daemon() -> Iterator[UDPDaemon]:
    d = UDPDaemon()
    yield d
    d.close()


@pytest.fixture
def tracer(daemon: UDPDaemon) -> Iterator[Tracer]:
    t = Tracer(service="test-svc", daemon_address=daemon.address, sampling=False)
    yield t
    t.close()


@pytest.fixture(autouse=True)
def _clean_state(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    reset_warnings()
    caplog.set_level(logging.WARNING, logger="fluoroscope.sdk")
    assert CURRENT.get() is None
    # a global tracer installed by a module imported earlier in this process (the demo's
    # functions call set_tracer) would carry its own context_missing policy into these tests
    installed = _tracer_module._global[:]
    _tracer_module._global.clear()
    yield
    _tracer_module._global[:] = installed
    assert CURRENT.get() is None, "a test leaked a current entity"
    reset_warnings()
