"""``fluoroscope trace TRACE_ID --logs``: the trace's log lines under its waterfall.

Reads ``GET /api/traces/{id}/logs`` (the server's one answer to "which lines belong to
this trace", :mod:`fluoroscope.query.tracelogs`) with the standard library's urllib and
prints one row per line: time (UTC), the service that wrote it (the trace's segment
name, or ``?`` when the server could not tell), the log group, and the message. A
message is printed as plain text (never as rich markup); in a terminal without
``wide``, each message keeps its first line, shortened to fit; otherwise every line of
it is printed. :func:`show_trace_lines` returns the exit status like the other
commands (0, or 2 with ``error:`` on ``err``).
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fluoroscope.terminal import PAGE_TIMEOUT, auth_headers, credentials_hint, normalize_trace_id

__all__ = ["fetch_trace_lines", "show_trace_lines"]


def fetch_trace_lines(
    server_url: str, trace_id: str, timeout: float = PAGE_TIMEOUT
) -> dict[str, Any]:
    """The server's answer for ``trace_id``; raises :class:`ValueError` with a message
    for the user when it cannot be had."""
    url = f"{server_url}/api/traces/{urllib.parse.quote(trace_id)}/logs"
    request = urllib.request.Request(url, headers={"Accept": "application/json", **auth_headers()})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            value = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
            message = f"{body.get('__type')}: {body.get('message')}{credentials_hint(exc.code)}"
        except ValueError:
            message = f"HTTP {exc.code}"
        raise ValueError(f"{url}: {message}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ValueError(
            f"cannot read the trace's log lines from {server_url} ({reason})"
        ) from None
    if not isinstance(value, dict) or not isinstance(value.get("lines"), list):
        raise ValueError(f"{url} did not answer with a trace's log lines")
    return value


def show_trace_lines(
    out: Console, err: Console, server_url: str, trace_id: str, *, wide: bool = False
) -> int:
    """Print the lines of ``trace_id`` (see the module docstring)."""
    normalized = normalize_trace_id(trace_id)
    if normalized is None:
        err.print(Text("error: ", style="bold red") + Text(f"{trace_id!r} is not a trace id"))
        return 2
    try:
        answer = fetch_trace_lines(server_url, normalized)
    except ValueError as exc:
        err.print(Text("error: ", style="bold red") + Text(str(exc)), soft_wrap=True)
        return 2
    lines: list[dict[str, Any]] = answer["lines"]
    if not lines:
        err.print(Text(f"No log lines of trace {normalized}."), soft_wrap=True)
        return 0
    wide = wide or not out.is_terminal
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, expand=False)
    table.add_column("time", no_wrap=True)
    table.add_column("service", no_wrap=True, max_width=None if wide else 24)
    table.add_column("group", no_wrap=True, max_width=None if wide else 28)
    table.add_column("message", no_wrap=not wide, overflow="fold" if wide else "ellipsis")
    for line in lines:
        stamp = datetime.fromtimestamp(int(line.get("timestamp") or 0) / 1000, UTC)
        message = str(line.get("message") or "").rstrip("\n").replace("\t", " ")
        if not wide:
            message = message.split("\n", 1)[0]
        level = str(line.get("level") or "")
        style = (
            "red"
            if level in ("ERROR", "FATAL", "CRITICAL")
            else "yellow"
            if level.startswith("WARN")
            else ""
        )
        table.add_row(
            Text(f"{stamp:%H:%M:%S.%f}"[:-3]),
            Text(str(line.get("service") or "?")),
            Text(str(line.get("logGroup") or "")),
            Text(message, style=style),
        )
    if wide:
        saved = out.width
        out.width = 100_000
        try:
            out.print(table)
        finally:
            out.width = saved
    else:
        out.print(table)
    groups = {line.get("logGroup") for line in lines}
    note = (
        f"{len(lines)} line{'s' if len(lines) != 1 else ''} of trace {normalized} in "
        f"{len(groups)} log group{'s' if len(groups) != 1 else ''}"
    )
    if answer.get("truncated"):
        note += " (more exist: the first ones are shown)"
    err.print(Text(note, style="dim"), soft_wrap=True)
    return 0
