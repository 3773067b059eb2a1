"""The CloudWatch Logs API through boto3's ``logs`` client against a real server: every
operation with its documented members, pagination (botocore's paginators where the
model has one, token loops where it has none) and errors."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.server.logs_helpers import logs_client, refused
from tests.support import ServerProcess, wait_for

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS


@pytest.fixture(scope="module")
def logs(server: ServerProcess) -> Any:
    return logs_client(server)


def _name(prefix: str = "/test") -> str:
    return f"{prefix}/{uuid.uuid4().hex[:12]}"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _stream(logs: Any, group: str | None = None, stream: str = "s") -> tuple[str, str]:
    group = group or _name()
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    return group, stream


def _put(logs: Any, group: str, stream: str, events: list[tuple[int, str]]) -> dict[str, Any]:
    answer: dict[str, Any] = logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": ts, "message": m} for ts, m in events],
    )
    return answer


# -- groups -------------------------------------------------------------------------


def test_log_group_lifecycle(logs: Any) -> None:
    group = _name()
    assert logs.create_log_group(logGroupName=group, tags={"team": "a"})["ResponseMetadata"][
        "RequestId"
    ]
    code, _, _ = refused(lambda: logs.create_log_group(logGroupName=group))
    assert code == "ResourceAlreadyExistsException"
    [described] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert described["logGroupName"] == group
    assert described["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{group}:*"
    assert described["logGroupArn"] == described["arn"][:-2]
    assert abs(described["creationTime"] - _now_ms()) < 600_000
    assert "retentionInDays" not in described  # no policy: never expires (as AWS says)
    logs.put_retention_policy(logGroupName=group, retentionInDays=7)
    [described] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert described["retentionInDays"] == 7
    logs.delete_retention_policy(logGroupName=group)
    [described] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert "retentionInDays" not in described
    logs.delete_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    for call in (
        lambda: logs.delete_log_group(logGroupName=group),
        lambda: logs.put_retention_policy(logGroupName=group, retentionInDays=1),
        lambda: logs.delete_retention_policy(logGroupName=group),
        lambda: logs.create_log_stream(logGroupName=group, logStreamName="s"),
        lambda: logs.describe_log_streams(logGroupName=group),
        lambda: logs.filter_log_events(logGroupName=group),
    ):
        code, message, status = refused(call)
        assert (code, status) == ("ResourceNotFoundException", 400)
        assert message == "The specified log group does not exist."


def test_describe_log_groups_pages_in_ascii_order(logs: Any) -> None:
    base = _name("/pages")
    names = [f"{base}/{suffix}" for suffix in ("b", "A", "a", "_", "c.d", "B", "z")]
    for name in names:
        logs.create_log_group(logGroupName=name)
    pages = list(
        logs.get_paginator("describe_log_groups").paginate(
            logGroupNamePrefix=base, PaginationConfig={"PageSize": 2}
        )
    )
    assert len(pages) == 4
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == sorted(names)
    # a substring pattern returns only arn, creationTime, logGroupName
    found = logs.describe_log_groups(logGroupNamePattern=base.split("/")[-1] + "/c")
    assert [set(g) for g in found["logGroups"]] == [{"arn", "creationTime", "logGroupName"}]
    # by identifier: names and ARNs alike
    arn = f"arn:aws:logs:us-east-1:000000000000:log-group:{names[0]}:*"
    chosen = logs.describe_log_groups(logGroupIdentifiers=[arn, names[1]])["logGroups"]
    assert sorted(g["logGroupName"] for g in chosen) == sorted(names[:2])


# -- streams ------------------------------------------------------------------------


def test_log_streams_describe_order_and_pages(logs: Any) -> None:
    group = _name()
    logs.create_log_group(logGroupName=group)
    streams = [f"2026/12/03/[$LATEST]{i:032x}" for i in range(5)]
    for stream in streams:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    code, _, _ = refused(
        lambda: logs.create_log_stream(logGroupName=group, logStreamName=streams[0])
    )
    assert code == "ResourceAlreadyExistsException"
    now = _now_ms()
    # the last stream gets the oldest event, the first the newest
    for index, stream in enumerate(streams):
        _put(logs, group, stream, [(now - index * 1000, f"line {index}")])
    pages = list(
        logs.get_paginator("describe_log_streams").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 2}
        )
    )
    listed = [s for p in pages for s in p["logStreams"]]
    assert [s["logStreamName"] for s in listed] == streams
    assert all(s["firstEventTimestamp"] == s["lastEventTimestamp"] for s in listed)
    assert listed[0]["arn"].endswith(f":log-group:{group}:log-stream:{streams[0]}")
    by_time = list(
        logs.get_paginator("describe_log_streams").paginate(
            logGroupIdentifier=group,
            orderBy="LastEventTime",
            descending=True,
            PaginationConfig={"PageSize": 2},
        )
    )
    assert [s["logStreamName"] for p in by_time for s in p["logStreams"]] == streams
    prefixed = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=streams[3][:-1])
    assert [s["logStreamName"] for s in prefixed["logStreams"]] == streams[:-1][:0] + [
        s for s in streams if s.startswith(streams[3][:-1])
    ]


# -- PutLogEvents -------------------------------------------------------------------


def test_put_log_events_rejects_too_old_too_new_and_expired(logs: Any) -> None:
    group, stream = _stream(logs)
    logs.put_retention_policy(logGroupName=group, retentionInDays=1)
    now = _now_ms()
    answer = _put(
        logs,
        group,
        stream,
        [
            (now - 15 * DAY_MS, "too old"),  # also past the retention
            (now - 2 * DAY_MS, "expired"),
            (now - 1000, "kept 1"),
            (now, "kept 2"),
            (now + 3 * HOUR_MS, "too new"),
        ],
    )
    assert answer["rejectedLogEventsInfo"] == {
        "tooOldLogEventEndIndex": 1,
        "expiredLogEventEndIndex": 2,
        "tooNewLogEventStartIndex": 4,
    }
    assert answer["nextSequenceToken"]
    got = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    assert [e["message"] for e in got["events"]] == ["kept 1", "kept 2"]


def test_put_log_events_limits_and_stored_shape(logs: Any) -> None:
    group, stream = _stream(logs)
    now = _now_ms()
    # exactly 1 MiB as counted (UTF-8 bytes + 26 per event) is taken
    fits = 1_048_576 // 4 - 26
    answer = _put(logs, group, stream, [(now + i, "é" * (fits // 2)) for i in range(4)])
    assert "rejectedLogEventsInfo" not in answer
    # a sequence token is ignored, whatever it is
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        sequenceToken="49999999999999999999999",
        logEvents=[{"timestamp": now + 10, "message": "tabs\tand\nnewlines\u00a0"}],
    )
    code, message, _ = refused(
        lambda: _put(logs, group, stream, [(now - 25 * HOUR_MS, "a"), (now, "b")])
    )
    assert code == "InvalidParameterException" and "24 hours" in message
    events = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    assert [len(e["message"]) for e in events["events"]][:4] == [fits // 2] * 4
    last = events["events"][-1]
    assert last["message"] == "tabs\tand\nnewlines\u00a0"
    assert last["timestamp"] == now + 10
    assert abs(last["ingestionTime"] - _now_ms()) < 600_000


def test_put_log_events_into_what_does_not_exist(logs: Any) -> None:
    group, _ = _stream(logs)
    code, message, _ = refused(lambda: _put(logs, group, "nope", [(_now_ms(), "x")]))
    assert (code, message) == (
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
    code, _, _ = refused(lambda: _put(logs, _name(), "s", [(_now_ms(), "x")]))
    assert code == "ResourceNotFoundException"


def test_a_broken_string_keeps_the_rest_of_its_message(server: ServerProcess, logs: Any) -> None:
    group, stream = _stream(logs)
    # botocore writes a lone surrogate as the escape \ud800
    _put(logs, group, stream, [(_now_ms(), "before \ud800 after")])
    events = logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]
    assert [e["message"] for e in events] == ["before \ufffd after"]


# -- GetLogEvents -------------------------------------------------------------------


def test_get_log_events_tokens_walk_both_ways(logs: Any) -> None:
    group, stream = _stream(logs)
    now = _now_ms()
    messages = [f"event {i:02d}" for i in range(25)]
    # two events share a timestamp: arrival order keeps them apart
    _put(
        logs,
        group,
        stream,
        [(now - 25_000 + i * 1000 - (i == 5), m) for i, m in enumerate(messages)],
    )
    head = logs.get_log_events(
        logGroupName=group, logStreamName=stream, startFromHead=True, limit=10
    )
    assert [e["message"] for e in head["events"]] == messages[:10]
    seen = [e["message"] for e in head["events"]]
    token = head["nextForwardToken"]
    while True:  # CloudWatch Logs' end: the token passed in comes back
        page = logs.get_log_events(
            logGroupName=group, logStreamName=stream, startFromHead=True, nextToken=token, limit=10
        )
        seen += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert seen == messages
    # newest first by default: the last 10, in time order; then backwards
    tail = logs.get_log_events(logGroupName=group, logStreamName=stream, limit=10)
    assert [e["message"] for e in tail["events"]] == messages[-10:]
    back = [e["message"] for e in tail["events"]]
    token = tail["nextBackwardToken"]
    while True:
        page = logs.get_log_events(
            logGroupName=group, logStreamName=stream, nextToken=token, limit=10
        )
        back = [e["message"] for e in page["events"]] + back
        if page["nextBackwardToken"] == token:
            break
        token = page["nextBackwardToken"]
    assert back == messages
    # the window: startTime included, endTime excluded
    window = logs.get_log_events(
        logGroupName=group,
        logStreamName=stream,
        startTime=now - 25_000 + 10_000,
        endTime=now - 25_000 + 12_000,
        startFromHead=True,
    )
    assert [e["message"] for e in window["events"]] == messages[10:12]
    code, _, _ = refused(lambda: logs.get_log_events(logGroupName=group, logStreamName="nope"))
    assert code == "ResourceNotFoundException"


def test_get_log_events_forward_token_sees_new_events(logs: Any) -> None:
    group, stream = _stream(logs)
    now = _now_ms()
    _put(logs, group, stream, [(now, "first")])
    page = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    token = page["nextForwardToken"]
    _put(logs, group, stream, [(now + 1, "second")])
    later = logs.get_log_events(
        logGroupName=group, logStreamName=stream, startFromHead=True, nextToken=token
    )
    assert [e["message"] for e in later["events"]] == ["second"]


# -- FilterLogEvents ----------------------------------------------------------------


def test_filter_log_events_interleaves_streams_and_pages(logs: Any) -> None:
    group = _name()
    logs.create_log_group(logGroupName=group)
    now = _now_ms()
    expected = []
    for offset, stream in ((0, "app/a"), (331, "app/b"), (662, "other")):
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        events = [(now - 60_000 + i * 997 + offset, f"{stream} {i}") for i in range(20)]
        _put(logs, group, stream, events)
        expected += [(ts, stream, m) for ts, m in events]
    expected.sort()
    pages = list(
        logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 7}
        )
    )
    got = [e for p in pages for e in p["events"]]
    assert [(e["timestamp"], e["logStreamName"], e["message"]) for e in got] == expected
    assert len({e["eventId"] for e in got}) == len(got)
    assert all(p["searchedLogStreams"] == [] for p in pages)
    assert all(len(p["events"]) <= 7 for p in pages)
    named = logs.filter_log_events(logGroupName=group, logStreamNames=["other"])["events"]
    assert {e["logStreamName"] for e in named} == {"other"} and len(named) == 20
    prefixed = logs.filter_log_events(logGroupIdentifier=group, logStreamNamePrefix="app/")
    assert {e["logStreamName"] for e in prefixed["events"]} == {"app/a", "app/b"}
    window = logs.filter_log_events(
        logGroupName=group, startTime=expected[5][0], endTime=expected[9][0]
    )["events"]
    assert [e["message"] for e in window] == [m for _, _, m in expected[5:9]]
    newest_first = logs.filter_log_events(logGroupName=group, limit=3)
    assert [e["message"] for e in newest_first["events"]] == [m for _, _, m in expected[:3]]
    assert "nextToken" in newest_first


def test_filter_log_events_over_years_answers_in_bounded_time(logs: Any) -> None:
    group, stream = _stream(logs)
    _put(logs, group, stream, [(_now_ms(), "only")])
    started = time.monotonic()
    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName=group, startTime=0))
    assert [e["message"] for p in pages for e in p["events"]] == ["only"]
    assert time.monotonic() - started < 60


# -- Insights queries ---------------------------------------------------------------


def _results(logs: Any, query_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        answer: dict[str, Any] = logs.get_query_results(queryId=query_id)
        return answer if answer["status"] not in ("Scheduled", "Running") else None

    return wait_for(done, timeout=60, interval=0.1)


def _rows(answer: dict[str, Any]) -> list[dict[str, str]]:
    """The result rows as dicts, without ``@ptr`` (opaque)."""
    return [
        {f["field"]: f["value"] for f in row if f["field"] != "@ptr"} for row in answer["results"]
    ]


def test_start_query_runs_in_the_background(logs: Any) -> None:
    group, stream = _stream(logs)
    now = _now_ms()
    _put(
        logs,
        group,
        stream,
        [
            (now - 3000 + i * 1000, f"line {i} level=" + ("ERROR" if i else "INFO"))
            for i in range(3)
        ],
    )
    query_id = logs.start_query(
        logGroupName=group,
        startTime=now // 1000 - 600,
        endTime=now // 1000 + 60,
        queryString="fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp asc",
    )["queryId"]
    answer = _results(logs, query_id)
    assert answer["status"] == "Complete"
    rows = _rows(answer)
    assert [r["@message"] for r in rows] == ["line 1 level=ERROR", "line 2 level=ERROR"]
    assert rows[0]["@timestamp"].count(":") == 2 and len(rows[0]["@timestamp"]) == 23
    assert answer["statistics"]["recordsMatched"] == 2.0
    assert answer["statistics"]["recordsScanned"] == 3.0
    stats = logs.start_query(
        logGroupNames=[group],
        startTime=now // 1000 - 600,
        endTime=now // 1000 + 60,
        queryString="stats count(*) as n",
    )["queryId"]
    assert _rows(_results(logs, stats)) == [{"n": "3"}]
    code, _, _ = refused(lambda: logs.stop_query(queryId=query_id))
    assert code == "InvalidParameterException"  # it has ended
    described = logs.describe_queries(logGroupName=group)["queries"]
    assert {q["queryId"] for q in described} == {query_id, stats}
    assert {q["status"] for q in described} == {"Complete"}


def test_a_malformed_query_points_at_the_character(logs: Any) -> None:
    group, _ = _stream(logs)
    with pytest.raises(logs.exceptions.MalformedQueryException) as caught:
        logs.start_query(
            logGroupName=group, startTime=0, endTime=60, queryString="fields @message | limit x"
        )
    compile_error = caught.value.response["queryCompileError"]
    assert compile_error["location"]["startCharOffset"] == len("fields @message | limit ")
    assert compile_error["message"] and "\n" not in compile_error["message"]
    assert "^" in caught.value.response["Error"]["Message"]  # the excerpt and its caret
    code, _, _ = refused(
        lambda: logs.start_query(
            logGroupName=_name(), startTime=0, endTime=60, queryString="fields @message"
        )
    )
    assert code == "ResourceNotFoundException"


# -- lines as Lambda and API Gateway write them, read back by trace -----------------


def _lambda_invocation(request_id: str, trace_id: str, segment_id: str) -> list[str]:
    """One invocation's lines as Lambda writes them (text format, Python runtime),
    the REPORT with its XRAY part as a second line inside the same event."""
    return [
        f"START RequestId: {request_id} Version: $LATEST\n",
        f"[INFO]\t2026-12-03T18:29:55.453Z\t{request_id}\tProcessing order o-1\n",
        f"[ERROR]\t2026-12-03T18:29:55.460Z\t{request_id}\tfailed\nTraceback (most recent "
        'call last):\n  File "/var/task/app.py", line 9, in handler\nValueError: bad\n',
        f"END RequestId: {request_id}\n",
        f"REPORT RequestId: {request_id}\tDuration: 20.39 ms\tBilled Duration: 21 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 57 MB\tInit Duration: 178.50 ms\t\n"
        f"XRAY TraceId: {trace_id}\tSegmentId: {segment_id}\tSampled: true\t\n",
    ]


def test_lambda_and_api_gateway_lines_are_found_by_trace_id(logs: Any) -> None:
    function = _name("/aws/lambda")
    access = _name("/apigw/access")
    stream = "2026/12/03/[$LATEST]" + uuid.uuid4().hex
    _stream(logs, function, stream)
    _stream(logs, access, "default")
    trace, other_trace = (
        "1-643eb81e-7b15c13c3bff33247638ad8d",
        "1-643eb81e-000000000000000000000001",
    )
    request, other_request = str(uuid.uuid4()), str(uuid.uuid4())
    now = _now_ms() - 10_000
    mine = _lambda_invocation(request, trace, "4c72ac137fd02fb0")
    theirs = _lambda_invocation(other_request, other_trace, "4c72ac137fd02fb1")
    # the application lines arrive in a call before their REPORT, and another
    # invocation's lines come between
    _put(logs, function, stream, [(now + i, line) for i, line in enumerate(mine[:3])])
    _put(logs, function, stream, [(now + 10 + i, line) for i, line in enumerate(theirs)])
    _put(logs, function, stream, [(now + 20 + i, line) for i, line in enumerate(mine[3:])])
    api_line = (
        '{"requestTime":"03/Dec/2026:18:29:55 +0000","requestId":"' + str(uuid.uuid4()) + '",'
        '"httpMethod":"POST","path":"/prod/orders","resourcePath":"/orders","status":502,'
        '"responseLatency":31,"xrayTraceId":"'
        + trace
        + '","integrationRequestId":"'
        + request
        + '","functionResponseStatus":"200","integrationLatency":"25",'
        '"integrationServiceStatus":"200","ip":"203.0.113.9","userAgent":"curl/8.5.0"}'
    )
    _put(logs, access, "default", [(now + 30, api_line)])
    query_id = logs.start_query(
        logGroupNames=[function, access],
        startTime=now // 1000 - 60,
        endTime=now // 1000 + 60,
        queryString=f'fields @timestamp, @message, @log, @requestId | filter @xrayTraceId = "{trace}" | sort @timestamp asc',
    )["queryId"]
    rows = _rows(_results(logs, query_id))
    assert [r["@message"] for r in rows] == [*mine, api_line]
    assert {r["@log"] for r in rows} == {f"000000000000:{function}", f"000000000000:{access}"}
    assert [r.get("@requestId") for r in rows[:5]] == [request] * 5
    report = logs.start_query(
        logGroupName=function,
        startTime=now // 1000 - 60,
        endTime=now // 1000 + 60,
        queryString=f'filter @type = "REPORT" and @requestId = "{request}" '
        "| fields @duration, @billedDuration, @maxMemoryUsed, @initDuration, @xraySegmentId",
    )["queryId"]
    [row] = _rows(_results(logs, report))
    assert (row["@duration"], row["@billedDuration"], row["@initDuration"]) == (
        "20.39",
        "21",
        "178.5",
    )
    assert row["@xraySegmentId"] == "4c72ac137fd02fb0"


def test_a_page_of_events_holds_at_most_1_mib(logs: Any) -> None:
    group, stream = _stream(logs)
    now = _now_ms()
    big = "x" * 300_000
    _put(logs, group, stream, [(now - 10 + i, big) for i in range(3)])
    _put(logs, group, stream, [(now - 5 + i, big) for i in range(3)])
    head = logs.get_log_events(logGroupName=group, logStreamName=stream, startFromHead=True)
    assert len(head["events"]) == 3  # a fourth would pass 1 MiB
    rest = logs.get_log_events(
        logGroupName=group,
        logStreamName=stream,
        startFromHead=True,
        nextToken=head["nextForwardToken"],
    )
    assert [e["timestamp"] for e in head["events"] + rest["events"]] == [
        now - 10, now - 9, now - 8, now - 5, now - 4, now - 3,
    ]  # fmt: skip
    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName=group))
    assert [len(p["events"]) for p in pages if p["events"]] == [3, 3]  # a 4th passes 1 MiB


def test_describe_queries_pages(logs: Any) -> None:
    group, _ = _stream(logs)
    now = _now_ms() // 1000
    ids = {
        logs.start_query(
            logGroupName=group, startTime=now - 60, endTime=now, queryString=f"limit {n}"
        )["queryId"]
        for n in range(1, 6)
    }
    for query_id in ids:
        assert _results(logs, query_id)["status"] == "Complete"
    pages = list(
        logs.get_paginator("describe_queries").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["queries"]) for p in pages] == [2, 2, 1]
    listed = [q for p in pages for q in p["queries"]]
    assert {q["queryId"] for q in listed} == ids
    assert all(q["logGroupName"] == group and q["status"] == "Complete" for q in listed)
    assert logs.describe_queries(logGroupName=group, status="Running")["queries"] == []


FILTER_LINES = [
    "ERROR payment failed: card declined",
    "INFO payment accepted",
    "WARN Exception ignored while retrying",
    "INTERNAL SERVER ERROR on /orders",
    '{"level": "ERROR", "latency": 250, "user": {"id": "u-1"}}',
    '{"level": "INFO", "latency": 12, "user": {"id": "u-2"}}',
    "10.0.0.1 - alice [03/Dec/2026:18:29:55 +0000] GET /orders 503 1200",
]


@pytest.mark.parametrize(
    ("pattern", "chosen"),
    [
        ("", [0, 1, 2, 3, 4, 5, 6]),
        ("ERROR", [0, 3, 4]),  # a term is found in JSON text too
        ("payment declined", [0]),
        ("?declined ?Exception", [0, 2]),
        ('"INTERNAL SERVER ERROR"', [3]),
        ("payment -declined", [1]),
        ('{ $.level = "ERROR" }', [4]),
        ("{ $.latency > 100 }", [4]),
        ('{ ($.latency < 100) && ($.user.id = "u-*") }', [5]),
        ("[ip, dash, user, ..., status = 5*, bytes]", [6]),
    ],
)
def test_filter_patterns(logs: Any, pattern: str, chosen: list[int]) -> None:
    group, stream = _stream(logs)
    now = _now_ms()
    _put(logs, group, stream, [(now - 100 + i, line) for i, line in enumerate(FILTER_LINES)])
    found = logs.filter_log_events(logGroupName=group, filterPattern=pattern)["events"]
    assert [e["message"] for e in found] == [FILTER_LINES[i] for i in chosen]


def test_a_malformed_filter_pattern_is_an_invalid_parameter(logs: Any) -> None:
    group, _ = _stream(logs)
    for pattern in ('{ $.level = "ERROR"', '"unclosed', "{ $.a IS }"):
        code, message, _ = refused(
            lambda p=pattern: logs.filter_log_events(logGroupName=group, filterPattern=p)  # type: ignore[misc]
        )
        assert code == "InvalidParameterException" and "filter pattern" in message, pattern


def test_json_format_lambda_and_execution_logs_are_found_by_trace_id(logs: Any) -> None:
    from tests import log_lines as lines

    function = _name("/aws/lambda")
    execution = _name("/API-Gateway-Execution-Logs_abc123")
    stream = "2026/12/03/[$LATEST]" + uuid.uuid4().hex
    _stream(logs, function, stream)
    _stream(logs, execution, "prod")
    now = _now_ms() - 10_000
    invocation = [lines.JSON_APP, lines.JSON_START, lines.JSON_RUNTIME_DONE, lines.JSON_REPORT]
    for i, line in enumerate(invocation):  # one call each: the app line comes first
        _put(logs, function, stream, [(now + i, line)])
    executed = [lines.EXEC_START, lines.EXEC_TRACING, lines.EXEC_BODY]
    _put(logs, execution, "prod", [(now + 10 + i, line) for i, line in enumerate(executed)])

    def by_trace(trace: str) -> list[str]:
        query_id = logs.start_query(
            logGroupNames=[function, execution],
            startTime=now // 1000 - 60,
            endTime=now // 1000 + 60,
            queryString=f'filter @xrayTraceId = "{trace}" | sort @timestamp asc | fields @message',
        )["queryId"]
        return [row["@message"] for row in _rows(_results(logs, query_id))]

    assert by_trace(lines.JSON_TRACE) == invocation
    assert by_trace(lines.EXEC_TRACE) == executed
