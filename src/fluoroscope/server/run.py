"""Running the server: one address, UDP segments and the HTTP API.

:func:`serve` opens the store, starts the ingest worker, binds UDP and TCP on the same
host and port, and runs until SIGINT or SIGTERM; then it stops accepting, stores
everything already accepted, and returns. Runs on uvloop when available. Datagrams are
read by a small process of its own (:mod:`fluoroscope.ingest.receiver`); everything
else runs in this one.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import uvicorn

from fluoroscope.ingest.pipeline import Pipeline
from fluoroscope.ingest.receiver import UdpReceiver
from fluoroscope.ingest.udp import open_udp_socket
from fluoroscope.server.app import ServerState, create_app
from fluoroscope.store.store import Store

__all__ = ["serve"]

log = logging.getLogger("fluoroscope.server")


class _Server(uvicorn.Server):
    """uvicorn, with SIGINT/SIGTERM left to us: uvicorn re-raises the signal after its
    shutdown, which would end the process before ingest has stored what it accepted."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_exit(self) -> None:
        self.should_exit = True


def _tcp_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def _serve(
    host: str,
    port: int,
    store: Store,
    retention_seconds: float,
    announce: Callable[[str], None],
    data_dir: Path,
) -> None:
    loop = asyncio.get_running_loop()
    pipeline = Pipeline(store, retention_seconds=retention_seconds)
    udp_sock = open_udp_socket(host, port)
    tcp_sock = _tcp_socket(host, port)
    receiver = UdpReceiver(udp_sock, pipeline.offer_datagrams)
    pipeline.start()
    receiver.start()
    state = ServerState(
        store=store,
        pipeline=pipeline,
        retention_seconds=retention_seconds,
        listener_counters=lambda: receiver.counters,
    )
    app = create_app(state)
    config = uvicorn.Config(
        app,
        http="httptools",
        loop="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.request_exit)
    display = f"[{host}]" if ":" in host else host
    announce(
        f"Fluoroscope is listening on udp://{display}:{port} (segments) and "
        f"http://{display}:{port} (X-Ray API)\nData directory: {data_dir}\n"
        f"Store: {store.database} ({'embedded chDB' if store.embedded else 'ClickHouse server'})"
    )
    try:
        await server.serve(sockets=[tcp_sock])
    finally:
        await asyncio.to_thread(receiver.stop)
        await asyncio.to_thread(pipeline.close)
        counters = Counter(receiver.counters) + pipeline.counters
        announce(f"Stopped. Stored {counters['stored_documents']} documents; " + _drops(counters))


def _drops(counters: dict[str, int]) -> str:
    dropped = {
        k: v for k, v in counters.items() if (k.startswith("dropped") or "invalid" in k) and v
    }
    if not dropped:
        return "nothing dropped."
    return "dropped: " + ", ".join(f"{k}={v}" for k, v in sorted(dropped.items())) + "."


def _tune_gc() -> None:
    """Keep the cyclic collector from stalling the UDP loop (process-wide; call once).

    Ingest keeps millions of long-lived objects (the trace cache) and allocates a few
    million more per second. With the default thresholds full collections ran every few
    seconds and each held the GIL for 0.3-1 s, longer than the socket buffer lasts
    (8 MiB, ~0.07 s at 50k datagrams/s), so datagrams were dropped by the kernel even at
    10k/s. Start-up objects are frozen out of collection, young generations keep their
    defaults, and full collections become rare (they still run: cycles are reclaimed).
    """
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100_000)


def serve(
    host: str,
    port: int,
    *,
    data_dir: Path,
    store_url: str,
    retention_days: int,
    announce: Callable[[str], None] = print,
) -> None:
    """Run the server until SIGINT/SIGTERM (blocking). See the module docstring."""
    store = Store.open(store_url, data_dir, retention_days)
    _tune_gc()
    # The UDP callbacks need the GIL for a few µs per datagram while the ingest worker
    # holds it for long stretches; a 0.5 ms switch interval (default 5 ms) hands it over
    # sooner. Measured with benchmarks/ingest.py at 10k/s offered: kernel drops 18 % -> 1.7 %
    # (throughput unchanged, ~5k/s; one run each on a noisy machine).
    sys.setswitchinterval(0.0005)
    try:
        try:
            import uvloop
        except ImportError:  # pragma: no cover - platforms without uvloop
            asyncio.run(_serve(host, port, store, retention_days * 86_400.0, announce, data_dir))
        else:
            uvloop.run(_serve(host, port, store, retention_days * 86_400.0, announce, data_dir))
    finally:
        with contextlib.suppress(Exception):
            store.close()
