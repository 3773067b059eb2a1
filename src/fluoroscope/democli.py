"""``fluoroscope demo``: the sample serverless app with its server (part of the composition root).

``cli.py`` mounts :func:`demo` as ``fluoroscope demo``. It reuses a server answering at
``--listen`` or starts one (in its own session, so Ctrl-C reaches only the demo, which
stops it), deploys :mod:`fluoroscope.demo` locally, sends traffic and draws progress until
Ctrl-C or ``--duration``, then stops what it started. Like the other commands, it imports
what it needs when it runs.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from fluoroscope.cliutil import fail

__all__ = ["demo"]


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
        fail(str(exc))
    from fluoroscope.demo import DemoApp, Traffic, missing_requirements

    if missing := missing_requirements():
        fail(f"the demo needs {', '.join(missing)}: pip install 'fluoroscope[demo]'")
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
    port = config.port or _free_port(host)  # 0: any port free for TCP and UDP
    base = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    server: subprocess.Popen[str] | None = None
    sample: DemoApp | None = None
    log = open(log_file, "a", encoding="utf-8") if log_file else None  # noqa: SIM115
    try:
        if _server_answers(base):
            console.print(f"Using the Fluoroscope server already running at {base}")
        else:
            server = _start_server(config.host, port, config.data_dir, base, stop, console)
        if stop.is_set():
            return
        try:
            sample = DemoApp(f"{host}:{port}", log=log, template=settings.template)
        except ValueError as exc:  # the template's switches
            fail(str(exc))
        with console.status("Starting the sample app: API Gateway, Lambda, DynamoDB, S3 …"):
            try:
                sample.start()
            except (OSError, RuntimeError) as exc:
                fail(f"the sample app did not start: {exc}")
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


def _free_port(host: str) -> int:
    """A port of ``host`` free for both TCP (the API) and UDP (segments) right now."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind((host, 0))
            except OSError as exc:
                fail(f"cannot listen on {host}: {exc.strerror or exc}")
            port = int(tcp.getsockname()[1])
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind((host, port))
                except OSError:
                    continue
        return port
    fail(f"no port of {host} is free for both TCP and UDP")


def _start_server(
    host: str, port: int, data_dir: Path, base: str, stop: threading.Event, console: Any
) -> subprocess.Popen[str]:
    """Start ``fluoroscope server`` in its own session (Ctrl-C reaches only the demo); it
    stops by itself if the demo ends without stopping it (killed)."""
    import collections
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "server", "--listen", f"{host}:{port}",
         "--data-dir", str(data_dir), "--exit-with-parent"],
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
                fail("the server did not start:\n" + "\n".join(lines))
            if stop.is_set() or time.monotonic() > deadline:
                _stop_server(proc, console)
                if stop.is_set():
                    return proc
                fail("the server did not answer within 90 s")
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
