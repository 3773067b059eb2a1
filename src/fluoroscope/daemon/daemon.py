"""The per-host daemon: UDP segments in, batched, forwarded; sampling calls proxied.

:class:`Daemon` runs on one asyncio event loop (uvloop when available):

- **UDP** (``host:port``): each datagram is screened (:class:`~fluoroscope.daemon.screen.Screen`;
  garbage counted by reason and dropped) and its document joins the open batch. A batch is
  closed at ``batch_size`` documents, ``batch_bytes`` bytes, or ``flush_seconds`` after its
  first document, and goes into the :class:`~fluoroscope.daemon.spool.Spool` (memory, then
  disk; a batch that finds no room is dropped, counted as ``buffer_full``).
- **Senders** (``concurrency`` of them) take batches from the spool, oldest first, and
  hand them to the :class:`~fluoroscope.daemon.forward.Forwarder`; when several batches
  wait (catching up after an outage), consecutive ones go as one request of up to
  ``catch_up_size`` documents and ``catch_up_bytes`` (the server takes 1,000 documents
  per call; a call waits until its documents are stored, so more per call is what lets a
  backlog drain). Besides the spool, at most ``concurrency`` + 1 such requests are held
  (in flight, or taken and next). A retryable failure is retried with :func:`~fluoroscope.daemon.forward.backoff` while the server is away or
  busy, for as long as it takes; a batch the server answers with a 5xx
  ``max_attempts`` times is dropped (``server_error``); a fatal answer drops the batch
  (``refused_by_server``); documents listed in ``UnprocessedTraceSegments`` are dropped
  (``rejected_by_server``), never retried.
- **TCP** (the same ``host:port``): ``POST /GetSamplingRules`` and ``POST
  /SamplingTargets`` are forwarded to the server (authenticated as PutTraceSegments is) and
  its answer returned; ``GET /status`` answers :meth:`Daemon.stats`. Requests with an
  ``Origin`` header or a ``Host`` that is not an address, ``localhost`` or this host's name
  are refused (a web page must not reach the server through the daemon).

Stopping (:meth:`Daemon.run` returns once ``stop`` is set): receiving ends, the open
batch is closed, and the senders go on for up to ``drain_seconds`` while the server takes
batches; then batches cut short are put back, and everything still held is written to the
spool's directory, to be sent first by the next daemon started on it (``left_on_disk``).
Without a directory, or with no room left there, the rest is counted as dropped
(``shutdown``). So at the end: ``received + restored = invalid + forwarded + dropped +
left_on_disk``, which :meth:`Daemon.stop_line` states.

Everything runs on the loop's thread; :meth:`Daemon.stats` may be read from it only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from fluoroscope.daemon.forward import Credentials, Forwarder, HttpForwarder, backoff
from fluoroscope.daemon.screen import INVALID_REASONS, Screen, kernel_drops, open_udp
from fluoroscope.daemon.spool import Spool

__all__ = ["Daemon", "DaemonSettings"]

log = logging.getLogger("fluoroscope.daemon")

MIB: Final = 1024 * 1024
_PROXIED: Final = ("/GetSamplingRules", "/SamplingTargets")
_MAX_PROXY_BODY: Final = 1 * MIB


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """What a :class:`Daemon` is told (``fluoroscope daemon``'s flags, resolved)."""

    server: str
    host: str = "127.0.0.1"
    port: int = 2000
    buffer_dir: Path | None = None
    memory_bytes: int = 64 * MIB
    disk_bytes: int = 1024 * MIB
    batch_size: int = 50
    batch_bytes: int = 1 * MIB
    catch_up_size: int = 500
    catch_up_bytes: int = 4 * MIB
    flush_seconds: float = 0.2
    concurrency: int = 8
    drain_seconds: float = 5.0
    max_attempts: int = 5
    timeout: float = 30.0
    credentials: Credentials = field(default_factory=Credentials)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, take: Callable[[bytes], None]) -> None:
        self._take = take

    def datagram_received(self, data: bytes, addr: object) -> None:
        self._take(data)


