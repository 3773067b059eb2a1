"""``fluoroscope logs query / tail / trace``: the CloudWatch Logs API, read in a terminal.

The commands talk to a running server only through its public CloudWatch Logs API (the
JSON 1.1 protocol, logs.md §1: ``POST /`` with ``X-Amz-Target: Logs_20140328.<Op>``)
with the standard library's urllib, unsigned like ``fluoroscope traces``; ``trace`` also
asks the X-Ray API for the trace's time span. Tables are drawn with rich; ``--json``
prints one JSON object per line.

Contracts:

* :func:`show_query`, :func:`show_tail` and :func:`show_trace_logs` print to the given
  consoles and return the process exit status: 0 on success (including "nothing
  found"), 2 for anything the user must fix (a bad ``--since``, a query the server
  rejects — with a caret under the offending characters —, an unknown log group, a
  server that cannot be reached), 1 when a query fails, times out or is cancelled on
  the server. Error text goes to ``err`` only, starting with ``error:``.
* ``query`` runs Logs Insights (StartQuery, then GetQueryResults until the query ends;
  at most ``timeout`` seconds, then StopQuery); without ``--group`` it covers every log
  group (DescribeLogGroups), 50 groups per query.
* ``tail`` polls FilterLogEvents from ``since`` ago, prints each event once (in time
  order within a poll), and returns when ``stop`` is set.
* ``trace`` prints the trace's lines in time order as the server's ``GET
  /api/traces/ID/logs`` gives them (:mod:`fluoroscope.query.tracelogs`: the lines carrying
  the id, its invocations' lines, its groups in its window; ``--group`` keeps those
  groups). A server without that route gets a query of every line carrying the trace id
  (``@xrayTraceId``, resolved from the line itself or its Lambda invocation), over the
  trace's own time span ± 5 minutes when the X-Ray API knows the trace, else ``since``.
* Nothing is cut when ``out`` is not a terminal or with ``wide``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from rich.console import Console
from rich.table import Table
from rich.text import Text

from fluoroscope.terminal import (
    ApiError,
    ServerUnreachable,
    XRayApi,
    auth_headers,
    credentials_hint,
    normalize_trace_id,
    parse_since,
)
from fluoroscope.tracelines_terminal import fetch_trace_lines

__all__ = [
    "LogsApi",
    "QueryFailed",
    "query_rows",
    "show_query",
    "show_tail",
    "show_trace_logs",
]

USAGE_ERROR: Final = 2
FAILED: Final = 1
_DONE: Final = frozenset(("Complete", "Failed", "Cancelled", "Timeout", "Unknown"))
_MAX_GROUPS: Final = 50  # StartQuery's logGroupNames
_TRACE_PADDING: Final = 300.0  # seconds around a trace's span (logs.md §6)
_UNBOUNDED: Final = 100_000


class QueryFailed(Exception):
    """A query ended in ``Failed``, ``Cancelled``, ``Timeout`` or ran past the CLI's limit."""


