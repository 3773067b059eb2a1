"""The log store on the real embedded engine: schema, metadata, events, a trace's lines,
retention and deletion."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from fluoroscope.ingest.logwriter import encode
from fluoroscope.model.errors import InvalidRequest
from fluoroscope.store.logs import (
    EVENT_SCHEMA,
    LogGroupExists,
    LogGroupNotFound,
    LogStore,
    LogStreamExists,
    LogStreamNotFound,
    normalize_trace_id,
    pointed,
)
from fluoroscope.store.store import Store
from tests import log_lines as lines

CONTRACT_COLUMNS = [
    "log_group", "stream", "ts", "ingest_ts", "seq", "message", "trace_id", "segment_id",
    "request_id", "level", "type", "json", "retention_days",
]  # fmt: skip
DAY = 86_400_000


@pytest.fixture
def logs(store: Store) -> LogStore:
    return LogStore(store, 30)


def _put(
    logs: LogStore, group: str, stream: str, messages: Sequence[str], at: int | Sequence[int]
) -> None:
    """Store ``messages`` as one batch (as the writer would), stamped ``at`` (ms)."""
    stamps = [at] * len(messages) if isinstance(at, int) else list(at)
    days = logs.retention_days(group)
    first = logs.reserve_seq(len(messages))
    now = int(time.time() * 1000)
    logs.write(encode([(group, stream, stamps, list(messages), days, now)], first))


def _group_with_stream(logs: LogStore, group: str = "/aws/lambda/f", stream: str = "s") -> None:
    logs.create_group(group)
    logs.create_stream(group, stream)


def test_log_events_has_the_contract_columns(logs: LogStore) -> None:
    rows = logs.query(
        "SELECT name FROM system.columns WHERE database = {db:String} AND table = 'log_events'",
        {"db": logs.database},
    )
    names = rows.column(0).to_pylist()
    assert set(CONTRACT_COLUMNS) <= set(names)
    assert set(EVENT_SCHEMA.names) <= set(names)


def test_groups_are_created_listed_by_prefix_and_pattern_and_paged(logs: LogStore) -> None:
    for name in ("/aws/lambda/b", "/aws/lambda/a", "app/x", "/aws/lambda/c", "API-Gateway-1"):
        logs.create_group(name)
    with pytest.raises(LogGroupExists) as info:
        logs.create_group("app/x")
    assert str(info.value) == "The specified log group already exists"
    names = [g.name for g in logs.describe_groups().items]
    assert names == sorted(names, key=str.encode)
    assert [g.name for g in logs.describe_groups(prefix="/aws/lambda/").items] == [
        "/aws/lambda/a", "/aws/lambda/b", "/aws/lambda/c",
    ]  # fmt: skip
    assert [g.name for g in logs.describe_groups(pattern="lambda/b").items] == ["/aws/lambda/b"]
    seen, after = [], None
    while True:
        page = logs.describe_groups(limit=2, after=after)
        seen += [g.name for g in page.items]
        if page.next_key is None:
            break
        after = page.next_key
    assert seen == names
    with pytest.raises(LogGroupNotFound):
        logs.get_group("nope")


def test_streams_and_their_event_times(logs: LogStore) -> None:
    _group_with_stream(logs, "g", "b")
    logs.create_stream("g", "a")
    logs.create_stream("g", "c")
    with pytest.raises(LogStreamExists):
        logs.create_stream("g", "a")
    with pytest.raises(LogGroupNotFound):
        logs.create_stream("other", "a")
    with pytest.raises(LogStreamNotFound):
        logs.check_stream("g", "zz")
    t0 = int(time.time() * 1000) - 60_000
    _put(logs, "g", "a", ["one", "two"], [t0, t0 + 10])
    _put(logs, "g", "c", ["three"], t0 + 5)
    _put(logs, "g", "a", ["four"], t0 + 20)
    a = logs.get_stream("g", "a")
    assert (a.first_event, a.last_event) == (t0, t0 + 20)
    assert a.last_ingestion is not None and a.last_ingestion >= t0 + 60_000 - 1_000
    assert logs.get_stream("g", "b").last_event is None
    by_name = [s.name for s in logs.describe_streams("g").items]
    assert by_name == ["a", "b", "c"]
    latest = logs.describe_streams("g", order_by="LastEventTime", descending=True)
    assert [s.name for s in latest.items] == ["a", "c", "b"]
    seen, after = [], None
    while True:
        page = logs.describe_streams("g", order_by="LastEventTime", limit=1, after=after)
        seen += [s.name for s in page.items]
        if page.next_key is None:
            break
        after = page.next_key
    assert seen == ["b", "c", "a"]
    assert [s.name for s in logs.describe_streams("g", prefix="c").items] == ["c"]


def test_events_by_window_stream_condition_and_pages(logs: LogStore) -> None:
    _group_with_stream(logs, "g", "a")
    logs.create_stream("g", "b")
    t0 = int(time.time() * 1000) - 3_600_000
    _put(logs, "g", "a", [f"a{i} {'ERROR' if i % 3 == 0 else 'ok'}" for i in range(30)],
         [t0 + i * 1000 for i in range(30)])  # fmt: skip
    _put(logs, "g", "b", [f"b{i}" for i in range(10)], [t0 + i * 1000 for i in range(10)])
    window = logs.events("g", start_ms=t0 + 5000, end_ms=t0 + 8000)
    assert [e.message for e in window.events] == ["a5 ok", "b5", "a6 ERROR", "b6", "a7 ok", "b7"]
    only_b = logs.events("g", streams=["b"], descending=True, limit=3)
    assert [e.message for e in only_b.events] == ["b9", "b8", "b7"]
    errors = logs.events("g", condition="position(message, {word:String}) > 0",
                         params={"word": "ERROR"})  # fmt: skip
    assert len(errors.events) == 10 and errors.next_key is None
    with pytest.raises(ValueError, match="clash"):
        logs.events("g", condition="1", params={"ls_group": "x"})
    pages, after = [], None
    while True:
        page = logs.events("g", limit=7, after=after)
        pages += page.events
        if page.next_key is None:
            break
        after = page.next_key
    assert len(pages) == 40 and len({e.seq for e in pages}) == 40
    assert [(e.timestamp, e.seq) for e in pages] == sorted((e.timestamp, e.seq) for e in pages)


@pytest.mark.parametrize("report_first", [False, True])
def test_a_trace_finds_every_line_of_its_lambda_invocation(
    logs: LogStore, report_first: bool
) -> None:
    """Application lines carry only the request id; they belong to the trace the REPORT
    names, whether they arrive before or after it."""
    _group_with_stream(logs, "/aws/lambda/f", "s")
    logs.create_stream("/aws/lambda/f", "other")
    t0 = int(time.time() * 1000) - 10_000
    app = [lines.INIT_START, lines.START, lines.PY_INFO, lines.PY_ERROR, lines.NODE_INFO]
    if report_first:
        _put(logs, "/aws/lambda/f", "s", [lines.END, lines.REPORT], t0 + 50)
        _put(logs, "/aws/lambda/f", "s", app, t0)
    else:
        _put(logs, "/aws/lambda/f", "s", app, t0)
        _put(logs, "/aws/lambda/f", "s", [lines.END, lines.REPORT], t0 + 50)
    # the same request id in another stream is another invocation: not part of the trace
    _put(logs, "/aws/lambda/f", "other", [lines.PY_INFO], t0)
    found = logs.trace_lines(lines.LAMBDA_TRACE)
    assert [(e.stream, e.message) for e in found] == [
        ("s", m)
        for m in (
            lines.START,
            lines.PY_INFO,
            lines.PY_ERROR,
            lines.NODE_INFO,
            lines.END,
            lines.REPORT,
        )
    ]
    assert {e.trace_id for e in found} == {lines.LAMBDA_TRACE}
    # the invocation is recorded for Insights' @xrayTraceId joins
    rows = logs.query(
        f"SELECT request_id, trace_id, segment_id FROM `{logs.database}`.log_requests FINAL"
    ).to_pylist()
    assert rows == [{"request_id": lines.LAMBDA_REQUEST, "trace_id": lines.LAMBDA_TRACE,
                     "segment_id": "4c72ac137fd02fb0"}]  # fmt: skip


def test_json_format_api_gateway_and_w3c_lines_are_found_by_trace(logs: LogStore) -> None:
    _group_with_stream(logs, "/aws/lambda/f", "s")
    _group_with_stream(logs, "API-Gateway-Execution-Logs_abc/prod", "e")
    _group_with_stream(logs, "access", "a")
    t0 = int(time.time() * 1000) - 10_000
    _put(logs, "/aws/lambda/f", "s", [lines.JSON_APP], t0 + 1)  # before its platform lines
    _put(logs, "/aws/lambda/f", "s",
         [lines.JSON_START, lines.JSON_RUNTIME_DONE, lines.JSON_REPORT, lines.POWERTOOLS, lines.OTEL], t0 + 2)  # fmt: skip
    _put(logs, "API-Gateway-Execution-Logs_abc/prod", "e",
         [lines.EXEC_START, lines.EXEC_TRACING, lines.EXEC_BODY], t0)  # fmt: skip
    _put(logs, "access", "a", [lines.APIGW_ACCESS], t0)
    json_trace = [e.message for e in logs.trace_lines(lines.JSON_TRACE)]
    assert json_trace == [
        lines.JSON_APP,
        lines.JSON_START,
        lines.JSON_RUNTIME_DONE,
        lines.JSON_REPORT,
    ]
    assert [e.message for e in logs.trace_lines(lines.EXEC_TRACE)] == [
        lines.EXEC_START, lines.EXEC_TRACING, lines.EXEC_BODY,
    ]  # fmt: skip
    assert [e.message for e in logs.trace_lines(lines.APIGW_TRACE)] == [lines.APIGW_ACCESS]
    assert [e.message for e in logs.trace_lines(lines.POWERTOOLS_TRACE)] == [lines.POWERTOOLS]
    assert [e.message for e in logs.trace_lines(lines.OTEL_W3C.upper())] == [lines.OTEL]
    assert logs.trace_lines(lines.JSON_TRACE, groups=["access"]) == []
    assert logs.trace_lines("1-00000000-000000000000000000000000") == []
    with pytest.raises(InvalidRequest):
        normalize_trace_id("not-a-trace")


def test_retention_policy_rewrites_the_ttl_of_stored_events(logs: LogStore) -> None:
    _group_with_stream(logs, "short", "s")
    _group_with_stream(logs, "long", "s")
    now = int(time.time() * 1000)
    for group in ("short", "long"):
        _put(logs, group, "s", [lines.START, lines.REPORT], now - 10 * DAY)  # kept 30 days: alive
        _put(logs, group, "s", ["recent"], now)
    logs.put_retention("short", 7, wait=True)
    assert logs.get_group("short").retention_days == 7
    assert logs.get_group("long").retention_days is None
    assert logs.retention_days("long") == 30
    for table in ("log_events", "log_index", "log_requests"):
        logs.query(f"OPTIMIZE TABLE `{logs.database}`.{table} FINAL")
    assert [e.message for e in logs.events("short").events] == ["recent"]
    assert len(logs.events("long").events) == 3
    assert logs.trace_lines(lines.LAMBDA_TRACE, groups=["short"]) == []
    assert len(logs.trace_lines(lines.LAMBDA_TRACE, groups=["long"])) == 2
    # events written from now on carry the policy; removing it restores the default
    assert logs.retention_days("short") == 7
    logs.delete_retention("short", wait=True)
    assert logs.get_group("short").retention_days is None
    days = logs.query(
        f"SELECT DISTINCT retention_days FROM `{logs.database}`.log_events "
        "WHERE log_group = 'short'"
    )
    assert days.column(0).to_pylist() == [30]


def test_a_changed_default_retention_reaches_stored_events(store: Store) -> None:
    before = LogStore(store, 30)
    _group_with_stream(before, "g", "s")
    before.create_group("kept")
    before.put_retention("kept", 90)
    _put(before, "g", "s", ["x"], int(time.time() * 1000))
    after = LogStore(store, 5)
    assert after.apply_default_retention(wait=True) == ["g"]
    assert after.apply_default_retention() == []
    assert after.retention_days("g") == 5 and after.retention_days("kept") == 90


def test_deleting_a_group_or_stream_deletes_its_events(logs: LogStore) -> None:
    _group_with_stream(logs, "g", "s")
    logs.create_stream("g", "t")
    now = int(time.time() * 1000)
    _put(logs, "g", "s", [lines.START, lines.REPORT], now)
    _put(logs, "g", "t", ["t line"], now)
    logs.delete_stream("g", "t")
    assert [s.name for s in logs.describe_streams("g").items] == ["s"]
    assert len(logs.events("g").events) == 2
    logs.delete_group("g")
    with pytest.raises(LogGroupNotFound):
        logs.delete_group("g")
    assert logs.describe_groups().items == []
    assert logs.trace_lines(lines.LAMBDA_TRACE) == []
    logs.create_group("g")
    assert logs.describe_streams("g").items == []
    assert logs.events("g").events == []
    assert logs.get_group("g").stored_bytes == 0
    logs.create_stream("g", "new")
    # a fresh store object sees the same metadata
    again = LogStore(Store(logs._t, logs.database), 30)
    assert [g.name for g in again.describe_groups().items] == ["g"]
    with pytest.raises(LogStreamNotFound):
        again.check_stream("g", "s")
    assert again.check_stream("g", "new").name == "g"


def test_seq_increases_across_store_objects(store: Store) -> None:
    first = LogStore(store, 30)
    _group_with_stream(first, "g", "s")
    _put(first, "g", "s", ["a", "b"], int(time.time() * 1000))
    highest = max(e.seq for e in first.events("g").events)
    assert LogStore(store, 30).reserve_seq(1) > highest


def test_query_passes_settings_and_refuses_bad_ones(logs: LogStore) -> None:
    table = logs.query("SELECT {x:UInt8} + 1 AS y", {"x": 1}, {"max_execution_time": 5})
    assert table.column("y").to_pylist() == [2]
    with pytest.raises(ValueError, match="not a setting name"):
        logs.query("SELECT 1", settings={"max_execution_time; DROP": 1})


def test_messages_are_kept_in_lz4_for_fast_scans(logs: LogStore) -> None:
    rows = logs.query(
        "SELECT compression_codec FROM system.columns WHERE database = {db:String} "
        "AND table = 'log_events' AND name = 'message'",
        {"db": logs.database},
    )
    assert rows.column(0).to_pylist() == ["CODEC(LZ4)"]


def test_event_times_and_seq_are_kept_in_delta_lz4_for_fast_scans(logs: LogStore) -> None:
    rows = logs.query(
        "SELECT name, compression_codec FROM system.columns WHERE database = {db:String} "
        "AND table = 'log_events' AND name IN ('ts', 'seq') ORDER BY name",
        {"db": logs.database},
    )
    assert rows.to_pylist() == [
        {"name": "seq", "compression_codec": "CODEC(Delta(8), LZ4)"},
        {"name": "ts", "compression_codec": "CODEC(Delta(8), LZ4)"},
    ]


def test_trace_index_entries_point_at_exactly_their_lines(logs: LogStore) -> None:
    trace = "1-67a1b2c3-0123456789abcdef01234567"
    rid = "11111111-1111-4111-8111-111111111111"
    _group_with_stream(logs, "/aws/lambda/f", "s")
    _group_with_stream(logs, "/aws/lambda/g", "s")
    now = int(time.time() * 1000) - 3_600_000
    # 100 lines carrying the trace id, 2 s apart (more time ranges than one read joins),
    # each followed by an id-less line 1 ms later; then one line of its Lambda
    # invocation carrying only the request id, and another trace's line
    stamps = [now + 2000 * i for i in range(100)]
    _put(logs, "/aws/lambda/f", "s", [f"xrayTraceId={trace} n={i}" for i in range(100)], stamps)
    _put(logs, "/aws/lambda/f", "s", [f"no id {i}" for i in range(100)], [t + 1 for t in stamps])
    _put(logs, "/aws/lambda/g", "s", [f"REPORT RequestId: {rid}\tDuration: 1.00 ms\t\n"
                                      f"XRAY TraceId: {trace}\tSegmentId: 0123456789abcdef\t"
                                      "Sampled: true\t\n", f"[INFO]\t2027-01-15T08:00:00.100Z\t"
                                      f"{rid}\tchild work\n"], now + 5)  # fmt: skip
    _put(logs, "/aws/lambda/f", "s", ["xrayTraceId=1-67a1b2c3-fedcba9876543210fedcba98"], now)
    entries = logs.trace_index(trace)
    assert len(entries) == 102
    assert {e.key for e in entries} == {trace, f"r:{rid}"}
    params: dict[str, object] = {}
    condition = pointed(entries, params)
    assert condition.count("BETWEEN") == 64  # ranges 2 s apart, joined down to the cap
    rows = logs.query(
        f"SELECT message FROM `{logs.database}`.log_events WHERE {condition} ORDER BY ts, seq",
        params,
    )
    messages = rows.column(0).to_pylist()
    assert len(messages) == 102 and not any(m.startswith("no id") for m in messages)
    assert messages[-1] == "xrayTraceId=" + trace + " n=99"
    assert sorted(e.seq for e in logs.trace_lines(trace)) == sorted(e.seq for e in entries)
