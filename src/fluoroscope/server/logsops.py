"""CloudWatch Logs operations on groups, streams, events and retention.

Each handler checks its request's members (:mod:`fluoroscope.server.logsinput`) before
anything else, then calls the log store in a worker thread (store calls block) and
shapes the answer as the service model says. Shapes: ``LogGroup`` and ``LogStream`` as
in reference §2 (times in epoch milliseconds); pagination tokens are opaque strings
(:mod:`fluoroscope.server.logsevents`).

GetLogEvents reads one stream in ``(timestamp, seq)`` order: without a token, the first
``limit`` events of the window (``startFromHead``) or its last ``limit`` (the default);
a forward token continues after the last event returned, a backward token before the
first; at either end the token passed in comes back unchanged. FilterLogEvents reads
every stream of a group (or the streams named, or those with a prefix) in the same
order, matching ``filterPattern``, and scans its window in chunks: a page ends at
``limit`` events, at 1 MiB of messages, or when :data:`FILTER_SECONDS` have been spent
scanning - then it may be empty and still carry a ``nextToken``, as CloudWatch Logs'
pages may, so a search over a year of data never holds the server.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa
from starlette.concurrency import run_in_threadpool

from fluoroscope.model.errors import StoreError
from fluoroscope.query.logqueries import LogQueries
from fluoroscope.server.logsevents import (
    FilterToken,
    Position,
    accept_events,
    check_events,
    decode_filter_token,
    decode_stream_token,
    encode_filter_token,
    encode_stream_token,
)
from fluoroscope.server.logsinput import (
    GROUP_NAME_PATTERN,
    LOG_GROUP_CLASSES,
    RETENTION_DAYS,
    LogsError,
    Members,
    check_new_group_name,
    group_arn,
    identifier_name,
    invalid,
    stream_arn,
)
from fluoroscope.store.store import Store

__all__ = ["FILTER_SECONDS", "OPERATIONS", "LogsState", "build_logs_state"]

FILTER_SECONDS: Final = 5.0
"""Longest one FilterLogEvents page scans before it answers with what it found and a
``nextToken`` to continue from."""
FILTER_PAGE_BYTES: Final = 1_048_576
FIRST_CHUNK_MS: Final = 3600 * 1000
MAX_CHUNK_MS: Final = 400 * 86_400 * 1000
DEFAULT_EVENTS_LIMIT: Final = 10_000
STATEMENT_SECONDS: Final = 10
"""The engine's time limit on each statement a Logs API request runs."""


@dataclass(slots=True)
class LogsState:
    """What the Logs API's handlers share: the log store, its batching writer, the
    Insights query runner, the retention of groups without a policy, and the clock."""

    store: Any
    writer: Any
    queries: LogQueries
    default_retention_days: int
    clock: Callable[[], float] = time.time
    settings: dict[str, Any] = field(
        default_factory=lambda: {"max_execution_time": STATEMENT_SECONDS}
    )

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def close(self) -> None:
        """Stop the query runner (what runs is bounded by its time limit) and store
        what the writer holds. Blocking."""
        self.queries.close()
        close = getattr(self.writer, "close", None)
        if close is not None:
            close()


def build_logs_state(
    store: Store, *, retention_days: int, clock: Callable[[], float] = time.time
) -> LogsState:
    """The Logs API's state over the server's ``store``."""

    def execute(sql: str, params: Mapping[str, Any], settings: Mapping[str, Any]) -> pa.Table:
        raise StoreError("the log store is not available yet")

    return LogsState(
        store=None,
        writer=None,
        queries=LogQueries(execute, clock=clock),
        default_retention_days=retention_days,
        clock=clock,
    )


Handler = Callable[[Members, LogsState], Awaitable[dict[str, Any]]]


def _name_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _token_name(token: str | None) -> str | None:
    if token is None:
        return None
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid("The specified nextToken is invalid.") from None


# -- groups ---------------------------------------------------------------------------


