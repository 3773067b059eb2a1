"""What every command of the command line shares (part of the composition root).

- :func:`fail`: one line on stderr and exit status 2 (usage errors and bad values alike);
- :func:`server_url`: the server a client command talks to (``--server``, then
  ``FLUOROSCOPE_SERVER``, then ``http://127.0.0.1:2000``), or :func:`fail`;
- :func:`consoles`: rich consoles for stdout and stderr, imported when a command runs so
  ``fluoroscope --help`` stays fast.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer

__all__ = ["consoles", "fail", "server_url"]


def fail(message: str, *, debug: bool = False) -> NoReturn:
    """One line on stderr, exit status 2; with ``debug``, the exception being handled
    (and what caused it) is printed first."""
    if debug:
        import traceback

        traceback.print_exc()
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(2)


def server_url(server: str | None) -> str:
    """The server's base URL from ``--server`` or the environment; :func:`fail` if invalid."""
    from fluoroscope.config import ConfigError, resolve_server_url

    try:
        return resolve_server_url(server)
    except ConfigError as exc:
        fail(str(exc))


def consoles() -> tuple[Any, Any]:
    """(stdout console, stderr console)."""
    from rich.console import Console

    return Console(), Console(stderr=True)
