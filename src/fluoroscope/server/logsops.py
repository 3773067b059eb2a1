"""CloudWatch Logs operations on groups, streams, events and retention.

Each handler checks its request's members (:mod:`fluoroscope.server.logsinput`) before
anything else, then calls the log store (:class:`~fluoroscope.store.logs.LogStore`) in a
worker thread (store calls block) and shapes the answer as the service model says.
Shapes: ``LogGroup`` and ``LogStream`` as in reference §2 (times in epoch milliseconds);
pagination tokens are opaque strings (:mod:`fluoroscope.server.logsevents`). Every
statement a request runs carries the engine's time limit (:data:`STATEMENT_SECONDS`).

PutLogEvents stores the accepted events through the batching writer
(:class:`~fluoroscope.ingest.logwriter.LogWriter`), answering once they are durable.
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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from starlette.concurrency import run_in_threadpool

from fluoroscope.ingest.logwriter import LogWriter
from fluoroscope.query.logqueries import LogQueries
from fluoroscope.query.patterns import PatternSyntaxError, compile_pattern, parse_pattern
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
    Members,
    check_new_group_name,
    group_arn,
    identifier_name,
    invalid,
    stream_arn,
)
from fluoroscope.store.logs import LogEvent, LogGroup, LogStore, LogStream
from fluoroscope.store.store import Store

__all__ = ["FILTER_SECONDS", "OPERATIONS", "STATEMENT_SECONDS", "LogsState", "build_logs_state"]

FILTER_SECONDS: Final = 5.0
"""Longest one FilterLogEvents page scans before it answers with what it found and a
``nextToken`` to continue from."""
PAGE_BYTES: Final = 1_048_576  # of messages in one page of events, as AWS answers
FIRST_CHUNK_MS: Final = 3600 * 1000
MAX_CHUNK_MS: Final = 400 * 86_400 * 1000
OLDEST_MS: Final = 3653 * 86_400 * 1000  # the longest retention: nothing older is kept
NEWEST_MS: Final = 86_400 * 1000  # no event is taken over 2 h ahead of the clock
DEFAULT_EVENTS_LIMIT: Final = 10_000
STATEMENT_SECONDS: Final = 10
"""The engine's time limit on each statement a Logs API request runs."""


@dataclass(slots=True)
class LogsState:
    """What the Logs API's handlers share: the log store, its batching writer, the
    Insights query runner and the clock."""

    store: LogStore
    writer: LogWriter
    queries: LogQueries
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
        self.writer.close()


def build_logs_state(
    store: Store, *, retention_days: int, clock: Callable[[], float] = time.time
) -> LogsState:
    """The Logs API's state over the server's ``store``, whose groups without a
    retention policy keep their events ``retention_days`` (starts the writer's
    threads; :meth:`LogsState.close` stops them)."""
    log_store = LogStore(store, retention_days)
    return LogsState(
        store=log_store,
        writer=LogWriter(log_store),
        # the embedded engine runs one statement at a time: one query at a time leaves
        # the inserts of traces and log events their turn between queries
        queries=LogQueries(log_store.query, workers=1 if store.embedded else 4, clock=clock),
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


def render_group(group: LogGroup, *, brief: bool = False) -> dict[str, Any]:
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
        storedBytes=group.stored_bytes,
        logGroupArn=group_arn(group.name, star=False),
        logGroupClass=group.log_group_class or "STANDARD",
        deletionProtectionEnabled=False,
    )
    if group.kms_key_id:
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
        lambda: state.store.create_group(
            name, tags=tags, log_group_class=log_class, kms_key_id=kms or "", now_ms=state.now_ms()
        )
    )
    return {}


async def delete_log_group(m: Members, state: LogsState) -> dict[str, Any]:
    name = m.group_name()
    assert name is not None
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
    page = await run_in_threadpool(
        lambda: state.store.describe_groups(
            prefix=prefix,
            pattern=pattern or None,
            names=names,
            log_group_class=log_class,
            after=after,
            limit=limit,
        )
    )
    result: dict[str, Any] = {
        "logGroups": [render_group(g, brief=pattern is not None) for g in page.items]
    }
    if page.next_key is not None:
        result["nextToken"] = _name_token(page.next_key)
    return result


async def put_retention_policy(m: Members, state: LogsState) -> dict[str, Any]:
    name = m.group_name()
    days = m.integer("retentionInDays", required=True)
    assert name is not None and days is not None
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
    assert name is not None
    await run_in_threadpool(state.store.delete_retention, name)
    return {}


# -- streams --------------------------------------------------------------------------


def render_stream(group: str, stream: LogStream) -> dict[str, Any]:
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
        value = getattr(stream, attribute)
        if value is not None:
            shaped[key] = value
    return shaped


