"""PutLogEvents under bad input, mixed with good calls and sent in parallel to one
stream (CloudWatch Logs allows that now that sequence tokens are ignored): a bad call
fails alone with its documented error, rejected events are reported and never stored,
and every event of every good call is stored exactly once, whatever came with it.
Plus queries and filters built to be slow: each answers in bounded time."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import botocore.exceptions
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server.logs_helpers import logs_client, raw_call
from tests.support import ServerProcess, wait_for

HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS

messages = st.one_of(
    st.text(min_size=1, max_size=30),
    st.just("half \ud800 a pair"),  # a lone surrogate: kept, as U+FFFD
    st.just("tab\tnewline\nnul\0"),
)


@st.composite
def good_call(draw: st.DrawFn) -> dict[str, Any]:
    """Events within the last hour, in order, maybe with too-old/too-new ones at the ends."""
    count = draw(st.integers(1, 5))
    offsets = sorted(draw(st.lists(st.integers(0, HOUR_MS), min_size=count, max_size=count)))
    texts = draw(st.lists(messages, min_size=count, max_size=count))
    old = draw(st.integers(0, 2))
    new = draw(st.integers(0, 2))
    return {
        "kind": "good",
        "old": [(-(15 * DAY_MS) - i, f"old {i}") for i in range(old, 0, -1)],
        "kept": list(zip((-HOUR_MS + o for o in offsets), texts, strict=True)),
        "new": [(3 * HOUR_MS + i, f"new {i}") for i in range(new)],
    }


BAD_KINDS = (
    "out_of_order",
    "empty_message",
    "too_large",
    "no_stream",
    "negative_time",
    "over_a_day",
    "no_message",
    "bad_stream_name",
)


@st.composite
def bad_call(draw: st.DrawFn) -> dict[str, Any]:
    return {"kind": draw(st.sampled_from(BAD_KINDS))}


def _request(call: dict[str, Any], group: str, stream: str, now: int) -> dict[str, Any]:
    kind = call["kind"]
    events: Any
    if kind == "good":
        events = [
            {"timestamp": now + ts, "message": m}
            for ts, m in [*call["old"], *call["kept"], *call["new"]]
        ]
    elif kind == "out_of_order":
        events = [{"timestamp": now, "message": "b"}, {"timestamp": now - 5, "message": "a"}]
    elif kind == "empty_message":
        events = [{"timestamp": now, "message": "x"}, {"timestamp": now, "message": ""}]
    elif kind == "too_large":
        events = [{"timestamp": now, "message": "x" * 600_000}] * 2
    elif kind == "negative_time":
        events = [{"timestamp": -1, "message": "x"}]
    elif kind == "over_a_day":
        events = [
            {"timestamp": now - 25 * HOUR_MS, "message": "a"},
            {"timestamp": now, "message": "b"},
        ]
    elif kind == "no_message":
        events = [{"timestamp": now}]
    else:
        events = [{"timestamp": now, "message": "x"}]
    return {
        "logGroupName": group,
        "logStreamName": {"no_stream": "missing", "bad_stream_name": "a:b"}.get(kind, stream),
        "logEvents": events,
    }


EXPECTED_ERROR = {
    "out_of_order": "InvalidParameterException",
    "empty_message": "InvalidParameterException",
    "too_large": "InvalidParameterException",
    "no_stream": "ResourceNotFoundException",
    "negative_time": "InvalidParameterException",
    "over_a_day": "InvalidParameterException",
    "no_message": "InvalidParameterException",
    "bad_stream_name": "InvalidParameterException",
}


@pytest.fixture(scope="module")
def logs(server: ServerProcess) -> Any:
    return logs_client(server, validate=False)


@pytest.fixture(scope="module")
def group(logs: Any) -> str:
    name = f"/bad-input/{uuid.uuid4().hex[:8]}"
    logs.create_log_group(logGroupName=name)
    return name


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calls=st.lists(st.one_of(good_call(), bad_call()), min_size=1, max_size=8))
def test_bad_calls_never_affect_good_ones(
    logs: Any, group: str, calls: list[dict[str, Any]]
) -> None:
    stream = uuid.uuid4().hex
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)

    def send(call: dict[str, Any]) -> tuple[str, Any]:
        try:
            return "ok", logs.put_log_events(**_request(call, group, stream, now))
        except botocore.exceptions.ClientError as err:
            return "error", err.response["Error"]["Code"]

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(send, calls))
    expected: list[tuple[int, str]] = []
    for call, (outcome, answer) in zip(calls, answers, strict=True):
        if call["kind"] != "good":
            assert (outcome, answer) == ("error", EXPECTED_ERROR[call["kind"]]), call["kind"]
            continue
        assert outcome == "ok", answer
        rejected = answer.get("rejectedLogEventsInfo", {})
        old, kept = len(call["old"]), len(call["kept"])
        assert rejected.get("tooOldLogEventEndIndex", 0) == old
        assert rejected.get("tooNewLogEventStartIndex", old + kept + len(call["new"])) == old + kept
        expected += [(now + ts, m.replace("\ud800", "\ufffd")) for ts, m in call["kept"]]
    stored = [
        (e["timestamp"], e["message"])
        for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, logStreamNames=[stream]
        )
        for e in page["events"]
    ]
    assert sorted(stored) == sorted(expected)
    assert [ts for ts, _ in stored] == sorted(ts for ts, _ in expected)


def test_slow_patterns_answer_in_bounded_time(logs: Any, group: str) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName="slow")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="slow",
        logEvents=[{"timestamp": now, "message": "a" * 5000 + "!"}] * 200,
    )
    started = time.monotonic()
    query_id = logs.start_query(
        logGroupName=group,
        startTime=now // 1000 - 60,
        endTime=now // 1000 + 60,
        queryString=r"filter @message like /^(a+)+$/ | stats count(*) as n",
    )["queryId"]

    def done() -> dict[str, Any] | None:
        answer: dict[str, Any] = logs.get_query_results(queryId=query_id)
        return answer if answer["status"] not in ("Scheduled", "Running") else None

    answer = wait_for(done, timeout=60)
    assert answer["status"] == "Complete"
    assert [[f for f in row if f["field"] == "n"] for row in answer["results"]] == [
        [{"field": "n", "value": "0"}]
    ]
    assert time.monotonic() - started < 30


def test_bytes_that_are_not_utf8_cost_only_themselves(
    server: ServerProcess, logs: Any, group: str
) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName="bytes")
    now = int(time.time() * 1000)
    body = (
        b'{"logGroupName": "' + group.encode() + b'", "logStreamName": "bytes", "logEvents": ['
        b'{"timestamp": ' + str(now).encode() + b', "message": "caf\xe9 \xff\xfe ok"},'
        b'{"timestamp": ' + str(now + 1).encode() + b', "message": "plain"}]}'
    )
    status, _, answer = raw_call(server, "Logs_20140328.PutLogEvents", body)
    assert status == 200 and "rejectedLogEventsInfo" not in answer
    events = logs.get_log_events(logGroupName=group, logStreamName="bytes", startFromHead=True)
    assert [e["message"] for e in events["events"]] == ["caf\ufffd \ufffd\ufffd ok", "plain"]


def test_a_query_over_ten_years_is_bounded(logs: Any, group: str) -> None:
    now = int(time.time())
    started = time.monotonic()
    query_id = logs.start_query(
        logGroupName=group,
        startTime=now - 10 * 366 * 86_400,
        endTime=now + 60,
        queryString="stats count(*) as n by bin(1d)",
    )["queryId"]

    def done() -> dict[str, Any] | None:
        answer: dict[str, Any] = logs.get_query_results(queryId=query_id)
        return answer if answer["status"] not in ("Scheduled", "Running") else None

    answer = wait_for(done, timeout=60)
    assert answer["status"] in ("Complete", "Timeout")
    assert time.monotonic() - started < 45  # the engine's 20 s, and the rest
