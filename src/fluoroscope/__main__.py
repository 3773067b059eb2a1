"""The ``fluoroscope`` command's entry point (also ``python -m fluoroscope``).

Standard library only: ``pip install fluoroscope`` installs the SDK without the server's
dependencies, yet still installs this command. Run without them, it says in one line on
stderr which extra to install and exits with status 2, instead of failing on an import.
With them, it runs :func:`fluoroscope.cli.main`.
"""

from __future__ import annotations

import importlib.util
import sys

__all__ = ["SERVER_MODULES", "main", "missing_server_modules"]

# what the command line and the server import (the ``server`` extra in pyproject.toml)
SERVER_MODULES = (
    "typer",
    "rich",
    "uvicorn",
    "starlette",
    "httptools",
    "orjson",
    "pyarrow",
    "chdb",
    "clickhouse_connect",
)


def missing_server_modules() -> list[str]:
    """The modules of the ``server`` extra that cannot be imported here."""
    missing = []
    for name in SERVER_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def main() -> None:
    """Run the command line, or exit 2 naming the missing extra."""
    if missing := missing_server_modules():
        print(
            "error: the fluoroscope command needs the server extra "
            f"(missing: {', '.join(missing)}): pip install 'fluoroscope[server]'",
            file=sys.stderr,
        )
        raise SystemExit(2)
    from fluoroscope.cli import main as run

    run()


if __name__ == "__main__":
    main()
