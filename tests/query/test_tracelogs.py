"""query/tracelogs: which stored lines belong to a trace, and which part of it wrote each,
on the real embedded engine (lines stored through the log writer's own encoding)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import pytest

from fluoroscope.ingest.logwriter import encode
from fluoroscope.query.tracelogs import trace_logs, trace_parts
from fluoroscope.store.logs import LogStore
from fluoroscope.store.store import Store

TRACE = "1-67a1b2c3-0123456789abcdef01234567"
OTHER = "1-67a1b2c3-fedcba9876543210fedcba98"
R1 = "11111111-1111-4111-8111-111111111111"  # f1's invocation (REPORT names the trace)
R2 = "22222222-2222-4222-8222-222222222222"  # f2's invocation (REPORT without XRAY line)
R9 = "99999999-9999-4999-8999-999999999999"  # f1's invocation of another trace
API_REQ = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
T0 = 1_800_000_000.0  # the trace's start, epoch seconds
MS = int(T0 * 1000)


def _documents() -> list[dict[str, Any]]:
    arn = "arn:aws:lambda:us-east-1:123456789012:function:"
    return [
        {
            "id": "a000000000000001", "name": "orders-api/prod", "trace_id": TRACE,
            "origin": "AWS::ApiGateway::Stage", "start_time": T0, "end_time": T0 + 1,
            "aws": {"api_gateway": {"request_id": API_REQ, "rest_api_id": "abc123", "stage": "prod"}},
            "subsegments": [{"id": "a000000000000002", "name": "Lambda"}],
        },
        {
            "id": "b000000000000001", "name": "f1", "trace_id": TRACE, "origin": "AWS::Lambda",
            "parent_id": "a000000000000002", "start_time": T0 + 0.01, "end_time": T0 + 0.9,
            "resource_arn": arn + "f1", "aws": {"request_id": R1},
        },
        {
            "id": "b000000000000002", "name": "f1", "trace_id": TRACE,
            "origin": "AWS::Lambda::Function", "parent_id": "b000000000000001",
            "start_time": T0 + 0.02, "end_time": T0 + 0.8,
            "aws": {"function_arn": arn + "f1", "cloudwatch_logs": [
                {"log_group": "app/custom", "arn": "arn:aws:logs:us-east-1:1:log-group:app/custom"}
            ]},
            "subsegments": [{"id": "b000000000000003", "name": "Invocation", "subsegments": [
                {"id": "b000000000000004", "name": "DynamoDB"}]}],
        },
        {
            "id": "c000000000000001", "name": "f2", "trace_id": TRACE, "origin": "AWS::Lambda",
            "parent_id": "b000000000000004", "start_time": T0 + 0.1, "end_time": T0 + 0.5,
            "resource_arn": arn + "f2", "aws": {"request_id": R2},
        },
        {
            "id": "c000000000000002", "name": "f2", "trace_id": TRACE,
            "origin": "AWS::Lambda::Function", "parent_id": "c000000000000001",
            "start_time": T0 + 0.1, "end_time": T0 + 0.5, "aws": {"function_arn": arn + "f2"},
        },
    ]  # fmt: skip


def _put(logs: LogStore, group: str, stream: str, lines: Sequence[tuple[int, str]]) -> None:
    for name in {group}:
        try:
            logs.group(name)
        except Exception:
            logs.create_group(name)
    first = logs.reserve_seq(len(lines))
    now = int(time.time() * 1000)
    stamps = [MS + offset for offset, _ in lines]
    batch = (group, stream, stamps, [text for _, text in lines], 30, now)
    logs.write(encode([batch], first))


def _report(rid: str, trace: str | None) -> str:
    text = (
        f"REPORT RequestId: {rid}\tDuration: 20.39 ms\tBilled Duration: 21 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 57 MB\t\n"
    )
    if trace:
        text += f"XRAY TraceId: {trace}\tSegmentId: b000000000000001\tSampled: true\t\n"
    return text


def _py(rid: str, text: str, level: str = "INFO") -> str:
    return f"[{level}]\t2027-01-15T08:00:00.100Z\t{rid}\t{text}\n"


@pytest.fixture
def logs(store: Store) -> LogStore:
    logs = LogStore(store, 30)
    access = {"requestId": API_REQ, "xrayTraceId": TRACE, "status": 502, "responseLatency": 812}
    _put(logs, "/aws/apigateway/orders-api", "access", [(900, json.dumps(access))])
    # the APIGW execution log: request id prefix only
    _put(logs, "API-Gateway-Execution-Logs_abc123/prod", "e1", [(5, f"({API_REQ}) Starting")])
    f1 = "2027/01/15/[$LATEST]0123456789abcdef0123456789abcdef"
    _put(
        logs, "/aws/lambda/f1", f1,
        [
            (20, f"START RequestId: {R1} Version: $LATEST\n"),
            (30, _py(R1, "Processing order o-1")),
            (35, "printed by the handler\n"),  # no id: between R1's START and END
            (40, json.dumps({"level": "ERROR", "message": "boom", "xray_trace_id": TRACE,
                             "xray_segment_id": "b000000000000004"})),
            (700, f"END RequestId: {R1}\n"),
            (705, "printed between invocations\n"),
            (701, _report(R1, TRACE)),
            # another trace's invocation in the same stream, same time
            (710, f"START RequestId: {R9} Version: $LATEST\n"),
            (711, _py(R9, "someone else's order")),
            (712, _report(R9, OTHER)),
        ],
    )  # fmt: skip
    _put(
        logs, "/aws/lambda/f2", "2027/01/15/[$LATEST]f2",
        [(100, f"START RequestId: {R2} Version: $LATEST\n"), (110, _py(R2, "child work")),
         (490, _report(R2, None))],
    )  # fmt: skip
    # R1's id in a group the trace does not name; a line naming the trace only in its text
    _put(logs, "/aws/lambda/elsewhere", "x", [(30, _py(R1, "not ours"))])
    w3c = TRACE[2:10] + TRACE[11:]
    _put(logs, "app/custom", "web-1", [(50, f"handled request w3c={w3c} ok")])
    _put(logs, "app/custom", "web-1", [(51, "handled another request")])
    return logs


def test_every_line_of_the_trace_and_no_other_in_time_order(store: Store, logs: LogStore) -> None:
    found = trace_logs(store, logs, TRACE, documents=_documents())
    texts = [line.message.split("\n")[0] for line in found.lines]
    assert texts == [
        f"({API_REQ}) Starting",
        f"START RequestId: {R1} Version: $LATEST",
        _py(R1, "Processing order o-1").rstrip("\n"),
        "printed by the handler",
        found.lines[4].message,  # the JSON line
        f"handled request w3c={TRACE[2:10] + TRACE[11:]} ok",
        f"START RequestId: {R2} Version: $LATEST",
        _py(R2, "child work").rstrip("\n"),
        _report(R2, None).split("\n")[0],
        f"END RequestId: {R1}",
        _report(R1, TRACE).split("\n")[0],
        json.dumps({"requestId": API_REQ, "xrayTraceId": TRACE, "status": 502,
                    "responseLatency": 812}),
    ]  # fmt: skip
    assert not found.truncated
    assert "/aws/lambda/f1" in found.groups and "app/custom" in found.groups
    assert "API-Gateway-Execution-Logs_abc123/prod" in found.groups
    assert all(R9 not in line.message and "not ours" not in line.message for line in found.lines)


def test_each_line_is_tagged_with_the_part_of_the_trace_that_wrote_it(
    store: Store, logs: LogStore
) -> None:
    found = trace_logs(store, logs, TRACE, documents=_documents())
    tags = {
        line.message.split("\n")[0][:40]: (line.entity_id, line.service) for line in found.lines
    }
    by_start = {m: t for m, t in tags.items() if m.startswith("START")}
    assert by_start[f"START RequestId: {R1} Version: $LATEST"[:40]] == ("b000000000000002", "f1")
    assert by_start[f"START RequestId: {R2} Version: $LATEST"[:40]] == ("c000000000000002", "f2")
    json_line = next(line for line in found.lines if "xray_segment_id" in line.message)
    assert (json_line.entity_id, json_line.segment_id) == ("b000000000000004", "b000000000000002")
    assert json_line.level == "ERROR"
    access = next(line for line in found.lines if line.log_group == "/aws/apigateway/orders-api")
    assert (access.entity_id, access.service) == ("a000000000000001", "orders-api/prod")
    custom = next(line for line in found.lines if line.log_group == "app/custom")
    assert custom.service == "f1"  # the only segment naming that group


def test_a_trace_not_stored_still_has_the_lines_carrying_its_id(
    store: Store, logs: LogStore
) -> None:
    found = trace_logs(store, logs, TRACE)
    assert {line.log_group for line in found.lines} == {
        "/aws/lambda/f1",
        "/aws/apigateway/orders-api",
    }
    assert all(line.entity_id == "" for line in found.lines)
    assert trace_logs(store, logs, "1-00000000-000000000000000000000000").lines == []


def test_limit_truncates(store: Store, logs: LogStore) -> None:
    found = trace_logs(store, logs, TRACE, documents=_documents(), limit=3)
    assert len(found.lines) == 3 and found.truncated


def test_groups_from_arns_and_function_names() -> None:
    parts = trace_parts(_documents())
    assert "app/custom" in parts.groups
    assert {"/aws/lambda/f1", "/aws/lambda/f2"} <= parts.groups
    assert parts.requests[R1] == "b000000000000002"
