"""The command line: the composition root that wires config, store, ingest, query and server.

Each command imports what it needs when it runs, so ``fluoroscope --help`` is fast and
the SDK-only install never touches server dependencies.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from fluoroscope import __version__
from fluoroscope.logcli import logs_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="fluoroscope",
    help="Self-hosted, live AWS X-Ray: ingest, store, query and view traces.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


app.add_typer(logs_app, name="logs")


@app.callback()
def _root() -> None:
    """Self-hosted, live AWS X-Ray: ingest, store, query and view traces."""


@app.command()
def version() -> None:
    """Print the installed version."""
    typer.echo(__version__)


@app.command()
def server(
    listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT for the HTTP API and console (and UDP segments when loopback); beyond loopback it needs credentials. \\[env: FLUOROSCOPE_LISTEN] \\[default: 127.0.0.1:2000]"
        ),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(
            help="Where the embedded store keeps its data. \\[env: FLUOROSCOPE_DATA_DIR] \\[default: ./fluoroscope-data]"
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="'chdb' (embedded) or clickhouse://user:pass@host:8123/db. \\[env: FLUOROSCOPE_STORE]"
        ),
    ] = None,
    retention_days: Annotated[
        int | None,
        typer.Option(
            help="Days traces are kept. \\[env: FLUOROSCOPE_RETENTION_DAYS] \\[default: 30]"
        ),
    ] = None,
    cached_traces: Annotated[
        int | None,
        typer.Option(
            help="Traces whose merge state ingest keeps in memory (~4-6 KB each): fewer use "
            "less memory, and a segment arriving after its trace left is merged after a store "
            "read. \\[env: FLUOROSCOPE_CACHED_TRACES] \\[default: 20000]"
        ),
    ] = None,
    ingest_workers: Annotated[
        int | None,
        typer.Option(
            help="Processes that parse and merge incoming segments, each owning a share of "
            "the traces (each takes ~70 MB and up to a core). \\[env: "
            "FLUOROSCOPE_INGEST_WORKERS] \\[default: the usable cores, at most 2]"
        ),
    ] = None,
    udp_listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT for UDP segments, which cannot authenticate. \\[env: "
            "FLUOROSCOPE_UDP_LISTEN] \\[default: --listen if loopback, else 127.0.0.1 at its port]"
        ),
    ] = None,
    access_key: Annotated[
        list[str] | None,
        typer.Option(
            help="ACCESS_KEY_ID:SECRET accepted in SigV4-signed requests; repeatable. Once any "
            "credential is set, every HTTP request needs one. \\[env: FLUOROSCOPE_ACCESS_KEYS, "
            "comma-separated]"
        ),
    ] = None,
    api_key: Annotated[
        list[str] | None,
        typer.Option(
            help="A token accepted as 'Authorization: Bearer TOKEN'; repeatable. \\[env: "
            "FLUOROSCOPE_API_KEYS, comma-separated]"
        ),
    ] = None,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Another name clients reach this server by (Host header), e.g. behind a "
            "proxy; '*' allows any; repeatable. \\[env: FLUOROSCOPE_ALLOWED_HOSTS]"
        ),
    ] = None,
    insecure_no_auth: Annotated[
        bool | None,
        typer.Option(
            "--insecure-no-auth",
            help="Listen beyond loopback without credentials: anyone who can reach the "
            "server can read, write and delete. \\[env: FLUOROSCOPE_INSECURE_NO_AUTH=1]",
            show_default=False,
        ),
    ] = None,
    otlp_http_listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT of OTLP/HTTP's own listener (OTLP is also served on --listen), "
            "or 'off'. \\[env: FLUOROSCOPE_OTLP_HTTP_LISTEN] \\[default: 127.0.0.1:4318]"
        ),
    ] = None,
    otlp_grpc_listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT for OTLP/gRPC, or 'off'. \\[env: FLUOROSCOPE_OTLP_GRPC_LISTEN] "
            "\\[default: 127.0.0.1:4317]"
        ),
    ] = None,
    otlp_indexed_attribute: Annotated[
        list[str] | None,
        typer.Option(
            help="A span attribute that becomes an annotation (filterable) rather than "
            "metadata; repeatable. \\[env: FLUOROSCOPE_OTLP_INDEXED_ATTRIBUTES, comma-separated]"
        ),
    ] = None,
    otlp_index_all_attributes: Annotated[
        bool | None,
        typer.Option(
            "--otlp-index-all-attributes",
            help="Every span attribute becomes an annotation. \\[env: "
            "FLUOROSCOPE_OTLP_INDEX_ALL_ATTRIBUTES=1]",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Log in detail, and show the full error (the engine's own message and "
            "stack) when start-up fails.",
        ),
    ] = False,
) -> None:
    """Run the all-in-one server: X-Ray daemon UDP protocol and X-Ray API on one address."""
    from fluoroscope.config import (
        ConfigError,
        resolve_insights_interval,
        resolve_otlp_config,
        resolve_server_config,
    )
    from fluoroscope.model.errors import StoreUnavailable

    try:
        config = resolve_server_config(
            listen=listen,
            data_dir=data_dir,
            store=store,
            retention_days=retention_days,
            cached_traces=cached_traces,
            ingest_workers=ingest_workers,
            udp_listen=udp_listen,
            access_keys=access_key,
            api_keys=api_key,
            allowed_hosts=allowed_host,
            insecure_no_auth=insecure_no_auth,
        )
        otlp = resolve_otlp_config(
            http_listen=otlp_http_listen,
            grpc_listen=otlp_grpc_listen,
            indexed_attributes=otlp_indexed_attribute,
            index_all_attributes=otlp_index_all_attributes,
            credentials=bool(config.access_keys or config.api_keys),
            insecure_no_auth=config.insecure_no_auth,
        )
        insights_interval = resolve_insights_interval()
    except ConfigError as exc:
        _fail(str(exc))
    from fluoroscope.ingest.otlp import TranslateOptions
    from fluoroscope.model.net import is_loopback
    from fluoroscope.server.auth import AccessPolicy
    from fluoroscope.server.run import StartupError, serve

    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        serve(
            config.host,
            config.port,
            data_dir=config.data_dir,
            store_url=config.store_url,
            retention_days=config.retention_days,
            cached_traces=config.cached_traces,
            ingest_workers=config.ingest_workers,
            announce=lambda text: typer.echo(text, err=False),
            udp=(config.udp_host, config.udp_port),
            access=AccessPolicy.build(
                config.host,
                wide=not is_loopback(config.host),
                access_keys=config.access_keys,
                api_keys=config.api_keys,
                allowed_hosts=config.allowed_hosts,
            ),
            wide_open=config.insecure_no_auth,
            otlp_http=None
            if otlp.http is None
            else (otlp.http.host, otlp.http.port, otlp.http.explicit),
            otlp_grpc=None
            if otlp.grpc is None
            else (otlp.grpc.host, otlp.grpc.port, otlp.grpc.explicit),
            otlp_options=TranslateOptions(
                frozenset(otlp.indexed_attributes), otlp.index_all_attributes
            ),
            insights_interval=insights_interval,
        )
    except (StartupError, StoreUnavailable) as exc:
        _fail(str(exc), debug=debug)
    except OSError as exc:
        _fail(f"the server could not start: {exc.strerror or exc}", debug=debug)


@app.command()
def daemon(
    server: Annotated[
        str | None,
        typer.Option(
            help="The Fluoroscope server to forward to, http://HOST:PORT. \\[env: FLUOROSCOPE_DAEMON_SERVER] \\[required]"
        ),
    ] = None,
    listen: Annotated[
        str | None,
        typer.Option(
            help="HOST:PORT for UDP segments and the TCP sampling proxy. \\[env: FLUOROSCOPE_DAEMON_LISTEN] \\[default: 127.0.0.1:2000]"
        ),
    ] = None,
    buffer_dir: Annotated[
        str | None,
        typer.Option(
            help="Where batches spill to disk while the server is away (kept across restarts). \\[env: FLUOROSCOPE_DAEMON_BUFFER_DIR] \\[default: ./fluoroscope-daemon-buffer]"
        ),
    ] = None,
    buffer_memory: Annotated[
        int | None,
        typer.Option(
            help="MiB of batches held in memory before spilling. \\[env: FLUOROSCOPE_DAEMON_BUFFER_MEMORY] \\[default: 64]"
        ),
    ] = None,
    buffer_disk: Annotated[
        int | None,
        typer.Option(
            help="MiB of spool files at most; 0: memory only. \\[env: FLUOROSCOPE_DAEMON_BUFFER_DISK] \\[default: 1024]"
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(
            help="Documents per PutTraceSegments call. \\[env: FLUOROSCOPE_DAEMON_BATCH_SIZE] \\[default: 50]"
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            help="PutTraceSegments calls in flight. \\[env: FLUOROSCOPE_DAEMON_CONCURRENCY] \\[default: 8]"
        ),
    ] = None,
    drain_seconds: Annotated[
        float | None,
        typer.Option(
            help="At a stop, seconds to go on sending; the rest stays on disk for the next start. \\[env: FLUOROSCOPE_DAEMON_DRAIN_SECONDS] \\[default: 5]"
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="SigV4 region, when AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set. \\[env: FLUOROSCOPE_DAEMON_REGION, AWS_REGION] \\[default: us-east-1]"
        ),
    ] = None,
) -> None:
    """Run a per-host X-Ray daemon: UDP segments in, batched to a server; sampling proxied.

    A bearer token for the server is read from FLUOROSCOPE_DAEMON_TOKEN (never a flag:
    flags show in process lists); without one, requests are SigV4-signed when the
    standard AWS credential variables are set.
    """
    from fluoroscope.config import ConfigError, resolve_daemon_config

    try:
        config = resolve_daemon_config(
            server=server,
            listen=listen,
            buffer_dir=buffer_dir,
            buffer_memory=buffer_memory,
            buffer_disk=buffer_disk,
            batch_size=batch_size,
            concurrency=concurrency,
            drain_seconds=drain_seconds,
            region=region,
        )
    except ConfigError as exc:
        _fail(str(exc))
    from fluoroscope.daemon import Credentials, DaemonSettings, run_daemon

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = DaemonSettings(
        config.server,
        config.host,
        config.port,
        buffer_dir=config.buffer_dir if config.buffer_disk else None,
        memory_bytes=config.buffer_memory * 1024 * 1024,
        disk_bytes=config.buffer_disk * 1024 * 1024,
        batch_size=config.batch_size,
        concurrency=config.concurrency,
        drain_seconds=config.drain_seconds,
        credentials=Credentials(
            token=config.token,
            access_key=config.access_key,
            secret_key=config.secret_key,
            session_token=config.session_token,
            region=config.region,
        ),
    )
    try:
        run_daemon(settings, announce=lambda text: typer.echo(text))
    except OSError as exc:
        _fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}")


_WIDE_HELP = (
    "Show every cell whole (ids, URLs, names), however wide; output that is not a terminal "
    "is always whole."
)
_SERVER_HELP = (  # \[ keeps rich markup from eating the brackets
    "The server's X-Ray API. \\[env: FLUOROSCOPE_SERVER] \\[default: http://127.0.0.1:2000]"
)


@app.command()
def traces(
    filter_expression: Annotated[
        str | None,
        typer.Argument(
            metavar="FILTER", help="An X-Ray filter expression, e.g. 'fault OR responsetime > 2'."
        ),
    ] = None,
    since: Annotated[str, typer.Option(help="How far back: 30s, 5m, 1h, 2d.")] = "1h",
    limit: Annotated[int, typer.Option(min=1, help="At most this many traces.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the raw summaries as JSON lines.")
    ] = False,
    wide: Annotated[bool, typer.Option("--wide", help=_WIDE_HELP)] = False,
    server: Annotated[str | None, typer.Option(help=_SERVER_HELP)] = None,
) -> None:
    """Recent trace summaries as a table, newest first."""
    from fluoroscope.terminal import show_traces

    out, err = _consoles()
    code = show_traces(
        out,
        err,
        _server_url(server),
        filter_expression,
        since=since,
        limit=limit,
        as_json=as_json,
        wide=wide,
    )
    raise typer.Exit(code)


@app.command()
def trace(
    trace_id: Annotated[
        str, typer.Argument(metavar="TRACE_ID", help="1-XXXXXXXX-YYYY... or the 32-hex W3C form.")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the raw segment documents as JSON lines.")
    ] = False,
    wide: Annotated[bool, typer.Option("--wide", help=_WIDE_HELP)] = False,
    server: Annotated[str | None, typer.Option(help=_SERVER_HELP)] = None,
    logs: Annotated[
        bool, typer.Option("--logs", help="Then print the trace's log lines, from every service.")
    ] = False,
) -> None:
    """One trace's timeline: segments and nested subsegments as a waterfall."""
    from fluoroscope.terminal import show_trace
    from fluoroscope.tracelines_terminal import show_trace_lines

    out, err = _consoles()
    url = _server_url(server)
    code = show_trace(out, err, url, trace_id, as_json=as_json, wide=wide)
    if code == 0 and logs and not as_json:
        code = show_trace_lines(out, err, url, trace_id, wide=wide)
    raise typer.Exit(code)


