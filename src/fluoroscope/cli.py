"""The command line: the composition root that wires config, store, ingest, query and server.

Each command imports what it needs when it runs, so ``fluoroscope --help`` is fast and
the SDK-only install never touches server dependencies.
"""

from __future__ import annotations

import logging
from typing import Annotated, NoReturn

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


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def main() -> None:
    """Entry point of the ``fluoroscope`` script."""
    app()
