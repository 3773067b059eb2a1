"""The command line: the composition root that wires config, store, ingest, query and server.

Each command imports what it needs when it runs, so ``fluoroscope --help`` is fast and
the SDK-only install never touches server dependencies.
"""

from __future__ import annotations

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


def main() -> None:
    """Entry point of the ``fluoroscope`` script."""
    app()
