"""``fluoroscope logs ...``: the log commands of the command line (part of the composition root).

``cli.py`` mounts :data:`logs_app` as ``fluoroscope logs``. Like the other commands, each
imports what it needs when it runs (the rich/urllib work is in
:mod:`fluoroscope.logs_terminal`), so ``fluoroscope --help`` stays fast. The server is
found as for ``fluoroscope traces``: ``--server``, then ``FLUOROSCOPE_SERVER``, then
``http://127.0.0.1:2000``.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer

from fluoroscope.cliutil import consoles, server_url

__all__ = ["logs_app"]

logs_app = typer.Typer(
    name="logs",
    help="Query, follow and correlate log lines through the server's CloudWatch Logs API.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)

_SERVER_HELP = (  # \[ keeps rich markup from eating the brackets
    "The server's API. \\[env: FLUOROSCOPE_SERVER] \\[default: http://127.0.0.1:2000]"
)
_WIDE_HELP = "Show every cell whole, however wide; output that is not a terminal is always whole."
_GROUP_HELP = "A log group to search; repeatable. \\[default: every log group]"


def _stop_on_signals() -> tuple[threading.Event, Any]:
    """An event set by SIGINT/SIGTERM (a clean stop), and a function restoring the handlers."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return stop, restore


@logs_app.command()
def query(
    query_text: Annotated[
        str,
        typer.Argument(
            metavar="QUERY",
            help="A Logs Insights query, e.g. 'filter @message like /timeout/ | stats count() by bin(5m)'.",
        ),
    ],
    since: Annotated[str, typer.Option(help="How far back: 30s, 5m, 1h, 2d.")] = "1h",
    group: Annotated[list[str] | None, typer.Option(help=_GROUP_HELP)] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, max=10_000, help="At most this many rows per query.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each result row as a JSON object, one per line.")
    ] = False,
    wide: Annotated[bool, typer.Option("--wide", help=_WIDE_HELP)] = False,
    timeout: Annotated[
        float, typer.Option(min=1, help="Seconds to wait for the query, then stop it.")
    ] = 120.0,
    server: Annotated[str | None, typer.Option(help=_SERVER_HELP)] = None,
) -> None:
    """Run a Logs Insights query and print its results as a table."""
    from fluoroscope.logs_terminal import show_query

    url = server_url(server)
    out, err = consoles()
    stop, restore = _stop_on_signals()
    try:
        code = show_query(
            out,
            err,
            url,
            query_text,
            since=since,
            groups=group,
            limit=limit,
            as_json=as_json,
            wide=wide,
            timeout=timeout,
            stop=stop,
        )
    finally:
        restore()
    raise typer.Exit(code)


@logs_app.command()
def tail(
    group: Annotated[str, typer.Argument(metavar="GROUP", help="The log group to follow.")],
    since: Annotated[str, typer.Option(help="Start this far back: 30s, 5m, 1h.")] = "10m",
    filter_pattern: Annotated[
        str | None,
        typer.Option(
            "--filter", help="A filter pattern, e.g. 'ERROR' or '{ $.level = \"ERROR\" }'."
        ),
    ] = None,
    stream: Annotated[
        str | None, typer.Option(help="Only the log streams whose names start with this.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each event as a JSON object, one per line.")
    ] = False,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")] = 1.0,
    server: Annotated[str | None, typer.Option(help=_SERVER_HELP)] = None,
) -> None:
    """Print a log group's recent events, then follow new ones until Ctrl-C."""
    from fluoroscope.logs_terminal import show_tail

    url = server_url(server)
    out, err = consoles()
    stop, restore = _stop_on_signals()
    try:
        code = show_tail(
            out,
            err,
            url,
            group,
            since=since,
            pattern=filter_pattern,
            stream_prefix=stream,
            as_json=as_json,
            interval=interval,
            stop=stop,
        )
    finally:
        restore()
    raise typer.Exit(code)


@logs_app.command()
def trace(
    trace_id: Annotated[
        str, typer.Argument(metavar="TRACE_ID", help="1-XXXXXXXX-YYYY... or the 32-hex W3C form.")
    ],
    since: Annotated[
        str,
        typer.Option(help="How far back to look when the X-Ray API does not know the trace."),
    ] = "1d",
    group: Annotated[list[str] | None, typer.Option(help=_GROUP_HELP)] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each line as a JSON object, one per line.")
    ] = False,
    wide: Annotated[bool, typer.Option("--wide", help=_WIDE_HELP)] = False,
    server: Annotated[str | None, typer.Option(help=_SERVER_HELP)] = None,
) -> None:
    """Print one trace's log lines, from every log group, in time order."""
    from fluoroscope.logs_terminal import show_trace_logs

    out, err = consoles()
    raise typer.Exit(
        show_trace_logs(
            out,
            err,
            server_url(server),
            trace_id,
            since=since,
            groups=group,
            as_json=as_json,
            wide=wide,
        )
    )