@app.command("critical-path")
def critical_path(
    filter_expression: Annotated[
        str | None,
        typer.Argument(
            metavar="FILTER", help="An X-Ray filter expression, e.g. 'http.url CONTAINS \"/cart\"'."
        ),
    ] = None,
    since: Annotated[str, typer.Option(help="How far back: 30s, 5m, 1h, 2d.")] = "1h",
    slowest: Annotated[
        float, typer.Option(min=0.01, max=100, help="Only the slowest PERCENT % of the traces.")
    ] = 100.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the API's answer as JSON.")
    ] = False,
    server: Annotated[str | None, typer.Option(help=_SERVER_HELP)] = None,
) -> None:
    """Which entries make up the critical path of the matching traces, and their part of
    the p50 and p99 duration (computed by the server's engine)."""
    from fluoroscope.critpath_terminal import show_critical_path

    out, err = _consoles()
    raise typer.Exit(
        show_critical_path(
            out,
            err,
            _server_url(server),
            filter_expression,
            since=since,
            slowest=slowest,
            as_json=as_json,
        )
    )


def _server_url(server: str | None) -> str:
    from fluoroscope.config import ConfigError, resolve_server_url

    try:
        return resolve_server_url(server)
    except ConfigError as exc:
        _fail(str(exc))