async def create_log_stream(m: Members, state: LogsState) -> dict[str, Any]:
    group = m.group_name()
    stream = m.stream_name()
    assert group is not None and stream is not None
    now = state.now_ms()
    await run_in_threadpool(lambda: state.store.create_stream(group, stream, now_ms=now))
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
    if after is not None:  # the store's key: [last event ms, stream name]
        try:
            key = orjson.loads(after)
        except orjson.JSONDecodeError:
            key = None
        if not (
            isinstance(key, list)
            and len(key) == 2
            and isinstance(key[0], int)
            and isinstance(key[1], str)
        ):
            raise invalid("The specified nextToken is invalid.")
    page = await run_in_threadpool(
        lambda: state.store.describe_streams(
            group,
            prefix=prefix,
            order_by=order,
            descending=descending,
            after=after,
            limit=limit,
        )
    )
    result: dict[str, Any] = {"logStreams": [render_stream(group, s) for s in page.items]}
    if page.next_key is not None:
        result["nextToken"] = _name_token(page.next_key)
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
    events = await run_in_threadpool(check_events, raw) if len(raw) > 1000 else check_events(raw)
    # a stream seen before is checked in the cache, without a hop to a worker thread
    found = state.store.cached_stream(group, stream)
    if found is None:
        found = await run_in_threadpool(state.store.check_stream, group, stream)
    retention = found.retention_days or state.store.default_retention_days
    batch = accept_events(events, now_ms=state.now_ms(), retention_days=retention)
    if batch.events:
        timestamps, messages = zip(*batch.events, strict=True)
        await state.writer.put(group, stream, timestamps, messages, retention_days=retention)
    result: dict[str, Any] = {"nextSequenceToken": f"{state.now_ms():056d}"}
    if batch.rejected:
        result["rejectedLogEventsInfo"] = batch.rejected
    return result


def _render_event(row: LogEvent, *, with_stream: bool) -> dict[str, Any]:
    event: dict[str, Any] = {
        "timestamp": row.timestamp,
        "message": row.message,
        "ingestionTime": row.ingestion_time,
    }
    if with_stream:
        event["logStreamName"] = row.stream
        event["eventId"] = f"{row.seq:056d}"
    return event


def _within_bytes(rows: list[LogEvent], limit: int) -> list[LogEvent]:
    """The first of ``rows`` whose messages hold at most ``limit`` UTF-8 bytes (at
    least one row)."""
    size = 0
    for index, row in enumerate(rows):
        size += len(row.message.encode("utf-8", "surrogatepass"))
        if size > limit and index:
            return rows[:index]
    return rows


def _window(m: Members, now_ms: int) -> tuple[int, int]:
    """``[startTime, endTime)`` within what the store can hold."""
    start = m.timestamp("startTime")
    end = m.timestamp("endTime")
    return max(start or 0, now_ms - OLDEST_MS), min(
        end if end is not None else now_ms + NEWEST_MS, now_ms + NEWEST_MS
    )


async def get_log_events(m: Members, state: LogsState) -> dict[str, Any]:
    group = m.group()
    stream = m.stream_name()
    start, end = _window(m, state.now_ms())
    limit = m.integer("limit", minimum=1, maximum=10_000) or DEFAULT_EVENTS_LIMIT
    head = m.boolean("startFromHead")
    m.boolean("unmask")
    token = m.token()
    forward, position = decode_stream_token(token) if token is not None else (bool(head), None)
    assert stream is not None
    await run_in_threadpool(state.store.check_stream, group, stream)
    rows: list[LogEvent] = []
    if start < end:
        page = await run_in_threadpool(
            lambda: state.store.events(
                group,
                streams=[stream],
                start_ms=start,
                end_ms=end,
                descending=not forward,
                after=(position.ts, position.seq) if position is not None else None,
                limit=limit,
                settings=state.settings,
            )
        )
        rows = _within_bytes(page.events, PAGE_BYTES)
    if not forward:
        rows.reverse()
    events = [_render_event(r, with_stream=False) for r in rows]
    if rows:
        forward_token = encode_stream_token(True, Position(rows[-1].timestamp, rows[-1].seq))
        backward_token = encode_stream_token(False, Position(rows[0].timestamp, rows[0].seq))
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
    start, end = _window(m, state.now_ms())
    pattern = m.string("filterPattern", max_len=1024) or ""
    limit = m.integer("limit", minimum=1, maximum=10_000) or DEFAULT_EVENTS_LIMIT
    m.boolean("interleaved")
    m.boolean("unmask")
    m.boolean("startFromHead")
    token = m.token()
    resume = decode_filter_token(token) if token is not None else None
    condition, params = compile_filter(pattern)
    await run_in_threadpool(state.store.group, group)  # LogGroupNotFound
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
    try:
        return compile_pattern(parse_pattern(pattern))
    except PatternSyntaxError as exc:
        raise invalid(f"Invalid filter pattern: {exc.message}") from None


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
) -> tuple[list[LogEvent], FilterToken | None]:
    """One page of FilterLogEvents: scan ``[start, end)`` forward from ``resume`` in
    growing chunks until ``limit`` events or 1 MiB are found, the window ends, or
    :data:`FILTER_SECONDS` pass. Blocking (a worker thread)."""
    deadline = time.monotonic() + FILTER_SECONDS
    after = resume.after if resume is not None else None
    chunk = resume.chunk_ms if resume is not None else FIRST_CHUNK_MS
    cursor = max(start, after.ts) if after is not None else start
    found: list[LogEvent] = []
    size = 0
    while cursor < end:
        chunk_end = min(end, cursor + chunk)
        rows = state.store.events(
            group,
            streams=names,
            stream_prefix=prefix,
            start_ms=cursor,
            end_ms=chunk_end,
            condition=condition,
            params=params,
            descending=False,
            after=(after.ts, after.seq) if after is not None else None,
            limit=limit - len(found),
            settings=state.settings,
        ).events
        for row in rows:
            size += len(row.message.encode("utf-8", "surrogatepass"))
            if size > PAGE_BYTES and found:  # this one starts the next page
                return found, FilterToken(after or Position(cursor, 0), chunk)
            found.append(row)
            after = Position(row.timestamp, row.seq)
            if len(found) >= limit:
                return found, FilterToken(after, chunk)
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
