"""The ``fluoroscope`` command's entry point (also ``python -m fluoroscope``).

Standard library only: ``pip install fluoroscope`` installs the SDK without the server's
dependencies, yet still installs this command. Run without them, it says in one line on
stderr which extra to install and exits with status 2, instead of failing on an import.
With them, it runs :func:`fluoroscope.cli.main`, which turns the parser's usage errors
into one line with :func:`usage_line`.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from typing import Any

__all__ = ["SERVER_MODULES", "main", "missing_server_modules", "parser_errors", "usage_line"]

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


def parser_errors() -> Any:
    """The command line parser's exception classes (typer vendors click since 0.2x)."""
    try:
        return importlib.import_module("typer._click.exceptions")
    except ImportError:  # an older typer, on click itself
        return importlib.import_module("click.exceptions")


_EXPECTED = (  # the parser's words -> what a value must be
    ("valid integer", "a whole number"),
    ("valid number", "a number"),
    ("valid float", "a number"),
    ("valid boolean", "true or false"),
)


def usage_line(exc: Any, argv: list[str]) -> str:
    """One line for a usage error of the command line parser: the flag, what it got
    (read back from ``argv``) and what it expects, when the error is about a value."""
    param = getattr(exc, "param", None)
    opts = [o for o in getattr(param, "opts", None) or [] if o.startswith("-")]
    message = " ".join(str(getattr(exc, "message", "") or exc.format_message()).split())
    if opts and type(exc).__name__ == "BadParameter":
        got: str | None = None
        for i, arg in enumerate(argv):
            for opt in opts:
                if arg == opt and i + 1 < len(argv):
                    got = argv[i + 1]
                elif arg.startswith(f"{opt}="):
                    got = arg[len(opt) + 1 :]
        reason = message.split(": ", 1)[1] if message.startswith("Invalid value") else message
        expected = next((e for words, e in _EXPECTED if words in reason), "")
        bound = re.search(r"(greater|less) than( or equal to)? (\S+)", reason)
        if bound:
            sign = {"greater": ">", "less": "<"}[bound.group(1)] + ("=" if bound.group(2) else "")
            expected = f"{expected or 'a number'} {sign} {bound.group(3)}"
        expected = expected or reason.removeprefix("Input should be ")
        if got is not None:
            return f"{max(opts, key=len)}: expected {expected}, got {got!r}"
    return f"{message.rstrip('.')} (see fluoroscope --help)"


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