def render_group(group: Any, *, brief: bool = False) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "logGroupName": group.name,
        "creationTime": group.creation_time,
        "arn": group_arn(group.name),
    }
    if brief:
        return shaped
    if group.retention_days:
        shaped["retentionInDays"] = group.retention_days
    shaped.update(
        metricFilterCount=0,
        storedBytes=int(getattr(group, "stored_bytes", 0) or 0),
        logGroupArn=group_arn(group.name, star=False),
        logGroupClass=group.log_group_class or "STANDARD",
        deletionProtectionEnabled=False,
    )
    if getattr(group, "kms_key_id", ""):
        shaped["kmsKeyId"] = group.kms_key_id
    return shaped


async def create_log_group(m: Members, state: LogsState) -> dict[str, Any]:
    name = m.group_name()
    assert name is not None
    check_new_group_name(name)
    kms = m.string("kmsKeyId", max_len=256)
    tags = m.mapping("tags", min_items=1, max_items=50) or {}
    for key, value in tags.items():
        if not 1 <= len(key) <= 128 or not isinstance(value, str) or len(value) > 256:
            raise invalid(
                f"Invalid tag {key[:128]!r}: keys are 1-128 characters, values strings of at most 256"
            )
    log_class = m.enum("logGroupClass", LOG_GROUP_CLASSES) or "STANDARD"
    m.boolean("deletionProtectionEnabled")
    await run_in_threadpool(
        state.store.create_group,
        name,
        creation_time=state.now_ms(),
        log_group_class=log_class,
        kms_key_id=kms or "",
        tags=tags,
    )
    return {}


async def delete_log_group(m: Members, state: LogsState) -> dict[str, Any]:
    name = m.group_name()
    await run_in_threadpool(state.store.delete_group, name)
    return {}


async def describe_log_groups(m: Members, state: LogsState) -> dict[str, Any]:
    prefix = m.group_name("logGroupNamePrefix", required=False)
    pattern = m.string("logGroupNamePattern", max_len=512, pattern=GROUP_NAME_PATTERN)
    if prefix is not None and pattern is not None:
        raise invalid(
            "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters."
        )
    limit = m.integer("limit", minimum=1, maximum=50) or 50
    after = _token_name(m.token())
    m.strings("accountIdentifiers", max_items=20, min_len=12, max_len=12)
    m.boolean("includeLinkedAccounts")
    log_class = m.enum("logGroupClass", LOG_GROUP_CLASSES)
    identifiers = m.strings(
        "logGroupIdentifiers", min_items=1, max_items=50, min_len=1, max_len=2048
    )
    if identifiers is not None and (prefix is not None or pattern is not None):
        raise invalid(
            "LogGroupIdentifiers cannot be combined with LogGroupNamePrefix or LogGroupNamePattern."
        )
    names = [identifier_name(i) for i in identifiers] if identifiers is not None else None
    groups = await run_in_threadpool(
        state.store.describe_groups,
        prefix=prefix,
        pattern=pattern or None,
        names=names,
        log_group_class=log_class,
        after=after,
        limit=limit + 1,
    )
    result: dict[str, Any] = {
        "logGroups": [render_group(g, brief=pattern is not None) for g in groups[:limit]]
    }
    if len(groups) > limit:
        result["nextToken"] = _name_token(groups[limit - 1].name)
    return result


async def put_retention_policy(m: Members, state: LogsState) -> dict[str, Any]:
    name = m.group_name()
    days = m.integer("retentionInDays", required=True)
    if days not in RETENTION_DAYS:
        raise invalid(
            f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to "
            "satisfy constraint: Member must satisfy enum value set: "
            f"[{', '.join(str(d) for d in sorted(RETENTION_DAYS))}]"
        )
    await run_in_threadpool(state.store.put_retention, name, days)
    return {}


async def delete_retention_policy(m: Members, state: LogsState) -> dict[str, Any]:
    name = m.group_name()
    await run_in_threadpool(state.store.delete_retention, name)
    return {}


# -- streams --------------------------------------------------------------------------


def render_stream(group: str, stream: Any) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "logStreamName": stream.name,
        "creationTime": stream.creation_time,
        "arn": stream_arn(group, stream.name),
        "storedBytes": 0,
    }
    for key, attribute in (
        ("firstEventTimestamp", "first_event"),
        ("lastEventTimestamp", "last_event"),
        ("lastIngestionTime", "last_ingestion"),
    ):
        value = getattr(stream, attribute, None)
        if value is not None:
            shaped[key] = value
    return shaped


