"""Logs Insights operations: StartQuery, GetQueryResults, StopQuery, DescribeQueries.

StartQuery checks its members (times in epoch **seconds**, both ends inclusive; exactly
one of ``logGroupName``, ``logGroupNames``, ``logGroupIdentifiers``; ``limit`` 1-100,000;
``queryLanguage`` CWLI), checks that each group exists (``ResourceNotFoundException``),
parses and compiles the query (``MalformedQueryException`` with
``queryCompileError.location`` pointing at the characters), and hands it to the runner
(:class:`~fluoroscope.query.logqueries.LogQueries`), which runs it in the background:
too many queries at once is ``LimitExceededException``. GetQueryResults answers the
status, the rows so far as ``[[{field, value}]]`` and the statistics; StopQuery cancels
(``InvalidParameterException`` once the query has ended); an unknown or forgotten id is
``ResourceNotFoundException``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.concurrency import run_in_threadpool

from fluoroscope.query import insights
from fluoroscope.query.logqueries import (
    QueryEnded,
    QueryNotFound,
    QueryPlan,
    QuerySnapshot,
    TooManyQueries,
)
from fluoroscope.server.logsinput import (
    ACCOUNT_ID,
    GROUP_IDENTIFIER,
    LogsError,
    Members,
    identifier_name,
    invalid,
)
from fluoroscope.server.logsops import LogsState

__all__ = ["OPERATIONS", "malformed_query"]

MAX_GROUPS: Final = 50
DEFAULT_QUERY_LIMIT: Final = 10_000
MAX_QUERY_LIMIT: Final = 100_000
STATUSES: Final = ("Scheduled", "Running", "Complete", "Failed", "Cancelled", "Timeout", "Unknown")

Handler = Callable[[Members, LogsState], Awaitable[dict[str, Any]]]


def malformed_query(message: str, start: int, end: int, reason: str = "") -> LogsError:
    """``MalformedQueryException`` pointing at characters ``start``..``end``:
    ``message`` in full (with its excerpt and caret), ``reason`` (one line) as the
    compile error's own message."""
    return LogsError(
        "MalformedQueryException",
        message,
        extra={
            "queryCompileError": {
                "location": {"startCharOffset": start, "endCharOffset": end},
                "message": reason or message,
            }
        },
    )


def _groups(m: Members) -> list[str]:
    name = m.group_name(required=False)
    names = m.strings("logGroupNames", max_items=MAX_GROUPS, min_len=1, max_len=512)
    identifiers = m.strings(
        "logGroupIdentifiers",
        max_items=MAX_GROUPS,
        min_len=1,
        max_len=2048,
        pattern=GROUP_IDENTIFIER,
    )
    given = [x for x in (name, names, identifiers) if x is not None]
    if len(given) != 1:
        raise invalid(
            "Exactly one of logGroupName, logGroupNames and logGroupIdentifiers must be specified."
        )
    if name is not None:
        return [name]
    chosen = [identifier_name(i) for i in (names if names is not None else identifiers or [])]
    if not chosen:
        raise invalid("At least one log group must be specified.")
    return list(dict.fromkeys(chosen))


def plan(
    state: LogsState, text: str, groups: list[str], start_ms: int, end_ms: int, limit: int
) -> QueryPlan:
    """``text`` compiled over ``groups`` between ``start_ms`` and ``end_ms`` (both
    inclusive); MalformedQueryException when it cannot be parsed or compiled."""
    try:
        compiled = insights.compile(
            insights.parse(text),
            database=state.store.database,
            groups=groups,
            start_ms=start_ms,
            end_ms=end_ms,
            limit=limit,
            account=ACCOUNT_ID,
        )
    except insights.InsightsSyntaxError as exc:
        raise malformed_query(exc.message, exc.start, exc.end, exc.reason) from None
    scanned = (
        "SELECT count(), sum(length(message)) "
        f"FROM `{state.store.database}`.log_events WHERE log_group IN {{g:Array(String)}} "
        "AND ts BETWEEN fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
        "AND fromUnixTimestamp64Milli({hi:Int64}, 'UTC')",
        {"g": groups, "lo": start_ms, "hi": end_ms},
    )
    return QueryPlan(
        compiled.sql,
        compiled.params,
        compiled.fields,
        compiled.is_stats,
        scanned=scanned,
        settings=compiled.settings,
    )


