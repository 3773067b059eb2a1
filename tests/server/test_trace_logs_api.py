"""``GET /api/traces/{id}/logs`` and ``fluoroscope trace --logs`` on a real server: a
Lambda trace sent with boto3's xray client, its lines with boto3's logs client."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from tests.server.logs_helpers import logs_client
from tests.support import ServerProcess, get_documents, segment, wait_for


def _get(server: ServerProcess, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _lambda_trace(server: ServerProcess) -> tuple[str, str, str]:
    """A trace whose Lambda invocation wrote START, an app line and REPORT (no XRAY line:
    the lines are found through the segment's request id alone)."""
    xray = server.xray()
    logs = logs_client(server, retries=10)
    now = time.time()
    service = segment(name="checkout", origin="AWS::Lambda", aws={"request_id": str(uuid.uuid4())})
    trace_id = service["trace_id"]
    service["resource_arn"] = "arn:aws:lambda:us-east-1:123456789012:function:checkout"
    function = segment(
        trace_id, name="checkout", origin="AWS::Lambda::Function", parent_id=service["id"]
    )
    xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(service), json.dumps(function)])
    rid = service["aws"]["request_id"]
    group, stream = "/aws/lambda/checkout", f"2026/12/03/[$LATEST]{uuid.uuid4().hex}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    ms = int(now * 1000)
    messages = [
        f"START RequestId: {rid} Version: $LATEST\n",
        f"[ERROR]\t2026-12-03T18:29:55.453Z\t{rid}\t<b>card declined</b>\n",
        f"REPORT RequestId: {rid}\tDuration: 20.39 ms\tBilled Duration: 21 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 57 MB\t\n",
        f"[INFO]\t2026-12-03T18:29:55.453Z\t{uuid.uuid4()}\tanother invocation\n",
    ]
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": ms + i, "message": m} for i, m in enumerate(messages)],
    )
    wait_for(
        lambda: get_documents(xray, trace_id) and len(get_documents(xray, trace_id) or []) == 2
    )
    return trace_id, function["id"], rid


def test_the_api_answers_the_trace_lines_tagged_with_their_segment(server: ServerProcess) -> None:
    trace_id, function_id, rid = _lambda_trace(server)
    status, answer = _get(server, f"/api/traces/{trace_id}/logs")
    assert status == 200
    lines = answer["lines"]
    assert [line["message"].split("\t")[0].split(" ")[0] for line in lines] == [
        "START", "[ERROR]", "REPORT",
    ]  # fmt: skip
    assert {line["entityId"] for line in lines} == {function_id}
    assert {line["service"] for line in lines} == {"checkout"}
    assert lines[1]["level"] == "ERROR" and lines[1]["requestId"] == rid
    assert "/aws/lambda/checkout" in answer["logGroups"]
    w3c = trace_id[2:10] + trace_id[11:]
    assert _get(server, f"/api/traces/{w3c}/logs")[1]["lines"] == lines
    assert len(_get(server, f"/api/traces/{trace_id}/logs?limit=1")[1]["lines"]) == 1


def test_bad_ids_and_limits_are_refused(server: ServerProcess) -> None:
    status, answer = _get(server, "/api/traces/not-a-trace/logs")
    assert (status, answer["__type"]) == (400, "InvalidRequestException")
    assert _get(server, "/api/traces/1-00000000-000000000000000000000000/logs?limit=0")[0] == 400
    status, answer = _get(server, "/api/traces/1-00000000-000000000000000000000000/logs")
    assert (status, answer["lines"]) == (200, [])


def test_trace_logs_prints_the_waterfall_then_the_lines(server: ServerProcess) -> None:
    trace_id, _, _ = _lambda_trace(server)
    result = subprocess.run(
        [sys.executable, "-m", "fluoroscope", "trace", trace_id, "--logs", "--server", server.url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("checkout") < out.index("START RequestId")
    assert "<b>card declined</b>" in out  # printed as text
    assert "another invocation" not in out
    assert "3 lines of trace" in result.stderr
