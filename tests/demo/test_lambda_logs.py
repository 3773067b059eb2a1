"""The local Lambda runtime writes what Lambda writes to CloudWatch Logs, and a Lambda
invoking another through boto3 continues the trace: both functions' lines come back as
the trace's lines from a real server (segments over UDP, lines through its Logs API)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fluoroscope.demo.cwlogs import LogShipper
from fluoroscope.demo.lambda_runtime import FunctionConfig, LambdaService
from fluoroscope.model.ids import new_entity_id, new_trace_id
from tests.support import ServerProcess, wait_for

TEXT_LINE = re.compile(r"\[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t([0-9a-f-]{36})\t(.*)\n")


@pytest.fixture
def service(server: ServerProcess) -> Iterator[LambdaService]:
    shipper = LogShipper(server.url, interval=0.05)
    svc = LambdaService(
        [
            FunctionConfig("chain-fn", "tests.demo.handlers:chain"),
            FunctionConfig("echo-fn", "tests.demo.handlers:echo"),
        ],
        daemon_address=f"127.0.0.1:{server.port}",
        standby=0,
        task_root=str(Path(__file__).resolve().parents[2]),
        logs=shipper,
    )
    svc.start()
    yield svc
    svc.close()
    shipper.close()
    assert shipper.dropped == 0


def _lines(server: ServerProcess, trace_id: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/api/traces/{trace_id}/logs", timeout=30) as r:
        answer: dict[str, Any] = json.loads(r.read())
    return answer


def _when(answer: dict[str, Any], ready: Any) -> dict[str, Any] | None:
    return answer if ready(answer) else None


def _reported(answer: dict[str, Any]) -> bool:
    return any(line["type"] == "REPORT" for line in answer["lines"])


def _complete(answer: dict[str, Any]) -> bool:
    """Both functions' REPORT lines, and every line tagged with its function."""
    lines = answer["lines"]
    reports = [line for line in lines if line["type"] == "REPORT"]
    return len(reports) == 2 and all(line["service"] for line in lines)


def test_lambda_calling_lambda_writes_both_functions_lines_into_the_trace(
    server: ServerProcess, service: LambdaService
) -> None:
    trace_id = new_trace_id()
    header = f"Root={trace_id};Parent={new_entity_id()};Sampled=1"
    result = service.invoke("chain-fn", {"next": "echo-fn"}, header)
    assert result.status == 200 and not result.function_error, result.payload
    answer = wait_for(lambda: _when(_lines(server, trace_id), _complete), 60)
    lines = answer["lines"]
    by_group: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_group.setdefault(line["logGroup"], []).append(line)
    assert set(by_group) == {"/aws/lambda/chain-fn", "/aws/lambda/echo-fn"}
    for group, mine in by_group.items():
        name = group.rsplit("/", 1)[1]
        assert {line["service"] for line in mine} == {name}
        # the handler's lines are the function's; REPORT names Lambda's own segment
        assert {line["origin"] for line in mine if line["type"] != "REPORT"} == {
            "AWS::Lambda::Function"
        }
        assert mine[-1]["origin"] == "AWS::Lambda"
        rid = mine[0]["requestId"]
        assert mine[0]["message"] == f"START RequestId: {rid} Version: $LATEST\n"
        assert mine[-2]["message"] == f"END RequestId: {rid}\n"
        report = mine[-1]["message"]
        assert report.startswith(f"REPORT RequestId: {rid}\tDuration: ")
        assert "\tInit Duration: " in report  # both were cold
        assert re.search(
            rf"\nXRAY TraceId: {trace_id}\tSegmentId: [0-9a-f]{{16}}\tSampled: true\t\n$", report
        )
        assert re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", mine[0]["logStream"])
    chain = by_group["/aws/lambda/chain-fn"]
    logged = TEXT_LINE.fullmatch(chain[1]["message"])
    assert logged is not None and logged.groups() == (chain[0]["requestId"], "calling echo-fn")
    printed = [line for line in chain if line["message"] == "a printed line\n"]
    assert len(printed) == 1 and printed[0]["service"] == "chain-fn"  # found between START/END
    # the callee ran inside the caller's invocation: its lines sit between the caller's
    order = [(line["logGroup"], line["type"]) for line in lines]
    assert order.index(("/aws/lambda/chain-fn", "START")) < order.index(
        ("/aws/lambda/echo-fn", "START")
    )
    assert order.index(("/aws/lambda/echo-fn", "REPORT")) < order.index(
        ("/aws/lambda/chain-fn", "END")
    )
    # a warm invocation of another trace: no Init Duration, and none of its lines here
    second = new_trace_id()
    service.invoke("echo-fn", {}, f"Root={second};Parent={new_entity_id()};Sampled=1")
    again = wait_for(lambda: _when(_lines(server, second), _reported), 60)
    assert (
        "Init Duration" not in next(x for x in again["lines"] if x["type"] == "REPORT")["message"]
    )
    assert len(_lines(server, trace_id)["lines"]) == len(lines)
