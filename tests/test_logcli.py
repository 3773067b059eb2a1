"""``fluoroscope logs query / tail / trace`` against a real server, run as a user would.

One server per module holds log lines put through boto3's ``logs`` client: a Lambda
function's invocation of trace A (START, an application line that carries only the
request id, REPORT naming the trace), an API's JSON access lines of traces A and B, a
W3C-form line of trace A, and plain lines mentioning timeouts; trace A's segment is
stored through the X-Ray API so ``logs trace`` can take its time span from there.
Commands run as subprocesses with ``COLUMNS=200``; ``tail`` also runs in-process so new
events can be put while it follows.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import boto3
import pytest
from rich.console import Console

from fluoroscope.logs_terminal import show_tail
from fluoroscope.model.ids import new_entity_id, new_trace_id
from tests.support import ServerProcess, wait_for

pytestmark = pytest.mark.slow

LAMBDA = "/aws/lambda/checkout"
API = "api-access"
APP = "orders-app"


def logs_client(server: ServerProcess) -> Any:
    return boto3.client(
        "logs",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    env.pop("FLUOROSCOPE_SERVER", None)
    return subprocess.run(
        [sys.executable, "-m", "fluoroscope", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**env, "COLUMNS": "200"},
    )


def _put(client: Any, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    client.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": ts, "message": message} for ts, message in events],
    )


@pytest.fixture(scope="module")
def data(server: ServerProcess) -> dict[str, Any]:
    client = logs_client(server)
    now = time.time()
    ms = int(now * 1000) - 60_000
    trace_a, trace_b = new_trace_id(now - 60), new_trace_id(now - 50)
    segment_a, request = new_entity_id(), "ea643eb8-1547-41f5-8c51-4ff6abe3e0d1"
    for group, stream in ((LAMBDA, "2026/12/03/[$LATEST]0123456789abcdef0123456789abcdef"),
                          (API, "stage"), (APP, "web-1")):  # fmt: skip
        client.create_log_group(logGroupName=group)
        client.create_log_stream(logGroupName=group, logStreamName=stream)
    lambda_stream = "2026/12/03/[$LATEST]0123456789abcdef0123456789abcdef"
    _put(client, LAMBDA, lambda_stream, [
        (ms + 100, f"START RequestId: {request} Version: $LATEST\n"),
        (ms + 150, f"[INFO]\t2026-12-03T18:29:55.453Z\t{request}\tcharging the card\n"),
        (ms + 300, f"END RequestId: {request}\n"),
        (ms + 301, f"REPORT RequestId: {request}\tDuration: 200.39 ms\tBilled Duration: 201 ms\t"
                   f"Memory Size: 128 MB\tMax Memory Used: 57 MB\t\nXRAY TraceId: {trace_a}\t"
                   f"SegmentId: {segment_a}\tSampled: true\t\n"),
    ])  # fmt: skip
    access = '{{"requestId":"r-{n}","httpMethod":"POST","status":{status},"xrayTraceId":"{t}"}}'
    _put(client, API, "stage", [
        (ms + 50, access.format(n=1, status=200, t=trace_a)),
        (ms + 400, access.format(n=2, status=504, t=trace_b)),
    ])  # fmt: skip
    w3c = trace_a[2:].replace("-", "")
    _put(client, APP, "web-1", [
        (ms + 200, f"2026-12-03 18:29:55,453 WARNING orders [trace_id={w3c}] upstream timeout"),
        (ms + 500, "2026-12-03 18:29:56,000 ERROR orders timeout talking to payments"),
        (ms + 600, "2026-12-03 18:29:57,000 INFO orders all good"),
    ])  # fmt: skip
    segment = {
        "name": "checkout", "id": segment_a, "trace_id": trace_a,
        "start_time": now - 60, "end_time": now - 59.5,
    }  # fmt: skip
    server.xray().put_trace_segments(TraceSegmentDocuments=[json.dumps(segment)])

    def stored() -> bool:
        return all(
            client.filter_log_events(logGroupName=group)["events"] for group in (LAMBDA, API, APP)
        )

    wait_for(stored, timeout=30)
    return {"a": trace_a, "b": trace_b, "w3c": w3c, "ms": ms, "request": request}


# -- query ----------------------------------------------------------------------------


def test_query_prints_a_table_of_the_fields(server: ServerProcess, data: dict[str, Any]) -> None:
    result = run(
        "logs", "query", "fields @timestamp, @logStream, @message | filter @message like /timeout/"
        " | sort @timestamp asc", "--group", APP, "--server", server.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["@timestamp", "@logStream", "@message"]
    assert "upstream timeout" in lines[1] and "timeout talking to payments" in lines[2]
    assert len(lines) == 3
    assert "2 rows in the last 1h over 1 log group" in result.stderr


def test_query_json_and_every_group_by_default(server: ServerProcess, data: dict[str, Any]) -> None:
    result = run(
        "logs", "query", "stats count(*) as n by @log | sort n desc", "--json",
        "--server", server.url,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    counts = {row["@log"].rpartition(":")[2]: int(row["n"]) for row in rows}
    assert {LAMBDA: 4, API: 2, APP: 3}.items() <= counts.items()


def test_a_malformed_query_is_pointed_at(server: ServerProcess, data: dict[str, Any]) -> None:
    query = "fields @message | filter ("
    result = run("logs", "query", query, "--server", server.url)
    assert result.returncode == 2
    assert result.stderr.startswith("error: MalformedQueryException")
    lines = result.stderr.splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.strip() == query]  # shown once
    indent = lines[at].index(query)
    assert lines[at + 1].index("^") == indent + query.index("(") + 1  # where a value is missing


def test_query_errors_are_told_plainly(server: ServerProcess, data: dict[str, Any]) -> None:
    missing = run("logs", "query", "fields @message", "--group", "nope", "--server", server.url)
    assert missing.returncode == 2 and "ResourceNotFoundException" in missing.stderr
    since = run("logs", "query", "fields @message", "--since", "soon", "--server", server.url)
    assert since.returncode == 2 and "--since" in since.stderr
    closed = run("logs", "query", "fields @message", "--server", "http://127.0.0.1:9")
    assert closed.returncode == 2 and "cannot reach the Fluoroscope server" in closed.stderr


# -- trace ----------------------------------------------------------------------------


def test_trace_prints_one_traces_lines_from_every_group_in_time_order(
    server: ServerProcess, data: dict[str, Any]
) -> None:
    result = run("logs", "trace", data["a"], "--server", server.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["time", "group", "stream", "message"]
    body = "\n".join(lines[1:])
    expected = ['"requestId":"r-1"', "START RequestId", "charging the card",
                "upstream timeout", "END RequestId", "REPORT RequestId"]  # fmt: skip
    positions = [body.find(text) for text in expected]
    assert -1 not in positions, f"missing lines of {expected} in:\n{result.stdout}"
    assert positions == sorted(positions)
    assert "r-2" not in body and "all good" not in body
    assert "SegmentId" in body and "Sampled: true" in body  # piped: nothing cut
    assert f"6 lines of trace {data['a']} in 3 log groups" in result.stderr


def test_trace_json_and_the_w3c_form(server: ServerProcess, data: dict[str, Any]) -> None:
    result = run("logs", "trace", data["w3c"], "--json", "--server", server.url)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["@log"] for row in rows] == [API, LAMBDA, LAMBDA, APP, LAMBDA, LAMBDA]
    stamps = [row["@timestamp"] for row in rows]
    assert stamps == sorted(stamps)
    other = run("logs", "trace", data["b"], "--json", "--group", API, "--server", server.url)
    assert [json.loads(line)["@message"] for line in other.stdout.splitlines()] == [
        '{"requestId":"r-2","httpMethod":"POST","status":504,"xrayTraceId":"' + data["b"] + '"}'
    ]
    unknown = run("logs", "trace", new_trace_id(), "--server", server.url)
    assert unknown.returncode == 0 and "No log lines of trace" in unknown.stderr
    bad = run("logs", "trace", "1-nothex", "--server", server.url)
    assert bad.returncode == 2 and "is not a trace id" in bad.stderr


# -- tail -----------------------------------------------------------------------------


def test_tail_prints_recent_events_then_new_ones_once(
    server: ServerProcess, data: dict[str, Any]
) -> None:
    client = logs_client(server)
    client.create_log_group(logGroupName="tailed")
    client.create_log_stream(logGroupName="tailed", logStreamName="s1")
    now = int(time.time() * 1000)
    _put(client, "tailed", "s1", [(now - 5000, "before the tail"), (now - 4000, "second")])
    buffer = io.StringIO()
    out = Console(file=buffer, width=200)
    err = Console(file=io.StringIO(), width=200)
    stop = threading.Event()
    polls: list[float] = []
    codes: list[int] = []
    thread = threading.Thread(
        target=lambda: codes.append(
            show_tail(
                out, err, server.url, "tailed", since="1m", interval=0.1, stop=stop,
                on_poll=lambda: polls.append(time.monotonic()),
            )
        )
    )  # fmt: skip
    thread.start()
    try:
        wait_for(lambda: "second" in buffer.getvalue(), timeout=30)
        _put(client, "tailed", "s1", [(now - 4000, "same millisecond"), (now + 10, "new one")])
        wait_for(lambda: "new one" in buffer.getvalue(), timeout=30)
        seen = len(polls)
        wait_for(lambda: len(polls) >= seen + 3, timeout=30)  # later polls print nothing again
    finally:
        stop.set()
        thread.join(30)
    assert codes == [0]
    lines = buffer.getvalue().splitlines()
    assert [line.split(" s1 ", 1)[1] for line in lines] == [
        "before the tail",
        "second",
        "same millisecond",
        "new one",
    ]


def test_tail_stops_cleanly_on_ctrl_c_and_prints_json(
    server: ServerProcess, data: dict[str, Any]
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FLUOROSCOPE_SERVER"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "logs", "tail", APP, "--json", "--since", "1h",
         "--interval", "0.2", "--server", server.url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    first = [json.loads(proc.stdout.readline()) for _ in range(3)]
    proc.send_signal(signal.SIGINT)
    rest, errors = proc.communicate(timeout=30)
    assert proc.returncode == 0, errors
    assert [event["message"].split()[-1] for event in first] == ["timeout", "payments", "good"]
    assert {event["logStreamName"] for event in first} == {"web-1"}
    assert rest == ""
    missing = run("logs", "tail", "nope", "--server", server.url)
    assert missing.returncode == 2 and "ResourceNotFoundException" in missing.stderr


def test_tail_with_a_filter_pattern_prints_only_matching_events(
    server: ServerProcess, data: dict[str, Any]
) -> None:
    buffer = io.StringIO()
    stop = threading.Event()
    code = show_tail(
        Console(file=buffer, width=200), Console(file=io.StringIO()), server.url, APP,
        since="1h", pattern="timeout -upstream", stop=stop, on_poll=stop.set,
    )  # fmt: skip
    assert code == 0
    assert [line.split(" web-1 ", 1)[1] for line in buffer.getvalue().splitlines()] == [
        "2026-12-03 18:29:56,000 ERROR orders timeout talking to payments"
    ]
