"""The command line: the composition root that wires config, store, ingest, query and server.

Each command imports what it needs when it runs, so ``fluoroscope --help`` is fast and
the SDK-only install never touches server dependencies.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, NoReturn

import typer

from fluoroscope import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    name="fluoroscope",
    help="Self-hosted, live AWS X-Ray: ingest, store, query and view traces.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


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
            help="HOST:PORT for both UDP segments and the HTTP API. [env: FLUOROSCOPE_LISTEN] [default: 127.0.0.1:2000]"
        ),
    ] = None,
    data_dir: Annotated[
        str | None,
        typer.Option(
            help="Where the embedded store keeps its data. [env: FLUOROSCOPE_DATA_DIR] [default: ./fluoroscope-data]"
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            help="'chdb' (embedded) or clickhouse://user:pass@host:8123/db. [env: FLUOROSCOPE_STORE]"
        ),
    ] = None,
    retention_days: Annotated[
        int | None,
        typer.Option(help="Days traces are kept. [env: FLUOROSCOPE_RETENTION_DAYS] [default: 30]"),
    ] = None,
) -> None:
    """Run the all-in-one server: X-Ray daemon UDP protocol and X-Ray API on one address."""
    from fluoroscope.config import ConfigError, resolve_server_config
    from fluoroscope.model.errors import StoreUnavailable

    try:
        config = resolve_server_config(
            listen=listen, data_dir=data_dir, store=store, retention_days=retention_days
        )
    except ConfigError as exc:
        _fail(str(exc))
    from fluoroscope.server.run import serve

    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        serve(
            config.host,
            config.port,
            data_dir=config.data_dir,
            store_url=config.store_url,
            retention_days=config.retention_days,
            announce=lambda text: typer.echo(text, err=False),
        )
    except StoreUnavailable as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}")


_SERVER_HELP = "The server's X-Ray API. [env: FLUOROSCOPE_SERVER] [default: http://127.0.0.1:2000]"


@app.command()
def traces(
    filter_expression: Annotated[
        str | None,
        typer.Argument(
            metavar="[FILTER]", help="An X-Ray filter expression, e.g. 'fault OR responsetime > 2'."
        ),
    ] = None,
    since: Annotated[str, typer.Option(help="How far back: 30s, 5m, 1h, 2d.")] = "1h",
    limit: Annotated[int, typer.Option(min=1, help="At most this many traces.")] = 50,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the raw summaries as JSON lines.")
    ] = False,
    server: Annotated[str | None, typer.Option(help=_SERVER_HELP)] = None,
) -> None:
    """Recent trace summaries as a table, newest first."""
    from fluoroscope.terminal import show_traces

    out, err = _consoles()
    code = show_traces(
        out, err, _server_url(server), filter_expression, since=since, limit=limit, as_json=as_json
    )
    raise typer.Exit(code)


@app.command()
def trace(
    trace_id: Annotated[str, typer.Argument(metavar="TRACE_ID", help="1-XXXXXXXX-YYYY...")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the raw segment documents as JSON lines.")
    ] = False,
    server: Annotated[str | None, typer.Option(help=_SERVER_HELP)] = None,
) -> None:
    """One trace's timeline: segments and nested subsegments as a waterfall."""
    from fluoroscope.terminal import show_trace

    out, err = _consoles()
    raise typer.Exit(show_trace(out, err, _server_url(server), trace_id, as_json=as_json))


def _server_url(server: str | None) -> str:
    from fluoroscope.config import ConfigError, resolve_server_url

    try:
        return resolve_server_url(server)
    except ConfigError as exc:
        _fail(str(exc))


def _consoles() -> tuple[Any, Any]:
    from rich.console import Console

    return Console(), Console(stderr=True)


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def main() -> None:
    """Entry point of the ``fluoroscope`` script."""
    app()
