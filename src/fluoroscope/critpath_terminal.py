"""``fluoroscope critical-path``: the critical path across a filtered set of traces, read
from the server's ``POST /api/critical-path`` and printed as a ranked table.

:func:`show_critical_path` returns the exit status (0 on success, 2 for a bad window,
filter or server, the error on ``err``); ``as_json`` prints the API's answer as is.
"""

from __future__ import annotations

import json
import time

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fluoroscope.terminal import (
    ApiError,
    ServerUnreachable,
    XRayApi,
    _error,
    format_seconds,
    parse_since,
)

__all__ = ["show_critical_path"]


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole > 0 else "-"


def show_critical_path(
    out: Console,
    err: Console,
    server_url: str,
    filter_expression: str | None = None,
    *,
    since: str = "1h",
    slowest: float = 100.0,
    as_json: bool = False,
    now: float | None = None,
) -> int:
    """Print which entries make up the critical path of the matching traces."""
    try:
        window = parse_since(since)
    except ValueError as exc:
        return _error(err, str(exc))
    end = time.time() if now is None else now
    body: dict[str, object] = {"StartTime": end - window, "EndTime": end, "SlowestPercent": slowest}
    if filter_expression and filter_expression.strip():
        body["FilterExpression"] = filter_expression.strip()
    try:
        answer = XRayApi(server_url).call("/api/critical-path", body)
    except (ApiError, ServerUnreachable) as exc:
        return _error(err, str(exc))
    if as_json:
        out.file.write(json.dumps(answer, separators=(",", ":")) + "\n")
        return 0
    if answer.get("Message"):
        err.print(Text(str(answer["Message"])), soft_wrap=True)
    entries = answer.get("Entries") or []
    if not entries:
        err.print(Text(f"No traces in the last {since.strip()} to analyse."), soft_wrap=True)
        return 0
    p50, p99 = float(answer.get("P50") or 0.0), float(answer.get("P99") or 0.0)
    out.print(
        Text(
            f"Critical path of {answer.get('TracesAnalysed')} traces "
            f"(p50 {format_seconds(p50)}, p99 {format_seconds(p99)})",
            style="bold",
        ),
        soft_wrap=True,
    )
    table = Table(box=box.HORIZONTALS, show_edge=False, header_style="bold", pad_edge=False)
    for column, justify in (
        ("service", "left"), ("entry", "left"), ("operation", "left"), ("traces", "right"),
        ("at p50", "right"), ("% p50", "right"), ("at p99", "right"), ("% p99", "right"),
    ):  # fmt: skip
        numeric = justify == "right"
        table.add_column(
            column,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=True,
            min_width=7 if numeric else None,
            max_width=None if numeric else 24,
            overflow="ellipsis",
        )
    for e in entries:
        table.add_row(
            str(e["Service"]), str(e["Name"]), str(e["Operation"]), str(e["Traces"]),
            format_seconds(float(e["AtP50"])), _share(float(e["AtP50"]), p50),
            format_seconds(float(e["AtP99"])), _share(float(e["AtP99"]), p99),
        )  # fmt: skip
    if not out.is_terminal:  # piped: whole rows, never shortened
        out.width = max(out.width, 200)
    out.print(table)
    return 0