def _consoles() -> tuple[Any, Any]:
    from rich.console import Console

    return Console(), Console(stderr=True)


@app.command()
def demo(
    listen: Annotated[
        str | None,
        typer.Option(
            help="The Fluoroscope server's HOST:PORT: reused if one answers there, else started. \\[env: FLUOROSCOPE_LISTEN] \\[default: 127.0.0.1:2000]"
        ),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(
            help="Data directory of the server the demo starts. \\[env: FLUOROSCOPE_DATA_DIR] \\[default: ./fluoroscope-data]"
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            help="Seconds of traffic, then stop. \\[env: FLUOROSCOPE_DEMO_DURATION] \\[default: until Ctrl-C]"
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(help="Requests per second. \\[env: FLUOROSCOPE_DEMO_RATE] \\[default: 5]"),
    ] = None,
    open_browser: Annotated[
        bool | None,
        typer.Option(
            "--open/--no-open",
            help="Open the console in a browser (when there is a display). \\[env: FLUOROSCOPE_DEMO_OPEN] \\[default: open]",
            show_default=False,
        ),
    ] = None,
    log_file: Annotated[
        str | None, typer.Option(help="Append the Lambda functions' logs (stderr) to this file.")
    ] = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="A SAM template whose tracing switches the app follows (Globals Api TracingEnabled, Function Tracing: Active | PassThrough). \\[env: FLUOROSCOPE_DEMO_TEMPLATE] \\[default: the shipped demo/template.yaml]"
        ),
    ] = None,
) -> None:
    """Run the sample serverless app (API Gateway → Lambda → DynamoDB, S3, HTTP) with traffic."""
    from fluoroscope.config import ConfigError, resolve_demo_config, resolve_server_config

    try:
        config = resolve_server_config(listen=listen, data_dir=data_dir)
        settings = resolve_demo_config(
            rate=rate, duration=duration, open_browser=open_browser, template=template
        )
    except ConfigError as exc:
        _fail(str(exc))
    from fluoroscope.demo import DemoApp, Traffic, missing_requirements

    if missing := missing_requirements():
        _fail(f"the demo needs {', '.join(missing)}: pip install 'fluoroscope[demo]'")
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped: lines as long as their text, never cut or wrapped
        console = Console(width=100_000)
    stop = threading.Event()
    restore = _on_stop_signals(stop)
    host = (
        "127.0.0.1"
        if config.host in ("0.0.0.0", "")
        else "::1"
        if config.host == "::"
        else config.host
    )
    base = f"http://{f'[{host}]' if ':' in host else host}:{config.port}"
    server: subprocess.Popen[str] | None = None
    sample: DemoApp | None = None
    log = open(log_file, "a", encoding="utf-8") if log_file else None  # noqa: SIM115
    try:
        if _server_answers(base):
            console.print(f"Using the Fluoroscope server already running at {base}")
        else:
            server = _start_server(config.host, config.port, config.data_dir, base, stop, console)
        if stop.is_set():
            return
        try:
            sample = DemoApp(f"{host}:{config.port}", log=log, template=settings.template)
        except ValueError as exc:  # the template's switches
            _fail(str(exc))
        with console.status("Starting the sample app: API Gateway, Lambda, DynamoDB, S3 …"):
            try:
                sample.start()
            except (OSError, RuntimeError) as exc:
                _fail(f"the sample app did not start: {exc}")
        has_console = _serves_console(base)
        look = (
            f"Console:     [bold cyan]{base}/[/bold cyan]\n"
            if has_console
            else f"Look:        fluoroscope traces --server {base}   then   fluoroscope trace ID\n"
        )
        console.print(
            f"Sample API:  [bold]{sample.url}[/bold]  (POST /orders, GET /orders/{{id}}, GET /report)\n"
            f"{look}"
            f"X-Ray API:   {base}  (boto3.client('xray', endpoint_url='{base}'))\n"
            + (
                "Press Ctrl-C to stop."
                if settings.duration is None
                else f"Traffic for {settings.duration:g} s, then the demo stops."
            ),
            **_FULL_WIDTH,
        )
        if settings.open_browser and has_console and not stop.is_set():
            _open_browser(f"{base}/")
        traffic = Traffic(sample.url, settings.rate)
        sender = threading.Thread(
            target=traffic.run, args=(stop,), name="demo-traffic", daemon=True
        )
        sender.start()
        final = _show_progress(console, traffic, stop, settings.duration, sender)
        console.print(final.summary(), **_FULL_WIDTH)
    finally:
        stop.set()
        if sample is not None:
            with console.status("Stopping the sample app …"):
                sample.close()
        if server is not None:
            _stop_server(server, console)
        if log is not None:
            log.close()
        restore()


