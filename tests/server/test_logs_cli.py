"""The AWS CLI (``awscli`` from PyPI, in a virtual environment of its own made by
``scripts/install-awscli``: its exact botocore pin must not replace ours) against a real
server: a put, a filter and a query, exactly as a user types them."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests import awscli
from tests.support import ServerProcess, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def aws() -> str:
    return awscli.install()


def _cli(aws: str, server: ServerProcess, *args: str, check: bool = True) -> Any:
    done = awscli.run(aws, server, "logs", *args)
    if check:
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None
    return done


def test_put_filter_and_query_with_the_aws_cli(
    aws: str, server: ServerProcess, tmp_path: Path
) -> None:
    group = f"/cli/{uuid.uuid4().hex[:10]}"
    _cli(aws, server, "create-log-group", "--log-group-name", group)
    _cli(aws, server, "create-log-stream", "--log-group-name", group, "--log-stream-name", "s")
    now = int(time.time() * 1000)
    events = [
        {"timestamp": now - 2000, "message": "GET /orders 200 12ms"},
        {"timestamp": now - 1000, "message": "POST /orders 500 timeout after 30s"},
        {"timestamp": now, "message": '{"level": "ERROR", "msg": "payment declined"}'},
    ]
    (tmp_path / "events.json").write_text(json.dumps(events))
    answer = _cli(
        aws, server, "put-log-events", "--log-group-name", group, "--log-stream-name", "s",
        "--log-events", f"file://{tmp_path / 'events.json'}",
    )  # fmt: skip
    assert "rejectedLogEventsInfo" not in answer
    found = _cli(aws, server, "filter-log-events", "--log-group-name", group)
    assert [e["message"] for e in found["events"]] == [e["message"] for e in events]
    assert {e["logStreamName"] for e in found["events"]} == {"s"}
    errors = _cli(
        aws, server, "filter-log-events", "--log-group-name", group,
        "--filter-pattern", '{ $.level = "ERROR" }',
    )  # fmt: skip
    assert [e["message"] for e in errors["events"]] == [events[2]["message"]]
    errors = _cli(
        aws, server, "filter-log-events", "--log-group-name", group,
        "--filter-pattern", "?timeout ?declined",
    )  # fmt: skip
    assert [e["message"] for e in errors["events"]] == [e["message"] for e in events[1:]]
    query_id = _cli(
        aws, server, "start-query", "--log-group-name", group,
        "--start-time", str(now // 1000 - 600), "--end-time", str(now // 1000 + 60),
        "--query-string", "filter @message like /timeout|declined/ | stats count(*) as n",
    )["queryId"]  # fmt: skip

    def complete() -> Any:
        got = _cli(aws, server, "get-query-results", "--query-id", query_id)
        return got if got["status"] == "Complete" else None

    results = wait_for(complete, timeout=60, interval=0.2)["results"]
    assert [{f["field"]: f["value"] for f in row if f["field"] == "n"} for row in results] == [
        {"n": "2"}
    ]
    refused = _cli(aws, server, "describe-log-streams", "--log-group-name", "/no/such", check=False)
    assert refused.returncode != 0 and "ResourceNotFoundException" in refused.stderr