class Daemon:
    """See the module docstring. Create, :meth:`bind` (raises OSError when the address is
    taken), then ``await`` :meth:`run` on the loop that will serve it."""

    def __init__(self, settings: DaemonSettings, forwarder: Forwarder | None = None) -> None:
        self.settings = settings
        self._http = HttpForwarder(
            settings.server,
            settings.credentials,
            timeout=settings.timeout,
            connections=settings.concurrency,
        )
        self.forwarder: Forwarder = forwarder or self._http
        self.spool = Spool(settings.memory_bytes, settings.buffer_dir, settings.disk_bytes)
        self.counters: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()  # documents the server refused, by ErrorCode
        self.screen = Screen()
        self._batch: list[bytes] = []
        self._batch_size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._work = asyncio.Event()
        self._closing = False
        self._hurry = False
        self._stopped = False
        self._in_flight: dict[int, list[bytes]] = {}
        self._carry: list[bytes] | None = None  # taken from the spool, next to send
        self.reachable: bool | None = None
        self._udp_sock: socket.socket | None = None
        self._tcp_sock: socket.socket | None = None
        self._kernel_base = self._kernel_last = 0
        self.left_on_disk = 0
        self.started = time.time()

    # -- sockets ----------------------------------------------------------------------

    def bind(self) -> tuple[str, int]:
        """Bind UDP and TCP on the same ``host:port`` (port 0: any free one)."""
        host, port = self.settings.host, self.settings.port
        udp = open_udp(host, port)
        port = udp.getsockname()[1]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        tcp = socket.socket(family, socket.SOCK_STREAM)
        try:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind((host, port))
        except OSError:
            tcp.close()
            udp.close()
            raise
        self._udp_sock, self._tcp_sock = udp, tcp
        self._kernel_base = kernel_drops(udp) or 0
        return host, port

    # -- receiving and batching -------------------------------------------------------

    def _take(self, data: bytes) -> None:
        self.counters["received"] += 1
        body = self.screen.body(data)
        if body is None:
            return
        batch = self._batch
        batch.append(body)
        self._batch_size += len(body)
        if len(batch) >= self.settings.batch_size or self._batch_size >= self.settings.batch_bytes:
            self._close_batch()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                self.settings.flush_seconds, self._close_batch
            )

    def _close_batch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._batch:
            return
        batch, self._batch, self._batch_size = self._batch, [], 0
        if self.spool.put(batch):
            self._work.set()
        else:
            self.counters["dropped_buffer_full"] += len(batch)

    # -- sending ----------------------------------------------------------------------

    def _take_held(self) -> list[bytes] | None:
        """The oldest batch held, joined with those behind it up to ``catch_up_size``
        documents and ``catch_up_bytes`` (one request instead of many when behind)."""
        batch = self._carry or self.spool.get()
        self._carry = None
        if batch is None:
            return None
        size = sum(map(len, batch))
        limit, byte_limit = self.settings.catch_up_size, self.settings.catch_up_bytes
        while len(batch) < limit and size < byte_limit:
            more = self.spool.get()
            if more is None:
                break
            more_size = sum(map(len, more))
            if len(batch) + len(more) > limit or size + more_size > byte_limit:
                self._carry = more
                break
            batch = batch + more
            size += more_size
        return batch

    async def _next_batch(self) -> list[bytes] | None:
        while True:
            batch = self._take_held()
            if batch is not None:
                return batch
            if self._closing:
                return None
            self._work.clear()
            await self._work.wait()

    async def _sender(self, slot: int) -> None:
        while (batch := await self._next_batch()) is not None:
            self._in_flight[slot] = batch
            try:
                await self._deliver(batch)
            except Exception:  # a bug must cost this batch, not the sender
                log.exception("dropping a batch of %d", len(batch))
                self.counters["dropped_daemon_error"] += len(batch)
            del self._in_flight[slot]

    async def _deliver(self, batch: list[bytes]) -> None:
        attempts = failures = 0
        while True:
            result = await self.forwarder.forward(batch)
            if result.ok:
                if self.reachable is False:
                    log.warning("the server is back; sending what was buffered")
                self.reachable = True
                self.counters["forwarded"] += result.accepted
                for code, count in result.rejected.items():
                    self.rejected[code] += count
                    self.counters["dropped_rejected_by_server"] += count
                return
            if not result.retryable:
                log.warning("the server refused a batch of %d: %s", len(batch), result.detail)
                self.counters["dropped_refused_by_server"] += len(batch)
                return
            if result.unreachable:
                if self.reachable is not False:
                    log.warning(
                        "the server is away (%s); buffering", result.detail or result.reason
                    )
                self.reachable = False
            else:
                failures += 1
                if failures >= self.settings.max_attempts:
                    log.warning("dropping a batch of %d after %d failures: %s", len(batch),
                                failures, result.detail)  # fmt: skip
                    self.counters["dropped_server_error"] += len(batch)
                    return
            attempts += 1
            self.counters["retries"] += 1
            await asyncio.sleep(backoff(attempts))

    # -- running ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, ready: Callable[[], None] | None = None) -> None:
        """Serve until ``stop`` is set, then stop as the module docstring says."""
        import uvicorn

        if self._udp_sock is None or self._tcp_sock is None:
            self.bind()
        assert self._udp_sock is not None and self._tcp_sock is not None
        loop = asyncio.get_running_loop()
        if self.spool.docs:
            self._work.set()
        udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(self._take), sock=self._udp_sock)
        http = _QuietServer(
            uvicorn.Config(
                self._app(),
                lifespan="off",
                log_level="warning",
                access_log=False,
                http="httptools" if _has("httptools") else "h11",
                timeout_graceful_shutdown=2,
            )
        )
        http_task = asyncio.create_task(http.serve(sockets=[self._tcp_sock]))
        senders = [
            asyncio.create_task(self._sender(slot)) for slot in range(self.settings.concurrency)
        ]
        try:
            while not http.started and not http_task.done():
                await asyncio.sleep(0.01)
            if http_task.done():
                await http_task  # raises why it could not start
            if ready is not None:
                ready()
            await stop.wait()
        finally:
            self.kernel_dropped()
            udp.close()
            self._close_batch()
            await self._drain(senders)
            http.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(http_task, 5)
            await self._http.aclose()
            if self.forwarder is not self._http:
                await self.forwarder.aclose()

    def hurry(self) -> None:
        """End the drain now (a second stop signal)."""
        self._hurry = True

    async def _drain(self, senders: list[asyncio.Task[None]]) -> None:
        """Let the senders work for up to ``drain_seconds`` while the server takes
        batches; then keep or count what is left."""
        self._closing = True
        self._work.set()
        deadline = time.monotonic() + self.settings.drain_seconds
        while time.monotonic() < deadline and not all(task.done() for task in senders):
            if self.reachable is False or self._hurry:
                break  # the server is away: what is left goes to disk at once
            await asyncio.sleep(0.02)
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        cut_short = list(self._in_flight.values())
        if self._carry is not None:
            cut_short.append(self._carry)
            self._carry = None
        self._in_flight.clear()
        self.spool.put_front(cut_short)
        held = self.spool.docs
        lost = self.spool.close()
        self._stopped = True  # what the spool holds now is counted in left_on_disk
        self.left_on_disk = held - lost
        if lost:
            self.counters["dropped_shutdown"] += lost

    # -- the TCP side -------------------------------------------------------------------

    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        own_names = {"localhost", socket.gethostname().lower()}

        def foreign(request: Request) -> str | None:
            if request.headers.get("origin") is not None:
                return "requests from web pages (with an Origin header) are refused"
            host = request.headers.get("host", "").lower()
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            name = name.strip("[]")
            if name in own_names:
                return None
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return f"Host {host!r} is not this daemon's"
            return None

        def error(status: int, code: str, message: str) -> Response:
            return JSONResponse({"__type": code, "message": message}, status_code=status,
                                headers={"x-amzn-ErrorType": code})  # fmt: skip

        async def proxy(request: Request) -> Response:
            if why := foreign(request):
                return error(403, "AccessDeniedException", why)
            body = await request.body()
            if len(body) > _MAX_PROXY_BODY:
                return error(413, "InvalidRequestException", "request body too large")
            try:
                answer = await self._http.request(request.url.path, body)
            except Exception as exc:  # httpx errors: the server is away
                self.counters["proxy_failures"] += 1
                return error(502, "ServiceUnavailable", f"the server cannot be reached: {exc}")
            self.counters["proxied"] += 1
            headers = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() in ("content-type", "x-amzn-requestid", "x-amzn-errortype")
            }
            return Response(answer.content, status_code=answer.status_code, headers=headers)

        async def status(request: Request) -> Response:
            if why := foreign(request):
                return error(403, "AccessDeniedException", why)
            return JSONResponse(self.stats())

        routes = [Route(path, proxy, methods=["POST"]) for path in _PROXIED]
        routes.append(Route("/status", status, methods=["GET"]))
        return Starlette(routes=routes)

    # -- reporting --------------------------------------------------------------------

    def kernel_dropped(self) -> int:
        """Datagrams the kernel dropped on the socket since :meth:`bind` (0 if unknown;
        the last figure read once the socket is closed)."""
        if self._udp_sock is not None and self._udp_sock.fileno() >= 0:
            now = kernel_drops(self._udp_sock)
            if now is not None:
                self._kernel_last = max(0, now - self._kernel_base)
        return self._kernel_last

    def stats(self) -> dict[str, Any]:
        """Counters and buffer use, as ``GET /status`` shows them."""
        c = self.counters
        invalid = {reason: self.screen.invalid[reason] for reason in INVALID_REASONS}
        dropped = {k.removeprefix("dropped_"): v for k, v in c.items() if k.startswith("dropped_")}
        return {
            "received": c["received"],
            "restored": self.spool.restored_docs,
            "invalid": invalid,
            "forwarded": c["forwarded"],
            "dropped": {**dropped, "corrupt_on_disk": self.spool.corrupt_documents},
            "rejected_by_server": dict(self.rejected),
            "kernel_dropped": self.kernel_dropped(),
            "pending": {
                "batching": len(self._batch),
                "memory": self.spool.memory_docs,
                "disk": 0 if self._stopped else self.spool.disk_docs,
                "in_flight": sum(map(len, self._in_flight.values())) + len(self._carry or ()),
            },
            "left_on_disk": self.left_on_disk,
            "buffer": {
                "memory_bytes": self.spool.memory_used,
                "memory_limit": self.spool.memory_limit,
                "disk_bytes": self.spool.disk_used,
                "disk_limit": self.spool.disk_limit,
            },
            "retries": c["retries"],
            "proxied": c["proxied"],
            "server": {
                "url": self.settings.server,
                "reachable": self.reachable,
                "auth": self.settings.credentials.kind,
            },
            "uptime_seconds": round(time.time() - self.started, 3),
        }

    def stop_line(self) -> str:
        """One line that says what came in and where all of it went."""
        s = self.stats()
        invalid = sum(s["invalid"].values())
        dropped = {k: v for k, v in s["dropped"].items() if v}
        pending = sum(s["pending"].values())
        parts = [f"Stopped. Received {s['received']} datagrams"]
        if s["restored"]:
            parts[0] += f" (and {s['restored']} documents left on disk by the previous run)"
        parts.append(f"{invalid} invalid" + _reasons({k: v for k, v in s["invalid"].items() if v}))
        parts.append(f"forwarded {s['forwarded']} documents")
        if dropped:
            parts.append(f"dropped {sum(dropped.values())}" + _reasons(dropped))
        else:
            parts.append("dropped none")
        if s["left_on_disk"]:
            parts.append(
                f"left {s['left_on_disk']} on disk in {self.settings.buffer_dir} for the next start"
            )
        unaccounted = (
            s["received"] + s["restored"] - invalid - s["forwarded"]
            - sum(dropped.values()) - s["left_on_disk"] - pending
        )  # fmt: skip
        if unaccounted:
            parts.append(f"{unaccounted} unaccounted for")
        if s["kernel_dropped"]:
            parts.append(
                f"the kernel dropped {s['kernel_dropped']} datagrams before they were read"
            )
        return "; ".join(parts) + "."


def _reasons(counts: dict[str, int]) -> str:
    return f" ({', '.join(f'{k}: {v}' for k, v in sorted(counts.items()))})" if counts else ""


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


class _QuietServer:
    """uvicorn's server without its signal handling (the daemon owns SIGINT/SIGTERM)."""

    def __new__(cls, config: Any) -> Any:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        return Server(config)
