"""``fluoroscope traces`` and ``fluoroscope trace``: the X-Ray API, read in a terminal.

Both commands talk to a running server only through its public X-Ray API
(``POST /TraceSummaries`` and ``POST /Traces``) with the standard library's urllib,
unsigned, so they work against any Fluoroscope reachable over HTTP. Output is drawn
with rich; ``--json`` prints the server's raw objects, one JSON value per line.

Contracts:

* :func:`show_traces` and :func:`show_trace` print to the given consoles and return the
  process exit status: 0 on success (including "no traces"), 2 for anything the user
  must fix (a bad ``--since``, a filter the server rejects, an unknown or malformed
  trace id, a server that cannot be reached). Error text goes to ``err`` only, starting
  with ``error:``; a server's message is printed verbatim (a bad filter's caret line
  stays aligned under its excerpt).
* Nothing printed is cut when ``out`` is not a terminal (a pipe, a file, a CI log), or
  with ``wide``: tables take the width of their content, whole trace ids, URLs, names
  and details. In a terminal without ``wide``, long cells are shortened to fit (``…``).
* Nothing here imports the server side; only :mod:`fluoroscope.model` is used.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from fluoroscope.model.critpath import critical_path, spans_from_documents
from fluoroscope.model.ids import is_trace_id

__all__ = [
    "API_KEY_ENV",
    "ApiError",
    "ServerUnreachable",
    "XRayApi",
    "auth_headers",
    "credentials_hint",
    "format_age",
    "format_seconds",
    "normalize_trace_id",
    "parse_since",
    "shorten_url",
    "show_trace",
    "show_traces",
    "summaries_table",
    "timeline_table",
]

USAGE_ERROR: Final = 2
PAGE_TIMEOUT: Final = 30.0  # seconds per HTTP request
_SINCE_RE: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", re.IGNORECASE)
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EIGHTHS: Final = " ▏▎▍▌▋▊▉█"  # a bar's partial last cell, in eighths
_UNBOUNDED: Final = 100_000  # columns to lay a wide table out in: its content decides


API_KEY_ENV: Final = "FLUOROSCOPE_API_KEY"


def auth_headers() -> dict[str, str]:
    """``Authorization: Bearer`` with the key in ``FLUOROSCOPE_API_KEY`` (one of the server's
    ``--api-key``s), for a server that requires credentials; empty when it is not set."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    return {"Authorization": f"Bearer {key}"} if key else {}


def credentials_hint(status: int) -> str:
    """What to do about a refusal for want of credentials (401/403)."""
    if status not in (401, 403):
        return ""
    if os.environ.get(API_KEY_ENV, "").strip():
        return f" (the key in {API_KEY_ENV} was refused)"
    return f" (set {API_KEY_ENV} to one of the server's --api-key keys)"


