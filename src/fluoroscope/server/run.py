"""Running the server: one address, UDP segments and the HTTP API.

:func:`serve` opens the store, starts the ingest workers, binds UDP and TCP (on the same
host and port unless told otherwise; HTTP behind the access policy of
:mod:`fluoroscope.server.auth`), and runs until SIGINT or SIGTERM; then it stops
accepting, stores everything already accepted, and returns. Runs on uvloop when available. Datagrams are
received in a process of their own, then parsed and merged in ``ingest_workers`` worker
processes, each owning a share of the traces (:mod:`fluoroscope.ingest.process`); this
one serves the API and owns the store.

Start-up checks come first, each failing with :class:`~fluoroscope.server.datadir.StartupError`
(one sentence naming the cause): the embedded store's data directory is made, checked
writable and locked (:mod:`fluoroscope.server.datadir`); then both addresses are bound
(a port in use is named with its protocol); only then is the store opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import faulthandler
import logging
import os
import signal
import socket
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Final

import uvicorn

from fluoroscope.ingest.heap import arrow_on_glibc, tune_gc
from fluoroscope.ingest.otlp import TranslateOptions, Translator
from fluoroscope.ingest.process import IngestProcess
from fluoroscope.ingest.threadnames import install as name_threads
from fluoroscope.ingest.udp import open_udp_socket
from fluoroscope.model.errors import StoreError
from fluoroscope.model.net import is_loopback
from fluoroscope.native import stale
from fluoroscope.server.app import ServerState, create_app
from fluoroscope.server.auth import AccessPolicy
from fluoroscope.server.datadir import StartupError, claim_data_dir
from fluoroscope.server.insights import InsightEvaluator
from fluoroscope.server.memory import MemoryReleaser
from fluoroscope.server.otlp import GrpcServer, OtlpLogSink, create_otlp_app
from fluoroscope.store.store import Store

__all__ = ["OtlpAddress", "StartupError", "serve"]

OtlpAddress = tuple[str, int, bool]
"""An OTLP listener's host, port, and whether it was asked for explicitly (then failing
to bind it is an error; the default's address taken is reported, and skipped)."""

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


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host or '*'}:{port}"


_SHARED_PORT_TRIES: Final = 50  # ports 0: tries at one port free for both TCP and UDP


def _bind(host: str, port: int, udp: tuple[str, int]) -> tuple[socket.socket, socket.socket]:
    """The TCP (HTTP) and UDP (segments) sockets, bound; StartupError naming the
    address and protocol that cannot be bound. Port 0 for both (UDP follows ``--listen``
    unless told otherwise) picks one port free for both, as a daemon address has one."""
    shared = port == 0 and udp[1] == 0
    tries = _SHARED_PORT_TRIES if shared else 1
    for attempt in range(1, tries + 1):
        try:
            tcp_sock = _tcp_socket(host, port)
        except OSError as exc:
            raise StartupError(_bind_failure(f"{_address(host, port)} (HTTP)", exc)) from exc
        where = (udp[0], int(tcp_sock.getsockname()[1])) if shared else udp
        try:
            udp_sock = open_udp_socket(*where)
        except OSError as exc:
            tcp_sock.close()
            if attempt < tries and exc.errno == errno.EADDRINUSE:
                continue  # the port the kernel chose for TCP is taken for UDP: another
            failure = _bind_failure(f"{_address(*where)} (UDP segments)", exc)
            raise StartupError(failure) from exc
        return tcp_sock, udp_sock
    raise AssertionError("unreachable: the last try returns or raises")  # pragma: no cover


def _bind_failure(where: str, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {where}: {reason}: another process is using that port; "
            "stop it or choose another with --listen"
        )
    if isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: {reason}: not an address of this machine"
    return f"cannot listen on {where}: {reason}"


def _apply_log_retention(state: ServerState) -> None:
    try:
        changed = state.logs.store.apply_default_retention()
    except StoreError as exc:
        log.warning("log groups kept their events' previous retention: %s", exc)
        return
    if changed:
        log.info("default log retention applied to %d groups", len(changed))


