"""Emitters: where closed segments go (DESIGN §6: ``Emitter.emit/flush/close``).

:class:`UDPEmitter` sends each document as one datagram
``{"format":"json","version":1}\\n<doc>`` to the X-Ray daemon address (our server
listens there too). ``emit`` only appends to a bounded queue; a daemon thread,
started on first use, wakes every ``interval`` seconds (or sooner when the queue
fills up), serializes and sends. Serialization therefore happens off the request
path, and a slow or absent daemon never blocks the application.

:class:`InMemoryEmitter` serializes synchronously with the same code and keeps the
documents, for users' own tests.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import os
import socket
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

from fluoroscope.sdk._entities import Entity, InProgress
from fluoroscope.sdk._errors import ConfigurationError
from fluoroscope.sdk._log import logger, warn_once
from fluoroscope.sdk._serialize import DAEMON_HEADER, encode

__all__ = [
    "DEFAULT_DAEMON_ADDRESS",
    "DaemonAddress",
    "Emitter",
    "InMemoryEmitter",
    "UDPEmitter",
    "parse_daemon_address",
]

DEFAULT_DAEMON_ADDRESS: Final = "127.0.0.1:2000"
_HELP_BATCH: Final = 64


@runtime_checkable
class Emitter(Protocol):
    """Receives closed entities and delivers them somewhere.

    ``emit`` is called from application threads and tasks, often on the request
    path: it must be cheap, must not block for long and must never raise. The
    emitter owns what it is given (the caller will not touch it again).
    ``flush`` delivers everything emitted so far, waiting at most ``timeout``
    seconds, and says whether it got everything out; ``close`` flushes and releases
    resources; both may be called from any thread and never raise.
    """

    def emit(self, item: Entity | InProgress) -> None: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def close(self, timeout: float | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class DaemonAddress:
    """Where the daemon listens: UDP for documents, TCP for the sampling API."""

    udp: tuple[str, int]
    tcp: tuple[str, int]


def _host_port(text: str, original: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigurationError(
            f"daemon address {original!r}: expected host:port or 'tcp:host:port udp:host:port'"
        )
    return host, int(port)


def parse_daemon_address(value: str) -> DaemonAddress:
    """Parse ``host:port`` or ``tcp:host:port udp:host:port`` (either order).

    Raises :class:`ConfigurationError` for anything else.
    """
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"daemon address {value!r} is empty")
    parts = value.split()
    if len(parts) == 1 and not parts[0].lower().startswith(("tcp:", "udp:")):
        addr = _host_port(parts[0], value)
        return DaemonAddress(udp=addr, tcp=addr)
    found: dict[str, tuple[str, int]] = {}
    for part in parts:
        kind, sep, rest = part.partition(":")
        kind = kind.lower()
        if not sep or kind not in ("tcp", "udp") or kind in found:
            raise ConfigurationError(
                f"daemon address {value!r}: expected 'tcp:host:port udp:host:port'"
            )
        found[kind] = _host_port(rest, value)
    if set(found) != {"tcp", "udp"}:
        raise ConfigurationError(f"daemon address {value!r}: needs both tcp: and udp: parts")
    return DaemonAddress(udp=found["udp"], tcp=found["tcp"])


class UDPEmitter:
    """Sends documents to the daemon over UDP from a background thread.

    ``address`` is ``host:port``, the two-part ``tcp:… udp:…`` form, or a
    :class:`DaemonAddress`. At most ``max_queue`` items wait to be sent; beyond that,
    new items are dropped and counted (``stats()["dropped_queue_full"]``). The sender
    wakes every ``interval`` seconds, or as soon as ``wake_at`` items are waiting;
    past ``4 * wake_at`` waiting items, ``emit`` itself sends a small batch (at most
    64 documents) when the sender is not busy, so a backlog cannot grow unchecked.
    Nothing happens at construction: the thread and socket are created on first use.
    """

    def __init__(
        self,
        address: str | DaemonAddress = DEFAULT_DAEMON_ADDRESS,
        *,
        max_queue: int = 20_000,
        interval: float = 0.05,
        wake_at: int = 512,
    ) -> None:
        self.address = (
            address if isinstance(address, DaemonAddress) else parse_daemon_address(address)
        )
        self._max_queue = max_queue
        self._interval = interval
        self._wake_at = wake_at
        self._help_at = 4 * wake_at
        self._queue: collections.deque[Entity | InProgress] = collections.deque()
        self._wake = threading.Event()
        self._count_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._socket_lock = threading.Lock()
        self._inflight = 0
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._sockaddr: Any = None
        self._resolve_after = 0.0
        self._closed = False
        self._stopping = False
        self._atexit_hook: Any = None
        self.sent = 0
        self.dropped_queue_full = 0
        self.dropped_too_large = 0
        self.send_errors = 0

    # -- application side ------------------------------------------------------------

    def emit(self, item: Entity | InProgress) -> None:
        """Queue ``item`` for sending; O(1), never blocks, never raises."""
        queue = self._queue
        if len(queue) >= self._max_queue or self._closed:
            self.dropped_queue_full += 1
            warn_once(
                "udp-queue-full",
                "trace emitter queue is full or closed (%d items); dropping documents",
                self._max_queue,
            )
            return
        queue.append(item)
        if self._thread is None:
            self._start()
        elif len(queue) >= self._wake_at:
            if len(queue) >= self._help_at:
                self._help()
            else:
                self._wake.set()

    def flush(self, timeout: float | None = 2.0) -> bool:
        """Send everything queued now, in the calling thread, within ``timeout`` seconds.

        Returns True when the queue was emptied. Never raises.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        return self._drain(deadline)

    def close(self, timeout: float | None = 2.0) -> None:
        """Flush, stop the sender thread and close the socket (idempotent)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._closed = True
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        self._drain(deadline)
        if self._atexit_hook is not None:
            atexit.unregister(self._atexit_hook)
            self._atexit_hook = None
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def stats(self) -> dict[str, int]:
        """Counters: documents ``sent``, items dropped, send errors, items ``queued``."""
        return {
            "sent": self.sent,
            "queued": len(self._queue),
            "dropped_queue_full": self.dropped_queue_full,
            "dropped_too_large": self.dropped_too_large,
            "send_errors": self.send_errors,
        }

    # -- sender side -----------------------------------------------------------------

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="fluoroscope-udp-emitter", daemon=True)
            ref = weakref.ref(self)

            def at_exit() -> None:
                emitter = ref()
                if emitter is not None:
                    emitter.flush(1.0)

            def after_fork() -> None:
                emitter = ref()
                if emitter is not None:
                    emitter._reset_after_fork()

            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down: send inline instead
                self._drain(time.monotonic() + 1.0)
                return
            self._thread = thread
            self._atexit_hook = at_exit
            atexit.register(at_exit)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=after_fork)

    def _help(self) -> None:
        """Backlog: the emitting thread sends a bounded batch itself.

        Under CPU-bound load the sender thread gets the GIL back slowly after each
        send (the convoy effect); sending a batch here keeps the queue from filling
        up and dropping. Bounded (``_HELP_BATCH`` documents); takes no lock.
        """
        self._wake.set()
        for _ in range(_HELP_BATCH):
            if not self._send_next():
                break

    def _reset_after_fork(self) -> None:
        self._thread = None
        self._count_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._socket_lock = threading.Lock()
        self._inflight = 0
        self._wake = threading.Event()
        self._queue.clear()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def _run(self) -> None:
        wake = self._wake
        while not self._stopping:
            wake.wait(self._interval)
            wake.clear()
            self._drain(None)

    def _send_next(self) -> bool:
        """Pop and send one item; False when the queue was empty. Any thread may call it.

        ``_inflight`` counts items popped but not yet sent, so that ``flush`` can wait
        for what other threads are still sending.
        """
        with self._count_lock:
            self._inflight += 1
        try:
            try:
                item = self._queue.popleft()
            except IndexError:
                return False
            self._send(item)
            return True
        except Exception as exc:  # never let a sending thread die
            warn_once("udp-send-item", "trace emitter failed: %r", exc)
            return True
        finally:
            with self._count_lock:
                self._inflight -= 1

    def _drain(self, deadline: float | None) -> bool:
        """Send until the queue is empty and nothing is in flight, or the deadline passes."""
        monotonic = time.monotonic
        while self._send_next():
            if deadline is not None and monotonic() > deadline:
                return False
        while self._inflight > 0 or self._queue:
            if deadline is not None and monotonic() > deadline:
                return False
            if not self._send_next():
                time.sleep(0.0005)
        return True

    def _socket(self) -> socket.socket | None:
        if self._sock is not None:
            return self._sock
        with self._socket_lock:
            return self._sock or self._open_socket()

    def _open_socket(self) -> socket.socket | None:
        now = time.monotonic()
        if now < self._resolve_after:
            return None
        host, port = self.address.udp
        try:
            family, kind, proto, _, sockaddr = socket.getaddrinfo(
                host, port, type=socket.SOCK_DGRAM
            )[0]
            sock = socket.socket(family, kind, proto)
            sock.settimeout(0.2)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        except OSError as exc:
            self._resolve_after = now + 5.0
            warn_once("udp-resolve", "cannot reach trace daemon at %s:%d: %s", host, port, exc)
            return None
        self._sockaddr = sockaddr
        self._sock = sock
        return sock

    def _send(self, item: Entity | InProgress) -> None:
        documents, dropped = encode(item)
        self.dropped_too_large += dropped
        sock = self._socket()
        if sock is None:
            self.send_errors += len(documents)
            return
        for doc in documents:
            try:
                sock.sendto(DAEMON_HEADER + doc, self._sockaddr)
                self.sent += 1
            except OSError as exc:
                self.send_errors += 1
                warn_once(
                    "udp-send",
                    "cannot send traces to %s:%d (%s); further errors are counted, not logged",
                    *self.address.udp,
                    exc,
                )

    def __repr__(self) -> str:
        host, port = self.address.udp
        return f"UDPEmitter({host}:{port})"


class InMemoryEmitter:
    """Keeps every emitted document (as parsed JSON) in memory, for tests.

    ``emit`` serializes synchronously with the same encoder the UDP emitter uses,
    so ``documents`` is exactly what would have been sent (one entry per datagram).
    Thread-safe. ``payloads`` has the raw datagram bytes (header included).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._payloads: list[bytes] = []
        self.dropped_too_large = 0

    def emit(self, item: Entity | InProgress) -> None:
        """Serialize ``item`` now and keep its documents. Never raises."""
        try:
            documents, dropped = encode(item)
        except Exception:  # pragma: no cover - encode never raises
            logger.exception("in-memory emitter failed")
            return
        with self._lock:
            self.dropped_too_large += dropped
            self._payloads.extend(DAEMON_HEADER + doc for doc in documents)

    @property
    def payloads(self) -> list[bytes]:
        """The raw datagrams, in emission order (a copy)."""
        with self._lock:
            return list(self._payloads)

    @property
    def documents(self) -> list[dict[str, Any]]:
        """Every document, parsed, in emission order (fresh objects each call)."""
        return [json.loads(p.split(b"\n", 1)[1]) for p in self.payloads]

    def segments(self) -> list[dict[str, Any]]:
        """The segment documents (not the independently sent subsegments)."""
        return [d for d in self.documents if d.get("type") != "subsegment"]

    def subsegments(self) -> list[dict[str, Any]]:
        """Every subsegment, embedded or independent, flattened, in document order."""
        found: list[dict[str, Any]] = []

        def walk(entity: dict[str, Any]) -> None:
            for child in entity.get("subsegments", ()):
                found.append(child)
                walk(child)

        for doc in self.documents:
            if doc.get("type") == "subsegment":
                found.append(doc)
            walk(doc)
        return found

    def clear(self) -> None:
        """Forget everything emitted so far."""
        with self._lock:
            self._payloads.clear()

    def flush(self, timeout: float | None = None) -> bool:
        """Nothing is ever pending; returns True."""
        return True

    def close(self, timeout: float | None = None) -> None:
        """Nothing to release."""
        return None