class ApiError(Exception):
    """The server answered with an X-Ray error (``{"__type", "message"}``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ServerUnreachable(Exception):
    """No HTTP answer from the server (refused, unresolvable, timed out, not HTTP)."""


@dataclass(frozen=True, slots=True)
class XRayApi:
    """A minimal unsigned X-Ray REST client over urllib; ``base_url`` has no trailing ``/``."""

    base_url: str
    timeout: float = PAGE_TIMEOUT

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` as JSON to ``path``; the decoded JSON object of a 2xx reply.

        Raises :class:`ApiError` for an HTTP error status and :class:`ServerUnreachable`
        when nothing (or something that is not this API) answers.
        """
        request = urllib.request.Request(
            self.base_url + path,
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                **auth_headers(),
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _api_error(exc, self.base_url + path) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerUnreachable(
                f"cannot reach the Fluoroscope server at {self.base_url} ({reason}); "
                "is `fluoroscope server` running there? (set --server or FLUOROSCOPE_SERVER)"
            ) from None
        try:
            value = json.loads(raw)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ServerUnreachable(f"{self.base_url}{path} did not answer with an X-Ray API reply")
        return value

    def summaries(
        self, start: float, end: float, filter_expression: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` summaries in ``[start, end]``, newest first, following NextToken.

        The flag is True when the server has more beyond ``limit``.
        """
        body: dict[str, Any] = {"StartTime": start, "EndTime": end}
        if filter_expression:
            body["FilterExpression"] = filter_expression
        found: list[dict[str, Any]] = []
        while True:
            page = self.call("/TraceSummaries", body)
            found.extend(page.get("TraceSummaries") or [])
            token = page.get("NextToken")
            if len(found) >= limit:
                return found[:limit], bool(token) or len(found) > limit
            if not token:
                return found, False
            body["NextToken"] = token

    def trace(self, trace_id: str) -> dict[str, Any] | None:
        """The X-Ray ``Trace`` object of ``trace_id``, or None when the server has no such trace."""
        reply = self.call("/Traces", {"TraceIds": [trace_id]})
        for trace in reply.get("Traces") or []:
            if trace.get("Id") == trace_id:
                return dict(trace)
        return None


def _api_error(exc: urllib.error.HTTPError, url: str) -> ApiError:
    try:
        payload = json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        code = str(payload.get("__type") or exc.headers.get("x-amzn-ErrorType") or "Error")
        message = payload["message"] + credentials_hint(exc.code)
        return ApiError(exc.code, code.rpartition("#")[2], message)
    return ApiError(
        exc.code,
        "HTTPError",
        f"{url} answered HTTP {exc.code} {exc.reason} without an X-Ray error; "
        "is a Fluoroscope server listening there?",
    )


# -- small formatting helpers ---------------------------------------------------------


def parse_since(text: str) -> float:
    """Seconds in ``30s``/``5m``/``1h``/``2d`` (a number and one unit); ValueError otherwise."""
    match = _SINCE_RE.fullmatch(text)
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f"--since: expected a duration such as 30s, 5m, 1h or 2d, got {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2).lower()]


def format_seconds(seconds: float) -> str:
    """``850 ms``, ``12.5 ms``, ``2.50 s``, ``95 s``: a duration for people."""
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    return f"{seconds:.0f} s"


def format_age(seconds: float) -> str:
    """``12s ago``, ``5m ago``, ``3h ago``, ``2d ago`` (``just now`` under a second)."""
    if seconds < 1:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit} ago"
    return f"{int(seconds)}s ago"


def shorten_url(url: str, width: int = 48) -> str:
    """The URL without its scheme, ellipsized in the middle to at most ``width`` characters
    (the host's start and the path's end are what identify a request)."""
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", url, flags=re.IGNORECASE)
    if len(text) <= width:
        return text
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head) :]


def normalize_trace_id(text: str) -> str | None:
    """The X-Ray trace id in ``text`` (also accepting a 32-hex W3C/OpenTelemetry id), or None."""
    value = text.strip().lower()
    if re.fullmatch(r"[0-9a-f]{32}", value):
        value = f"1-{value[:8]}-{value[8:]}"
    return value if is_trace_id(value) else None


def _status_text(status: object) -> Text:
    if not isinstance(status, int) or isinstance(status, bool) or status <= 0:
        return Text("-", style="dim")
    if status == 429:
        style = "magenta"
    elif status >= 500:
        style = "red"
    elif status >= 400:
        style = "yellow"
    elif status >= 300:
        style = "cyan"
    else:
        style = "green"
    return Text(str(status), style=style)


_FLAG_STYLES: Final = {
    "fault": "bold red",
    "error": "yellow",
    "throttle": "magenta",
    "partial": "cyan",
    "in progress": "cyan",
}


def _flags_text(flags: Iterable[str]) -> Text:
    return Text(" ").join(Text(flag, style=_FLAG_STYLES.get(flag, "")) for flag in flags)


# -- traces: the summaries table ------------------------------------------------------


def _service_label(summary: dict[str, Any]) -> str:
    services = summary.get("ServiceIds") or []
    entry = summary.get("EntryPoint") or {}
    name = str(entry.get("Name") or (services[0].get("Name") if services else "") or "-")
    others = len(services) - 1 if services else 0
    return f"{name} +{others}" if others > 0 else name


_SUMMARY_FLAGS: Final = (
    ("fault", "HasFault"),
    ("error", "HasError"),
    ("throttle", "HasThrottle"),
    ("partial", "IsPartial"),
)


def summaries_table(
    summaries: list[dict[str, Any]], now: float, width: int = 200, *, wide: bool = False
) -> Table:
    """One row per X-Ray ``TraceSummary``: age, id, method, URL, status, response time,
    entry service (``+N`` other services) and fault/error/throttle/partial flags.

    Laid out for a ``width``-column terminal: the URL gets what the other columns leave
    (middle-ellipsized, at most 60); under 120 columns the method joins the URL, under 100
    the service column is left out. ``wide``: every column, nothing shortened.
    """
    if wide:
        width = _UNBOUNDED
    show_method, show_service = width >= 120, width >= 100
    flags = [[name for name, key in _SUMMARY_FLAGS if s.get(key)] for s in summaries]
    services = [_service_label(s) for s in summaries]
    flags_width = max([5] + [len(" ".join(f)) for f in flags])
    service_width = max([7] + [len(label) for label in services]) if show_service else -2
    # age 7, id 35, status 6, time 7, method 6 (or "POST " inside the url), 2 between columns
    fixed = 7 + 35 + 6 + 7 + 6 + flags_width + service_width + 2 * (7 if show_service else 6)
    url_width = _UNBOUNDED if wide else max(8, min(60, width - fixed))
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("age", justify="right", no_wrap=True, min_width=7)
    table.add_column("trace id", no_wrap=True, min_width=35)
    if show_method:
        table.add_column("method", no_wrap=True, overflow="ellipsis")
    table.add_column("url", no_wrap=True, overflow="ellipsis", min_width=8)
    table.add_column("status", justify="right", no_wrap=True, min_width=6)
    table.add_column("time", justify="right", no_wrap=True, min_width=7)
    if show_service:
        table.add_column("service", no_wrap=True, overflow="ellipsis")
    table.add_column("flags", no_wrap=True, overflow="ellipsis", min_width=flags_width)
    for summary, flag_names, service in zip(summaries, flags, services, strict=True):
        http = summary.get("Http") or {}
        seconds = summary.get("ResponseTime", summary.get("Duration")) or 0.0
        method = str(http.get("HttpMethod") or "-")
        url = shorten_url(str(http.get("HttpURL") or "-"), url_width)
        cells: list[Text | str] = [
            Text(format_age(max(0.0, now - float(summary.get("StartTime") or now))), "dim"),
            str(summary.get("Id", "")),
        ]
        cells += [method, url] if show_method else [f"{method} {url}"]
        unknown = "ResponseTime" not in summary and summary.get("IsPartial")
        timing = "…" if unknown else format_seconds(float(seconds))
        cells += [_status_text(http.get("HttpStatus")), timing]
        cells += [service] if show_service else []
        table.add_row(*cells, _flags_text(flag_names))
    return table


def show_traces(
    out: Console,
    err: Console,
    server_url: str,
    filter_expression: str | None = None,
    *,
    since: str = "1h",
    limit: int = 50,
    as_json: bool = False,
    wide: bool = False,
    now: float | None = None,
) -> int:
    """``fluoroscope traces``: the newest ``limit`` summaries of the last ``since``
    (``wide``, or ``out`` not a terminal: nothing shortened)."""
    try:
        window = parse_since(since)
    except ValueError as exc:
        return _error(err, str(exc))
    end = time.time() if now is None else now
    expression = filter_expression.strip() if filter_expression else None
    try:
        found, more = XRayApi(server_url).summaries(end - window, end, expression, limit)
    except (ApiError, ServerUnreachable) as exc:
        return _error(err, str(exc))
    if as_json:
        for summary in found:
            out.file.write(json.dumps(summary, separators=(",", ":")) + "\n")
        return 0
    scope = f"in the last {since.strip()}" + (f" matching {expression}" if expression else "")
    if not found:
        err.print(Text(f"No traces {scope}."), soft_wrap=True)
        return 0
    wide = wide or not out.is_terminal
    table = summaries_table(found, end, out.width, wide=wide)
    _print(out, table, wide=wide)
    note = f"{len(found)} trace{'s' if len(found) != 1 else ''} {scope}, newest first"
    if more:
        note += f"; more exist (raise --limit above {limit} or narrow --since)"
    err.print(Text(note, style="dim"), soft_wrap=True)
    return 0


# -- trace: the timeline --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Row:
    depth: int
    doc: dict[str, Any]
    is_segment: bool


def _start(doc: dict[str, Any]) -> float:
    value = doc.get("start_time")
    return float(value) if isinstance(value, int | float) else 0.0


def _end(doc: dict[str, Any]) -> float | None:
    value = doc.get("end_time")
    return float(value) if isinstance(value, int | float) else None


def _rows(documents: list[dict[str, Any]]) -> Iterator[_Row]:
    """Segments grouped by service (services in order of first start), each followed by
    its subsegments depth-first, siblings in start order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for doc in sorted(documents, key=_start):
        groups.setdefault(str(doc.get("name", "")), []).append(doc)

    def walk(doc: dict[str, Any], depth: int) -> Iterator[_Row]:
        yield _Row(depth, doc, depth == 0)
        children = [c for c in doc.get("subsegments") or [] if isinstance(c, dict)]
        for child in sorted(children, key=_start):
            yield from walk(child, depth + 1)

    for docs in groups.values():
        for doc in docs:
            yield from walk(doc, 0)


def _bar(start: float, end: float, origin: float, total: float, width: int, style: str) -> Text:
    """Block characters from ``start`` to ``end`` on a ``width``-cell axis of ``total`` s."""
    scale = width / total if total > 0 else 0.0
    first = min(width - 1, max(0, math.floor((start - origin) * scale)))
    eighths = max(1, round((end - start) * scale * 8))
    eighths = min(eighths, (width - first) * 8)
    full, part = divmod(eighths, 8)
    bar = "█" * full + (_EIGHTHS[part] if part else "")
    return Text(" " * first) + Text(bar, style=style) + Text(" " * (width - first - len(bar)))


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _details(doc: dict[str, Any], *, wide: bool = False) -> str:
    """What identifies the call: aws operation/table/bucket/queue/function, the origin,
    a remote call's method and URL (whole when ``wide``), a SQL query or URL, and the
    first exception."""
    parts: list[str] = []
    aws = _dict(doc.get("aws"))
    for key in ("operation", "table_name", "bucket_name", "queue_url", "function_name"):
        if aws.get(key):
            parts.append(str(aws[key]) if key == "operation" else f"{key}={aws[key]}")
    if doc.get("origin"):
        parts.append(str(doc["origin"]))
    request = _dict(_dict(doc.get("http")).get("request"))
    if doc.get("namespace") == "remote" and request:
        url = str(request.get("url", ""))
        shown = shorten_url(url, _UNBOUNDED if wide else 48)
        parts.append(f"{request.get('method', '')} {shown}")
    sql = _dict(doc.get("sql"))
    if sql.get("url") or sql.get("sanitized_query"):
        parts.append(str(sql.get("sanitized_query") or sql.get("url")))
    exceptions = _dict(doc.get("cause")).get("exceptions") or []
    if exceptions and isinstance(exceptions[0], dict):
        first = exceptions[0]
        parts.append(f"{first.get('type') or 'exception'}: {first.get('message', '')}".strip())
    return "  ".join(p for p in parts if p.strip())


def _entity_flags(doc: dict[str, Any]) -> list[str]:
    flags = [name for name in ("fault", "error", "throttle") if doc.get(name)]
    if doc.get("in_progress") or _end(doc) is None:
        flags.append("in progress")
    return flags


def timeline_table(
    trace: dict[str, Any], documents: list[dict[str, Any]], width: int, *, wide: bool = False
) -> Table:
    """The waterfall of one trace: a row per segment and subsegment, indented by nesting,
    each with a ``width``-cell bar placed and scaled on the trace's time span.
    ``wide``: names and details whole, never shortened."""
    starts = [_start(d) for d in documents]
    ends = [e for d in documents if (e := _end(d)) is not None]
    origin = min(starts) if starts else 0.0
    finish = max(ends + starts) if starts else 0.0
    total = max(finish - origin, float(trace.get("Duration") or 0.0), 1e-6)
    table = Table(box=box.HORIZONTALS, show_edge=False, header_style="bold", pad_edge=False)
    table.add_column(
        "name", no_wrap=True, overflow="ellipsis", min_width=12, max_width=None if wide else 40
    )
    table.add_column(f"0 … {format_seconds(total)}", no_wrap=True, min_width=width, max_width=width)
    table.add_column("duration", justify="right", no_wrap=True, min_width=8)
    table.add_column("self ◆=critical", justify="right", no_wrap=True, min_width=9)
    table.add_column("status", justify="right", no_wrap=True, min_width=6)
    table.add_column("flags", no_wrap=True, min_width=5)
    table.add_column("details", no_wrap=True, overflow="ellipsis")
    path = critical_path(spans_from_documents(documents))
    critical = {e.id for e in path.entries}
    previous_service: str | None = None
    for row in _rows(documents):
        doc = row.doc
        if row.is_segment:
            service = str(doc.get("name", ""))
            if previous_service is not None and service != previous_service:
                table.add_section()
            previous_service = service
        start, end = _start(doc), _end(doc)
        flags = _entity_flags(doc)
        style = (
            "red"
            if doc.get("fault")
            else "yellow"
            if doc.get("error")
            else "magenta"
            if doc.get("throttle")
            else "green"
        )
        if doc.get("inferred"):
            style = "blue"
        name = Text("  " * row.depth + str(doc.get("name", "?")))
        if row.is_segment:
            name.stylize("bold")
        if doc.get("inferred"):
            name.append(" (inferred)", style="dim italic")
        table.add_row(
            name,
            _bar(start, end if end is not None else origin + total, origin, total, width, style),
            format_seconds(end - start) if end is not None else "…",
            _self_text(doc, path.self_times, critical),
            _status_text(_dict(_dict(doc.get("http")).get("response")).get("status")),
            _flags_text(flags),
            Text(_details(doc, wide=wide), style="dim"),
        )
    return table


def _self_text(doc: dict[str, Any], self_times: dict[str, float], critical: set[str]) -> Text:
    """An entity's self time, marked ``◆`` when it is on the trace's critical path."""
    eid = str(doc.get("id", ""))
    if doc.get("inferred") or eid not in self_times:
        return Text("")
    text = Text(format_seconds(self_times[eid]))
    if eid in critical:
        return Text.assemble(("◆ ", "bold cyan"), text)
    return text


def show_trace(
    out: Console,
    err: Console,
    server_url: str,
    trace_id: str,
    *,
    as_json: bool = False,
    wide: bool = False,
    now: float | None = None,
) -> int:
    """``fluoroscope trace``: one trace's timeline, or (``as_json``) its raw documents
    (``wide``, or ``out`` not a terminal: nothing shortened)."""
    normalized = normalize_trace_id(trace_id)
    if normalized is None:
        return _error(
            err,
            f"{trace_id!r} is not a trace id (expected 1-XXXXXXXX-YYYYYYYYYYYYYYYYYYYYYYYY, "
            "hex digits)",
        )
    try:
        trace = XRayApi(server_url).trace(normalized)
    except (ApiError, ServerUnreachable) as exc:
        return _error(err, str(exc))
    if trace is None:
        return _error(err, f"trace {normalized} not found on {server_url}")
    documents = [json.loads(s["Document"]) for s in trace.get("Segments") or []]
    if as_json:
        for doc in documents:
            out.file.write(json.dumps(doc, separators=(",", ":")) + "\n")
        return 0
    starts = [_start(d) for d in documents]
    began = min(starts) if starts else 0.0
    clock = time.time() if now is None else now
    services = {str(d.get("name", "")) for d in documents if not d.get("inferred")}
    header = Text.assemble(
        ("Trace ", "bold"),
        (normalized, "bold"),
        f"  {format_seconds(float(trace.get('Duration') or 0.0))}",
        f"  {len(services)} service{'s' if len(services) != 1 else ''}",
        f"  started {datetime.fromtimestamp(began, UTC):%Y-%m-%d %H:%M:%S} UTC"
        f" ({format_age(max(0.0, clock - began))})",
    )
    out.print(header, soft_wrap=True)
    wide = wide or not out.is_terminal
    width = 60 if wide else max(12, min(60, (out.width - 60) // 2))
    table = timeline_table(trace, documents, width, wide=wide)
    _print(out, table, wide=wide)
    if trace.get("LimitExceeded"):
        err.print(
            Text("the trace exceeds the server's size limit; some segments are missing"),
            soft_wrap=True,
        )
    return 0


def _print(out: Console, renderable: Table, *, wide: bool) -> None:
    """Print ``renderable``; ``wide``: laid out as wide as its content (the console's
    width is lifted meanwhile), so no cell is shortened."""
    if not wide:
        out.print(renderable)
        return
    saved = out.width
    out.width = _UNBOUNDED
    try:
        out.print(renderable)
    finally:
        out.width = saved


def _error(err: Console, message: str) -> int:
    err.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True, highlight=False)
    return USAGE_ERROR