async def create_log_stream(m: Members, state: LogsState) -> dict[str, Any]:
    group = m.group_name()
    stream = m.stream_name()
    await run_in_threadpool(state.store.create_stream, group, stream, creation_time=state.now_ms())
    return {}


async def describe_log_streams(m: Members, state: LogsState) -> dict[str, Any]:
    group = m.group()
    prefix = m.stream_name("logStreamNamePrefix", required=False)
    order = m.enum("orderBy", ("LogStreamName", "LastEventTime")) or "LogStreamName"
    descending = bool(m.boolean("descending"))
    limit = m.integer("limit", minimum=1, maximum=50) or 50
    token = m.token()
    if prefix is not None and order == "LastEventTime":
        raise invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
    after = _token_name(token)
    streams = await run_in_threadpool(
        state.store.describe_streams,
        group,
        prefix=prefix,
        by_last_event=order == "LastEventTime",
        descending=descending,
        after=after,
        limit=limit + 1,
    )
    result: dict[str, Any] = {"logStreams": [render_stream(group, s) for s in streams[:limit]]}
    if len(streams) > limit:
        result["nextToken"] = _name_token(streams[limit - 1].token)
    return result


# -- events ---------------------------------------------------------------------------


async def put_log_events(m: Members, state: LogsState) -> dict[str, Any]:
    group = m.group_name()
    stream = m.stream_name()
    raw = m.list_of("logEvents", required=True, min_items=1, max_items=10_000)
    m.string("sequenceToken", min_len=1)  # accepted and ignored, as CloudWatch Logs now does
    entity = m.body.get("entity")
    if entity is not None and not isinstance(entity, dict):
        raise invalid("entity must be an object")
    assert group is not None and stream is not None and raw is not None
    events = check_events(raw)
    retention = await run_in_threadpool(state.store.stream_retention, group, stream)
    batch = accept_events(
        events, now_ms=state.now_ms(), retention_days=retention or state.default_retention_days
    )
    if batch.events:
        await state.writer.write(group, stream, batch.events)
    result: dict[str, Any] = {"nextSequenceToken": f"{state.now_ms():056d}"}
    if batch.rejected:
        result["rejectedLogEventsInfo"] = batch.rejected
    return result


def _render_event(row: Any, *, with_stream: bool) -> dict[str, Any]:
    event: dict[str, Any] = {
        "timestamp": row.ts,
        "message": row.message,
        "ingestionTime": row.ingest_ts,
    }
    if with_stream:
        event["logStreamName"] = row.stream
        event["eventId"] = f"{row.seq:056d}"
    return event


def _window(m: Members) -> tuple[int, int]:
    start = m.timestamp("startTime")
    end = m.timestamp("endTime")
    return (start or 0), (end if end is not None else (1 << 63) - 1)


async def get_log_events(m: Members, state: LogsState) -> dict[str, Any]:
    group = m.group()
    stream = m.stream_name()
    start, end = _window(m)
    limit = m.integer("limit", minimum=1, maximum=10_000) or DEFAULT_EVENTS_LIMIT
    head = m.boolean("startFromHead")
    m.boolean("unmask")
    token = m.token()
    forward, position = decode_stream_token(token) if token is not None else (bool(head), None)
    if end <= start:
        rows: list[Any] = []
    else:
        await run_in_threadpool(state.store.stream_retention, group, stream)  # exists?
        rows = await run_in_threadpool(
            state.store.events,
            group,
            streams=[stream],
            start_ms=start,
            end_ms=end,
            descending=not forward,
            after=(position.ts, position.seq) if position is not None else None,
            limit=limit,
            settings=state.settings,
        )
    if not forward:
        rows.reverse()
    events = [_render_event(r, with_stream=False) for r in rows]
    if rows:
        forward_token = encode_stream_token(True, Position(rows[-1].ts, rows[-1].seq))
        backward_token = encode_stream_token(False, Position(rows[0].ts, rows[0].seq))
    else:  # at an end: the token passed in comes back (a fresh one at the window's edge)
        edge = position if position is not None else Position(start if forward else end, 0)
        forward_token = token if token is not None and forward else encode_stream_token(True, edge)
        backward_token = (
            token if token is not None and not forward else encode_stream_token(False, edge)
        )
    return {
        "events": events,
        "nextForwardToken": forward_token,
        "nextBackwardToken": backward_token,
    }


