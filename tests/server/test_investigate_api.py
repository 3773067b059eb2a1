"""The investigation API over real traces sent over UDP to a real server: one trace's
critical path and self times, two traces compared, and bad requests refused."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from fluoroscope.model.ids import new_entity_id, new_trace_id
from tests.support import ServerProcess, get_documents, wait_for


def _post(server: ServerProcess, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{server.url}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _send_request(
    server: ServerProcess, db_seconds: float, name: str = "api"
) -> tuple[str, dict[str, str]]:
    """api: auth (0.05 s), then DynamoDB GetItem (db_seconds) beside a concurrent cache
    read that is not on the path, then rendering (0.1 s)."""
    start = time.time() - 5
    trace_id = new_trace_id(start)
    ids = {k: new_entity_id() for k in ("root", "auth", "db", "cache", "render")}
    db_end = start + 0.06 + db_seconds
    subs = [
        {"id": ids["auth"], "name": "auth", "start_time": start + 0.001, "end_time": start + 0.05},
        {"id": ids["db"], "name": "DynamoDB", "namespace": "aws",
         "aws": {"operation": "GetItem"}, "start_time": start + 0.06, "end_time": db_end},
        {"id": ids["cache"], "name": "cache", "start_time": start + 0.06,
         "end_time": start + 0.07},
        {"id": ids["render"], "name": "render", "start_time": db_end, "end_time": db_end + 0.1},
    ]  # fmt: skip
    server.send_documents(
        {"id": ids["root"], "trace_id": trace_id, "name": name, "start_time": start,
         "end_time": db_end + 0.11, "subsegments": subs}
    )  # fmt: skip
    client = server.xray()
    wait_for(lambda: get_documents(client, trace_id), timeout=30)
    return trace_id, ids


def test_critical_path_of_a_trace(server: ServerProcess) -> None:
    trace_id, ids = _send_request(server, 0.3)
    answer = _post(server, "/api/trace/critical-path", {"TraceId": trace_id})
    on_path = {e["Id"]: e for e in answer["Entries"]}
    assert set(on_path) == {ids["root"], ids["auth"], ids["db"], ids["render"]}
    assert on_path[ids["db"]]["Operation"] == "GetItem"
    assert on_path[ids["db"]]["Service"] == "api"
    assert on_path[ids["db"]]["Critical"] == pytest.approx(0.3, abs=1e-6)
    assert sum(e["Critical"] for e in answer["Entries"]) == pytest.approx(answer["Duration"])
    assert answer["SelfTimes"][ids["cache"]] == pytest.approx(0.01, abs=1e-6)
    # the root's self time: its duration less the union of its children
    assert answer["SelfTimes"][ids["root"]] == pytest.approx(0.021, abs=1e-6)


def test_two_traces_compared(server: ServerProcess) -> None:
    typical, _ = _send_request(server, 0.05)
    slow, _ = _send_request(server, 1.5)
    answer = _post(server, "/api/trace/compare", {"TraceIds": [typical, slow]})
    assert answer["Counts"] == {"Matched": 5, "OnlyA": 0, "OnlyB": 0}
    first = answer["Matched"][0]
    assert first["Name"] in ("api", "DynamoDB")
    db = next(r for r in answer["Matched"] if r["Name"] == "DynamoDB")
    assert db["Delta"] == pytest.approx(1.45, abs=1e-6)
    assert answer["CriticalPath"][0]["Name"] == "DynamoDB"
    assert answer["CriticalPath"][0]["Delta"] == pytest.approx(1.45, abs=1e-6)
    assert not answer["Unrelated"] and "Message" not in answer


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        ("/api/trace/critical-path", {"TraceId": "nope"}, "not a trace id"),
        ("/api/trace/critical-path", {"TraceId": new_trace_id(time.time())}, "no trace"),
        (
            "/api/trace/compare",
            {"TraceIds": ["1-5f84c7a1-4c6d9e3b2a1f0e9d8c7b6a54"]},
            "exactly two",
        ),
    ],
)
def test_bad_requests_are_refused(server: ServerProcess, path: str, body: Any, says: str) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        _post(server, path, body)
    with caught.value as error:
        assert error.code == 400
        assert says in json.loads(error.read())["message"]


def test_critical_path_across_a_filtered_set(server: ServerProcess) -> None:
    service = f"api-{new_entity_id()}"
    for db in (0.02, 0.03, 0.9):
        _send_request(server, db, service)
    now = time.time()
    body = {"StartTime": now - 120, "EndTime": now, "FilterExpression": f'service("{service}")'}
    answer = _post(server, "/api/critical-path", body)
    assert answer["TracesMatched"] == answer["TracesAnalysed"] == 3
    names = [e["Name"] for e in answer["Entries"]]
    assert {service, "auth", "DynamoDB", "render"} <= set(names) and "cache" not in names
    db = next(e for e in answer["Entries"] if e["Name"] == "DynamoDB")
    assert db["Operation"] == "GetItem" and db["AtP99"] == pytest.approx(0.9, abs=1e-6)
    slowest = _post(server, "/api/critical-path", {**body, "SlowestPercent": 1})
    assert slowest["TracesAnalysed"] == 1
    with pytest.raises(urllib.error.HTTPError) as caught:
        _post(server, "/api/critical-path", {**body, "FilterExpression": "service(("})
    with caught.value as error:
        assert error.code == 400


def test_the_cli_ranks_the_critical_path(server: ServerProcess) -> None:
    service = f"cli-{new_entity_id()}"
    for db in (0.02, 0.7):
        _send_request(server, db, service)
    result = subprocess.run(
        [sys.executable, "-m", "fluoroscope", "critical-path", f'service("{service}")',
         "--since", "10m", "--server", server.url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Critical path of 2 traces")
    rows = [line for line in lines[1:] if "DynamoDB" in line]
    assert rows and "GetItem" in rows[0] and "700 ms" in rows[0]
    bad = subprocess.run(
        [sys.executable, "-m", "fluoroscope", "critical-path", "service((", "--server", server.url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "error" in bad.stderr