async def _serve(
    host: str,
    port: int,
    tcp_sock: socket.socket,
    udp_sock: socket.socket,
    store: Store,
    retention_seconds: float,
    announce: Callable[[str], None],
    data_dir: Path,
    cached_traces: int,
    ingest_workers: int,
    udp: tuple[str, int],
    access: AccessPolicy,
    wide_open: bool,
    otlp_sock: socket.socket | None,
    otlp_grpc: OtlpAddress | None,
    otlp_options: TranslateOptions,
    insights_interval: float,
    *,
    parent: int | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    ingest = IngestProcess(
        store,
        udp_sock,
        retention_seconds=retention_seconds,
        cached_traces=cached_traces,
        workers=ingest_workers,
        otlp=otlp_options,
    )
    state = ServerState(
        store=store,
        pipeline=ingest,
        retention_seconds=retention_seconds,
        access=access,
        otlp=Translator(otlp_options),
    )
    # OTLP log records share the Logs API's store and writer (one stream cache, one queue)
    state.otlp_logs = OtlpLogSink(state.logs.store, state.logs.writer)
    ingest.prepare = state.group_stats.prepare
    state.group_stats.on_change = ingest.gather_contributions
    await asyncio.to_thread(state.group_stats.refresh)
    evaluator = InsightEvaluator(state.insights, insights_interval)
    evaluator.start()
    grpc_server = _grpc_server(state, otlp_grpc, loop)
    ingest.start()
    releaser = MemoryReleaser(store)
    releaser.start()
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
    servers = [(server, tcp_sock)]
    if otlp_sock is not None:
        otlp_config = uvicorn.Config(
            create_otlp_app(state, max_body=64 * 1024 * 1024),
            http="httptools",
            loop="none",
            lifespan="off",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        servers.append((_Server(otlp_config), otlp_sock))

    def request_exit() -> None:
        for each, _ in servers:
            each.request_exit()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, request_exit)
    watch = asyncio.ensure_future(_watch_parent(parent, request_exit)) if parent else None
    display = f"[{host}]" if ":" in host else host
    # where a browser on this machine finds the console (not a wildcard address)
    local = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, display)
    udp_display = f"[{udp[0]}]:{udp[1]}" if ":" in udp[0] else f"{udp[0]}:{udp[1]}"
    announce(
        f"Fluoroscope is listening on udp://{udp_display} (segments) and "
        f"http://{display}:{port} (X-Ray API)\nData directory: {data_dir}\n"
        f"Store: {store.database} ({'embedded chDB' if store.embedded else 'ClickHouse server'})\n"
        f"Console: http://{local}:{port}/\nAccess: HTTP {access.describe(insecure=wide_open)}"
    )
    otlp_lines = []
    if otlp_sock is not None:
        otlp_lines.append(f"OTLP/HTTP http://{_address(*otlp_sock.getsockname()[:2])}/v1/traces")
    if grpc_server is not None and otlp_grpc is not None:
        otlp_lines.append(f"OTLP/gRPC {_address(otlp_grpc[0], grpc_server.port)}")
    announce(
        "OpenTelemetry: "
        + ", ".join([*otlp_lines, f"OTLP/HTTP and Zipkin on http://{display}:{port}"])
    )
    _warn_about_access(host, port, udp, access, wide_open)
    if grpc_server is not None:
        grpc_server.start()
    # stored events of groups without a policy follow a changed --retention-days; in
    # the background (it reads a column of every event), awaited before the store closes
    retention = asyncio.ensure_future(asyncio.to_thread(_apply_log_retention, state))
    try:
        await asyncio.gather(*(each.serve(sockets=[sock]) for each, sock in servers))
    finally:
        if watch is not None:
            watch.cancel()
        if grpc_server is not None:
            await asyncio.to_thread(grpc_server.stop)
        await asyncio.gather(retention, return_exceptions=True)
        await asyncio.to_thread(evaluator.close)
        await asyncio.to_thread(state.logs.close)
        await asyncio.to_thread(ingest.close)
        await asyncio.to_thread(releaser.close)
        counters = ingest.counters
        stored = counters.get("stored_documents", 0)
        announce(f"Stopped. Stored {stored} documents; " + _drops(counters))


async def _watch_parent(parent: int, request_exit: Callable[[], None]) -> None:
    """Call ``request_exit`` once ``parent`` is no longer this process's parent (it ended:
    this process was handed to another); checked twice a second."""
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    log.warning("the process that started this server (pid %d) ended; stopping", parent)
    request_exit()


def _grpc_server(
    state: ServerState,
    address: OtlpAddress | None,
    loop: asyncio.AbstractEventLoop,
) -> GrpcServer | None:
    """The OTLP/gRPC server bound to ``address`` (not started); None when off, or when
    the default address is taken (said in one warning line); StartupError for an explicit one."""
    if address is None:
        return None
    host, port, explicit = address
    where = _address(host, port)
    try:
        return GrpcServer(state, f"[{host}]:{port}" if ":" in host else where, loop)
    except OSError as exc:
        if explicit:
            raise StartupError(
                f"cannot listen on {where} (OTLP/gRPC): {exc}; choose another address "
                "with --otlp-grpc-listen, or 'off'"
            ) from None
        log.warning("OTLP/gRPC: %s is in use (another server or a Collector?); not served", where)
        return None