# piped (not a terminal): as wide as the text, never wrapped at 80 columns
_FULL_WIDTH: dict[str, Any] = {"soft_wrap": True}


def _on_stop_signals(stop: threading.Event) -> Callable[[], None]:
    """First SIGINT/SIGTERM: set ``stop`` (a clean shutdown); a second one interrupts."""

    def handle(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def _server_answers(base: str) -> bool:
    import json
    import urllib.error
    import urllib.request

    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, no proxy
    try:
        with direct.open(f"{base}/api/status", timeout=1.0) as response:
            return isinstance(json.loads(response.read()), dict)
    except urllib.error.HTTPError as exc:  # one that requires credentials answers so
        return exc.code == 403 and exc.headers.get("x-amzn-ErrorType") is not None
    except (OSError, ValueError):
        return False


def _start_server(
    host: str, port: int, data_dir: Path, base: str, stop: threading.Event, console: Any
) -> subprocess.Popen[str]:
    """Start ``fluoroscope server`` in its own session (Ctrl-C reaches only the demo)."""
    import collections
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "server", "--listen", f"{host}:{port}",
         "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: collections.deque[str] = collections.deque(maxlen=40)
    proc.lines = lines  # type: ignore[attr-defined]

    def pump() -> None:
        for line in proc.stdout or ():
            lines.append(line.rstrip())

    threading.Thread(target=pump, name="demo-server-output", daemon=True).start()
    deadline = time.monotonic() + 90
    with console.status(f"Starting the Fluoroscope server on {host}:{port} (data: {data_dir}) …"):
        while not _server_answers(base):
            if proc.poll() is not None:
                time.sleep(0.2)
                _fail("the server did not start:\n" + "\n".join(lines))
            if stop.is_set() or time.monotonic() > deadline:
                _stop_server(proc, console)
                if stop.is_set():
                    return proc
                _fail("the server did not answer within 90 s")
            stop.wait(0.1)
    console.print(f"Started the Fluoroscope server on {host}:{port} (data: {data_dir})")
    return proc


def _stop_server(proc: subprocess.Popen[str], console: Any) -> None:
    """SIGINT (it stores what it accepted), then wait; kill only if it hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        with console.status("Stopping the server (storing what it received) …"):
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    lines = getattr(proc, "lines", ())
    if lines and proc.returncode == 0:
        console.print(lines[-1])


def _serves_console(base: str) -> bool:
    """Whether the server at ``base`` serves the web console (an HTML page at ``/``)."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"{base}/", timeout=2) as response:
            return bool(response.headers.get_content_type() == "text/html")
    except (OSError, ValueError):
        return False


def _open_browser(url: str) -> None:
    """Open ``url`` in a graphical browser, if there is one; never blocks or raises."""
    import os
    import sys
    import webbrowser

    if sys.platform not in ("darwin", "win32") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return  # headless: nothing to open (and a text browser would take the terminal)
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return
    if type(browser) is webbrowser.GenericBrowser:
        return  # a console browser (lynx, w3m): it would take over this terminal

    def run() -> None:
        with contextlib.suppress(Exception):
            browser.open(url)

    threading.Thread(target=run, name="demo-browser", daemon=True).start()


def _show_progress(
    console: Any,
    traffic: Any,
    stop: threading.Event,
    duration: float | None,
    sender: threading.Thread,
) -> Any:
    """A live progress bar of the traffic until ``stop`` is set or ``duration`` passed;
    then stops the traffic, waits for the requests in flight, draws the last line from
    the final counters and returns them (so the summary printed next agrees with it)."""
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    def stats() -> str:
        return str(traffic.snapshot().progress())

    started = time.monotonic()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]traffic[/]"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[stats]}"),
        console=console,
    ) as progress:
        task = progress.add_task("traffic", total=duration or None, stats=stats())
        while not stop.wait(0.25):
            elapsed = time.monotonic() - started
            progress.update(task, completed=min(elapsed, duration or elapsed), stats=stats())
            if duration is not None and elapsed >= duration:
                break
        stop.set()
        sender.join(30)
        final = traffic.snapshot()
        progress.update(task, stats=final.progress())
    return final


def _fail(message: str, *, debug: bool = False) -> NoReturn:
    """One line on stderr, exit status 2; with ``debug``, the exception being handled
    (and what caused it) is printed first."""
    if debug:
        import traceback

        traceback.print_exc()
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``fluoroscope`` script. A usage error (an unknown flag, a value
    of the wrong type) is one line on stderr naming the flag, what it got and what it
    expects, and exit status 2, like every other bad value (see :mod:`fluoroscope.config`)."""
    import sys

    from fluoroscope.__main__ import parser_errors, usage_line

    errors = parser_errors()
    args = sys.argv[1:] if argv is None else argv
    try:
        result = app(args=args, prog_name="fluoroscope", standalone_mode=False)
    except errors.NoArgsIsHelpError as exc:  # the help was printed
        sys.exit(exc.exit_code)
    except errors.UsageError as exc:
        try:
            _fail(usage_line(exc, args))
        except typer.Exit as failed:
            sys.exit(failed.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