async def start_query(m: Members, state: LogsState) -> dict[str, Any]:
    language = m.enum("queryLanguage", ("CWLI", "SQL", "PPL")) or "CWLI"
    text = m.string("queryString", required=True, max_len=10_000)
    start = m.timestamp("startTime", required=True)
    end = m.timestamp("endTime", required=True)
    limit = m.integer("limit", minimum=1, maximum=MAX_QUERY_LIMIT) or DEFAULT_QUERY_LIMIT
    groups = _groups(m)
    assert text is not None and start is not None and end is not None
    if language != "CWLI":
        raise invalid(f"queryLanguage {language} is not supported here; use CWLI")
    if end < start:
        raise invalid("endTime must be greater than or equal to startTime.")
    if end > (1 << 63) // 1000 - 1:
        raise invalid("endTime is out of range (epoch seconds)")

    def begin() -> str:
        for group in groups:
            state.store.group(group)  # LogGroupNotFound
        compiled = plan(state, text, groups, start * 1000, end * 1000 + 999, limit)
        return state.queries.start(text, groups, compiled)

    try:
        query_id = await run_in_threadpool(begin)
    except TooManyQueries as exc:
        raise LogsError("LimitExceededException", str(exc)) from None
    return {"queryId": query_id}


def _results(snapshot: QuerySnapshot, offset: int, count: int) -> list[list[dict[str, str]]]:
    return [
        [{"field": name, "value": value} for name, value in row]
        for row in snapshot.results[offset : offset + count]
    ]


def _query_id(m: Members) -> str:
    value = m.string("queryId", required=True, min_len=1, max_len=256)
    assert value is not None
    return value


async def get_query_results(m: Members, state: LogsState) -> dict[str, Any]:
    query_id = _query_id(m)
    token = m.string("nextToken", max_len=1024)
    max_items = m.integer("maxItems", minimum=0, maximum=10_000)
    try:
        snapshot = state.queries.get(query_id)
    except QueryNotFound as exc:
        raise LogsError("ResourceNotFoundException", str(exc)) from None
    offset = 0
    if token:
        if not token.isdigit() or len(token) > 12:
            raise invalid("The specified nextToken is invalid.")
        offset = int(token)
    count = len(snapshot.results) if max_items is None else max_items
    result: dict[str, Any] = {
        "queryLanguage": "CWLI",
        "results": _results(snapshot, offset, count),
        "statistics": snapshot.statistics,
        "status": snapshot.status,
    }
    if max_items is not None and offset + count < len(snapshot.results):
        result["nextToken"] = str(offset + count)
    return result


async def stop_query(m: Members, state: LogsState) -> dict[str, Any]:
    query_id = _query_id(m)
    try:
        return {"success": state.queries.stop(query_id)}
    except QueryNotFound as exc:
        raise LogsError("ResourceNotFoundException", str(exc)) from None
    except QueryEnded as exc:
        raise invalid(str(exc)) from None


async def describe_queries(m: Members, state: LogsState) -> dict[str, Any]:
    group = m.group_name(required=False)
    status = m.enum("status", STATUSES)
    limit = m.integer("maxResults", minimum=1, maximum=1000) or 1000
    token = m.token()
    m.enum("queryLanguage", ("CWLI", "SQL", "PPL"))
    offset = 0
    if token is not None:
        if not token.isdigit() or len(token) > 12:
            raise invalid("The specified nextToken is invalid.")
        offset = int(token)
    chosen = state.queries.describe(group=group, status=status)
    page = chosen[offset : offset + limit]
    result: dict[str, Any] = {
        "queries": [
            {
                "queryLanguage": "CWLI",
                "queryId": q.id,
                "queryString": q.text,
                "status": q.status,
                "createTime": int(q.created * 1000),
                "logGroupName": q.groups[0] if q.groups else "",
                **({"queryDuration": int(q.duration * 1000)} if q.duration is not None else {}),
            }
            for q in page
        ]
    }
    if offset + limit < len(chosen):
        result["nextToken"] = str(offset + limit)
    return result


OPERATIONS: Final[dict[str, Handler]] = {
    "StartQuery": start_query,
    "GetQueryResults": get_query_results,
    "StopQuery": stop_query,
    "DescribeQueries": describe_queries,
}