async def filter_log_events(m: Members, state: LogsState) -> dict[str, Any]:
    group = m.group()
    names = m.strings("logStreamNames", min_items=1, max_items=100, min_len=1, max_len=512)
    prefix = m.stream_name("logStreamNamePrefix", required=False)
    if names is not None and prefix is not None:
        raise invalid("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
    start, end = _window(m)
    pattern = m.string("filterPattern", max_len=1024) or ""
    limit = m.integer("limit", minimum=1, maximum=10_000) or DEFAULT_EVENTS_LIMIT
    m.boolean("interleaved")
    m.boolean("unmask")
    m.boolean("startFromHead")
    token = m.token()
    resume = decode_filter_token(token) if token is not None else None
    condition, params = compile_filter(pattern)
    await run_in_threadpool(state.store.group_retention, group)  # exists?
    found, next_token = await run_in_threadpool(
        _filter_scan, state, group, names, prefix, start, end, condition, params, limit, resume
    )
    result: dict[str, Any] = {
        "events": [_render_event(r, with_stream=True) for r in found],
        "searchedLogStreams": [],
    }
    if next_token is not None:
        result["nextToken"] = encode_filter_token(next_token)
    return result


def compile_filter(pattern: str) -> tuple[str | None, dict[str, Any]]:
    """A filter pattern as an SQL condition over ``log_events`` and its parameters
    (None: every event)."""
    if not pattern.strip():
        return None, {}
    raise LogsError("InvalidParameterException", "filter patterns are not available yet")


def _filter_scan(
    state: LogsState,
    group: str,
    names: list[str] | None,
    prefix: str | None,
    start: int,
    end: int,
    condition: str | None,
    params: dict[str, Any],
    limit: int,
    resume: FilterToken | None,
) -> tuple[list[Any], FilterToken | None]:
    """One page of FilterLogEvents: scan ``[start, end)`` forward from ``resume`` in
    growing chunks until ``limit`` events or 1 MiB are found, the window ends, or
    :data:`FILTER_SECONDS` pass. Blocking (a worker thread)."""
    deadline = time.monotonic() + FILTER_SECONDS
    after = resume.after if resume is not None else None
    chunk = resume.chunk_ms if resume is not None else FIRST_CHUNK_MS
    cursor = max(start, after.ts) if after is not None else start
    found: list[Any] = []
    size = 0
    while cursor < end:
        chunk_end = min(end, cursor + chunk)
        rows = state.store.events(
            group,
            streams=names,
            prefix=prefix,
            start_ms=cursor,
            end_ms=chunk_end,
            condition=condition,
            params=params,
            descending=False,
            after=(after.ts, after.seq) if after is not None else None,
            limit=limit - len(found),
            settings=state.settings,
        )
        for row in rows:
            size += len(row.message.encode("utf-8", "surrogatepass"))
            found.append(row)
            after = Position(row.ts, row.seq)
            if len(found) >= limit or size >= FILTER_PAGE_BYTES:
                return found, FilterToken(after, chunk)
        if rows and len(found) >= limit:
            return found, FilterToken(after or Position(cursor, 0), chunk)
        # the chunk is exhausted: continue after it
        after = Position(chunk_end - 1, (1 << 64) - 1)
        cursor = chunk_end
        if not rows:
            chunk = min(chunk * 4, MAX_CHUNK_MS)
        if cursor < end and time.monotonic() > deadline:
            return found, FilterToken(after, chunk)
    return found, None


OPERATIONS: Final[dict[str, Handler]] = {
    "CreateLogGroup": create_log_group,
    "DeleteLogGroup": delete_log_group,
    "DescribeLogGroups": describe_log_groups,
    "PutRetentionPolicy": put_retention_policy,
    "DeleteRetentionPolicy": delete_retention_policy,
    "CreateLogStream": create_log_stream,
    "DescribeLogStreams": describe_log_streams,
    "PutLogEvents": put_log_events,
    "GetLogEvents": get_log_events,
    "FilterLogEvents": filter_log_events,
}