@dataclass(frozen=True, slots=True)
class LogsApi:
    """A minimal unsigned CloudWatch Logs JSON 1.1 client over urllib."""

    base_url: str
    timeout: float = 30.0

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Call ``operation`` with ``body``; the decoded reply. Raises :class:`ApiError`
        (with the server's ``__type``) or :class:`ServerUnreachable`."""
        request = urllib.request.Request(
            self.base_url + "/",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"Logs_20140328.{operation}",
                **auth_headers(),
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _api_error(exc, operation) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerUnreachable(
                f"cannot reach the Fluoroscope server at {self.base_url} ({reason}); "
                "is `fluoroscope server` running there? (set --server or FLUOROSCOPE_SERVER)"
            ) from None
        try:
            value = json.loads(raw) if raw.strip() else {}
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ServerUnreachable(
                f"{self.base_url} did not answer {operation} with a CloudWatch Logs reply"
            )
        return value

    def groups(self) -> list[str]:
        """Every log group's name, in the server's (name) order."""
        names: list[str] = []
        body: dict[str, Any] = {}
        while True:
            page = self.call("DescribeLogGroups", body)
            names += [str(g["logGroupName"]) for g in page.get("logGroups") or []]
            token = page.get("nextToken")
            if not token:
                return names
            body = {"nextToken": token}

    def run_query(
        self,
        query: str,
        groups: list[str],
        start: float,
        end: float,
        *,
        limit: int | None = None,
        timeout: float = 120.0,
        stop: threading.Event | None = None,
    ) -> tuple[list[list[dict[str, str]]], dict[str, Any]]:
        """Run one Insights query to its end: (result rows, statistics).

        Raises :class:`QueryFailed` when it does not complete (StopQuery is sent when
        ``timeout`` passes or ``stop`` is set), besides the errors of :meth:`call`.
        """
        body: dict[str, Any] = {
            "logGroupNames": groups,
            "startTime": int(start),
            "endTime": int(end + 0.999),
            "queryString": query,
        }
        if limit is not None:
            body["limit"] = limit
        query_id = str(self.call("StartQuery", body)["queryId"])
        deadline = time.monotonic() + timeout
        pause = 0.05
        while True:
            reply = self.call("GetQueryResults", {"queryId": query_id})
            status = str(reply.get("status", "Unknown"))
            if status in _DONE:
                if status != "Complete":
                    raise QueryFailed(f"the query ended with status {status}")
                return list(reply.get("results") or []), dict(reply.get("statistics") or {})
            if time.monotonic() > deadline or (stop is not None and stop.is_set()):
                with contextlib.suppress(ApiError):  # it ended meanwhile
                    self.call("StopQuery", {"queryId": query_id})
                raise QueryFailed(
                    "stopped"
                    if stop is not None and stop.is_set()
                    else f"no result in {timeout:g} s"
                )
            (stop or threading.Event()).wait(pause)
            pause = min(pause * 1.5, 1.0)


def _api_error(exc: urllib.error.HTTPError, operation: str) -> ApiError:
    try:
        payload = json.loads(exc.read() or b"null")
    except (ValueError, OSError):
        payload = None
    if isinstance(payload, dict) and ("__type" in payload or "message" in payload):
        code = str(payload.get("__type") or "Error").rpartition("#")[2].partition(":")[0]
        message = str(payload.get("message") or payload.get("Message"))
        error = ApiError(exc.code, code, message + credentials_hint(exc.code))
        error.payload = payload  # type: ignore[attr-defined]
        return error
    return ApiError(
        exc.code,
        "HTTPError",
        f"{operation} answered HTTP {exc.code} {exc.reason} without a CloudWatch Logs error; "
        "is a Fluoroscope server (with the Logs API) listening there?",
    )


def _error(err: Console, message: str, code: int = USAGE_ERROR) -> int:
    err.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True, highlight=False)
    return code


def _query_error(err: Console, exc: ApiError, query: str) -> int:
    """The server's message; for a malformed query whose message does not show where
    (on lines of its own), the query with a caret line under the characters pointed at."""
    code = _error(err, f"{exc.code}: {exc.message}" if exc.code != "Error" else exc.message)
    payload = getattr(exc, "payload", {})
    location = ((payload.get("queryCompileError") or {}).get("location")) or {}
    start, end = location.get("startCharOffset"), location.get("endCharOffset")
    shown = "\n" in exc.message
    if exc.code == "MalformedQueryException" and isinstance(start, int) and not shown:
        stop = end if isinstance(end, int) and end >= start else start
        err.print(Text("  " + query), soft_wrap=True, highlight=False)
        width = max(1, min(stop, len(query)) - start + (1 if stop == start else 0))
        err.print(Text("  " + " " * start + "^" * width, style="bold red"), soft_wrap=True)
    return code


def query_rows(results: list[list[dict[str, str]]]) -> tuple[list[str], list[dict[str, str]]]:
    """The result fields in order of first appearance (``@ptr`` left out) and the rows as dicts."""
    fields: dict[str, None] = {}
    rows: list[dict[str, str]] = []
    for result in results:
        row = {
            str(cell.get("field")): str(cell.get("value", ""))
            for cell in result
            if cell.get("field") != "@ptr"
        }
        fields.update(dict.fromkeys(row))
        rows.append(row)
    return list(fields), rows


def _table(fields: list[str], rows: list[dict[str, str]], width: int, *, wide: bool) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in fields:
        last = name == fields[-1]
        table.add_column(
            name,
            no_wrap=True,
            overflow="ellipsis",
            ratio=1 if last and not wide else None,
            max_width=None if wide or last else max(12, width // 3),
        )
    for row in rows:
        table.add_row(*(Text(_one_line(row.get(name, ""))) for name in fields))
    return table


def _one_line(value: str) -> str:
    """One table line: line breaks shown as ``⏎``, tabs as two spaces (rich would expand
    them after measuring, cutting the cell)."""
    text = value.rstrip("\n").replace("\r\n", "⏎").replace("\n", "⏎")
    return text.replace("\t", "  ")


def _print(out: Console, table: Table, *, wide: bool) -> None:
    if not wide:
        out.print(table)
        return
    saved = out.width
    out.width = _UNBOUNDED
    try:
        out.print(table)
    finally:
        out.width = saved


def _resolve_groups(api: LogsApi, groups: list[str] | None) -> list[str]:
    return list(dict.fromkeys(groups)) if groups else api.groups()


def _chunks(groups: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(groups), _MAX_GROUPS):
        yield groups[i : i + _MAX_GROUPS]


def show_query(
    out: Console,
    err: Console,
    server_url: str,
    query: str,
    *,
    since: str = "1h",
    groups: list[str] | None = None,
    limit: int | None = None,
    as_json: bool = False,
    wide: bool = False,
    timeout: float = 120.0,
    stop: threading.Event | None = None,
) -> int:
    """``fluoroscope logs query``: a Logs Insights query over the last ``since``."""
    try:
        window = parse_since(since)
    except ValueError as exc:
        return _error(err, str(exc))
    end = time.time()
    api = LogsApi(server_url)
    results: list[list[dict[str, str]]] = []
    matched = scanned = 0.0
    try:
        names = _resolve_groups(api, groups)
        if not names:
            err.print(Text(f"No log groups on {server_url}."), soft_wrap=True)
            return 0
        for chunk in _chunks(names):
            found, stats = api.run_query(
                query, chunk, end - window, end, limit=limit, timeout=timeout, stop=stop
            )
            results += found
            matched += float(stats.get("recordsMatched") or 0)
            scanned += float(stats.get("recordsScanned") or 0)
    except ApiError as exc:
        return _query_error(err, exc, query)
    except ServerUnreachable as exc:
        return _error(err, str(exc))
    except QueryFailed as exc:
        return _error(err, str(exc), FAILED)
    fields, rows = query_rows(results)
    if as_json:
        for row in rows:
            out.file.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        return 0
    scope = (
        f"in the last {since.strip()} over {len(names)} log group{'s' if len(names) != 1 else ''}"
    )
    if not rows:
        err.print(Text(f"No results {scope}."), soft_wrap=True)
        return 0
    wide = wide or not out.is_terminal
    _print(out, _table(fields, rows, out.width, wide=wide), wide=wide)
    note = f"{len(rows)} row{'s' if len(rows) != 1 else ''} {scope}"
    note += f"; {matched:.0f} records matched, {scanned:.0f} scanned"
    err.print(Text(note, style="dim"), soft_wrap=True)
    return 0


def _event_time(ms: object) -> str:
    value = float(ms) / 1000 if isinstance(ms, int | float) else 0.0
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def show_tail(
    out: Console,
    err: Console,
    server_url: str,
    group: str,
    *,
    since: str = "10m",
    pattern: str | None = None,
    stream_prefix: str | None = None,
    as_json: bool = False,
    interval: float = 1.0,
    stop: threading.Event | None = None,
    on_poll: Callable[[], None] | None = None,
) -> int:
    """``fluoroscope logs tail``: the group's events from ``since`` ago, then new ones as
    they arrive (FilterLogEvents every ``interval`` seconds) until ``stop`` is set."""
    try:
        window = parse_since(since)
    except ValueError as exc:
        return _error(err, str(exc))
    stop = stop or threading.Event()
    api = LogsApi(server_url)
    after = int((time.time() - window) * 1000)
    seen: set[str] = set()  # event ids at timestamp ``after`` already printed
    while True:
        body: dict[str, Any] = {"logGroupName": group, "startTime": after, "startFromHead": True}
        if pattern:
            body["filterPattern"] = pattern
        if stream_prefix:
            body["logStreamNamePrefix"] = stream_prefix
        events: list[dict[str, Any]] = []
        try:
            while True:
                page = api.call("FilterLogEvents", body)
                events += page.get("events") or []
                token = page.get("nextToken")
                if not token:
                    break
                body["nextToken"] = token
        except ApiError as exc:
            return _error(err, f"{exc.code}: {exc.message}" if exc.code != "Error" else exc.message)
        except ServerUnreachable as exc:
            return _error(err, str(exc))
        events.sort(key=lambda e: (int(e.get("timestamp") or 0), str(e.get("eventId", ""))))
        for event in events:
            event_id = str(event.get("eventId", ""))
            stamp = int(event.get("timestamp") or 0)
            if event_id in seen or stamp < after:
                continue
            if stamp > after:
                after, seen = stamp, set()
            seen.add(event_id)
            if as_json:
                out.file.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")
            else:
                line = Text.assemble(
                    (_event_time(stamp), "dim"),
                    " ",
                    (str(event.get("logStreamName", "")), "cyan"),
                    " ",
                    _one_line(str(event.get("message", ""))),
                )
                out.print(line, soft_wrap=True, highlight=False)
        out.file.flush()
        if on_poll is not None:
            on_poll()
        if stop.wait(interval):
            return 0


def _served_rows(
    server_url: str, trace_id: str, groups: list[str] | None
) -> list[dict[str, str]] | None:
    """The trace's lines from ``GET /api/traces/ID/logs`` as query rows (in ``groups``
    only, when given), or None when the server does not answer it."""
    try:
        answer = fetch_trace_lines(server_url, trace_id)
    except ValueError:
        return None
    wanted = set(groups or ())
    return [
        {
            "@timestamp": datetime.fromtimestamp(int(line["timestamp"]) / 1000, UTC).strftime(
                "%Y-%m-%d %H:%M:%S.%f"
            )[:-3],
            "@log": str(line["logGroup"]),
            "@logStream": str(line["logStream"]),
            "@message": str(line["message"]),
        }
        for line in answer["lines"]
        if not wanted or line["logGroup"] in wanted
    ]


def _trace_window(server_url: str, trace_id: str) -> tuple[float, float] | None:
    """The trace's span ± 5 minutes from the X-Ray API, or None when it is not known."""
    try:
        trace = XRayApi(server_url).trace(trace_id)
    except (ApiError, ServerUnreachable):
        return None
    if not trace:
        return None
    times: list[float] = []
    for segment in trace.get("Segments") or []:
        try:
            doc = json.loads(segment["Document"])
        except (KeyError, TypeError, ValueError):
            continue
        times += [
            float(doc[k]) for k in ("start_time", "end_time") if isinstance(doc.get(k), int | float)
        ]
    if not times:
        return None
    return min(times) - _TRACE_PADDING, max(times) + _TRACE_PADDING


def show_trace_logs(
    out: Console,
    err: Console,
    server_url: str,
    trace_id: str,
    *,
    since: str = "1d",
    groups: list[str] | None = None,
    as_json: bool = False,
    wide: bool = False,
    timeout: float = 120.0,
) -> int:
    """``fluoroscope logs trace``: every log line of one trace, in time order."""
    normalized = normalize_trace_id(trace_id)
    if normalized is None:
        return _error(
            err,
            f"{trace_id!r} is not a trace id (expected 1-XXXXXXXX-YYYYYYYYYYYYYYYYYYYYYYYY, "
            "hex digits)",
        )
    try:
        window = parse_since(since)
    except ValueError as exc:
        return _error(err, str(exc))
    # the server's own answer (query/tracelogs: the trace's invocations, groups and
    # window); a server without it gets the Insights query over every group
    rows = _served_rows(server_url, normalized, groups)
    scope = "its groups and span ± 5 min"
    if rows is None:
        span = _trace_window(server_url, normalized)
        start, end = span if span else (time.time() - window, time.time())
        query = (
            "fields @timestamp, @log, @logStream, @message"
            f' | filter @xrayTraceId = "{normalized}"'
            " | sort @timestamp asc | limit 10000"
        )
        api = LogsApi(server_url)
        results: list[list[dict[str, str]]] = []
        try:
            names = _resolve_groups(api, groups)
            for chunk in _chunks(names):
                results += api.run_query(query, chunk, start, end, timeout=timeout)[0]
        except ApiError as exc:
            return _error(err, f"{exc.code}: {exc.message}" if exc.code != "Error" else exc.message)
        except ServerUnreachable as exc:
            return _error(err, str(exc))
        except QueryFailed as exc:
            return _error(err, str(exc), FAILED)
        _, rows = query_rows(results)
        rows.sort(key=lambda row: row.get("@timestamp", ""))  # stable: each query's order kept
        for row in rows:
            row["@log"] = row.get("@log", "").partition(":")[2] or row.get("@log", "")
        scope = "its span ± 5 min" if span else f"the last {since.strip()}"
    if as_json:
        for row in rows:
            out.file.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        return 0
    if not rows:
        err.print(Text(f"No log lines of trace {normalized} in {scope}."), soft_wrap=True)
        return 0
    wide = wide or not out.is_terminal
    table = _table(["@timestamp", "@log", "@logStream", "@message"], rows, out.width, wide=wide)
    table.columns[1].header = "group"
    table.columns[2].header = "stream"
    table.columns[0].header = "time"
    table.columns[3].header = "message"
    _print(out, table, wide=wide)
    groups_seen = {row.get("@log") for row in rows}
    err.print(
        Text(
            f"{len(rows)} line{'s' if len(rows) != 1 else ''} of trace {normalized} "
            f"in {len(groups_seen)} log group{'s' if len(groups_seen) != 1 else ''} ({scope})",
            style="dim",
        ),
        soft_wrap=True,
    )
    return 0