def _otlp_http_socket(address: OtlpAddress | None) -> socket.socket | None:
    """The OTLP/HTTP listener's socket (see :func:`_grpc_server` for failures)."""
    if address is None:
        return None
    host, port, explicit = address
    try:
        return _tcp_socket(host, port)
    except OSError as exc:
        if explicit:
            raise StartupError(
                _bind_failure(f"{_address(host, port)} (OTLP/HTTP)", exc).replace(
                    "--listen", "--otlp-http-listen (or 'off')"
                )
            ) from exc
        log.warning(
            "OTLP/HTTP: %s is in use (another server or a Collector?); OTLP is served on the "
            "main port only",
            _address(host, port),
        )
        return None


def _warn_about_access(
    host: str, port: int, udp: tuple[str, int], access: AccessPolicy, wide_open: bool
) -> None:
    """Log what an operator must know about who can reach this server."""
    if wide_open and not access.requires_credentials:
        log.warning(
            "INSECURE: --insecure-no-auth: the X-Ray API and console on %s:%d accept "
            "unauthenticated requests from anyone who can reach them (read, write, delete)",
            host or "*",
            port,
        )
    if not is_loopback(udp[0]):
        log.warning(
            "UDP segments are received on %s:%d from anyone who can reach it: UDP cannot "
            "authenticate",
            udp[0] or "*",
            udp[1],
        )
    elif not is_loopback(host):
        log.warning(
            "UDP segments are received on loopback only (%s:%d): UDP cannot authenticate; "
            "--udp-listen HOST:PORT binds it wider",
            *udp,
        )


def _drops(counters: dict[str, int]) -> str:
    dropped = {
        k: v
        for k, v in counters.items()
        if ("dropped" in k or "invalid" in k or k.startswith("lost")) and v
    }
    if not dropped:
        return "nothing dropped."
    return "dropped: " + ", ".join(f"{k}={v}" for k, v in sorted(dropped.items())) + "."


def serve(
    host: str,
    port: int,
    *,
    data_dir: Path,
    store_url: str,
    retention_days: int,
    cached_traces: int,
    ingest_workers: int = 1,
    announce: Callable[[str], None] = print,
    udp: tuple[str, int] | None = None,
    access: AccessPolicy | None = None,
    wide_open: bool = False,
    otlp_http: OtlpAddress | None = None,
    otlp_grpc: OtlpAddress | None = None,
    otlp_options: TranslateOptions | None = None,
    insights_interval: float = 60.0,
    exit_with_parent: bool = False,
) -> None:
    """Run the server until SIGINT/SIGTERM (blocking). See the module docstring.

    ``udp`` is the segments' address (default: ``host:port``); ``access`` the HTTP
    access policy (default: open, Host/Origin/content-type checks only); ``wide_open``
    says ``--insecure-no-auth`` was given, which is logged loudly. ``otlp_http`` and
    ``otlp_grpc``: OTLP's own listeners (None: off; OTLP/HTTP is also served on the
    main port); ``otlp_options``: which span attributes become annotations;
    ``insights_interval``: seconds between two evaluations of the groups' Insights;
    ``exit_with_parent``: stop cleanly, as on SIGTERM, once the process that started this
    one has ended, however it ended (``fluoroscope demo`` starts its server so)."""
    parent = os.getppid() if exit_with_parent else None
    name_threads()  # top -H tells the hub, the API's and the engine's threads apart
    run: Callable[[Coroutine[Any, Any, None]], None]
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        run = asyncio.run
    else:
        run = uvloop.run
    udp = udp or (host, port)
    access = access or AccessPolicy.build(host, wide=not is_loopback(host))
    embedded = store_url in ("chdb", "chdb://", "")
    lock = claim_data_dir(data_dir) if embedded else None
    try:
        tcp_sock, udp_sock = _bind(host, port, udp)
        port = int(tcp_sock.getsockname()[1])  # the ports bound, when 0 asked for any
        udp = (udp[0], int(udp_sock.getsockname()[1]))
        try:
            otlp_sock = _otlp_http_socket(otlp_http)
        except BaseException:
            tcp_sock.close()
            udp_sock.close()
            raise
        try:
            store = Store.open(store_url, data_dir, retention_days)
        except BaseException:
            tcp_sock.close()
            udp_sock.close()
            if otlp_sock is not None:
                otlp_sock.close()
            raise
        faulthandler.enable()  # a crash in native code (the engine) prints every thread's stack
        tune_gc()
        arrow_on_glibc()
        late = stale()
        if late:
            log.warning(
                "compiled from older sources than those installed, so the older code runs: "
                "%s (install the package again)",
                ", ".join(late),
            )
        try:
            run(
                _serve(
                    host,
                    port,
                    tcp_sock,
                    udp_sock,
                    store,
                    retention_days * 86_400.0,
                    announce,
                    data_dir,
                    cached_traces,
                    ingest_workers,
                    udp,
                    access,
                    wide_open,
                    otlp_sock,
                    otlp_grpc,
                    otlp_options or TranslateOptions(),
                    insights_interval,
                    parent=parent,
                )
            )
        finally:
            with contextlib.suppress(Exception):
                store.close()
    finally:
        if lock is not None:
            lock.release()
