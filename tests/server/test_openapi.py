"""The OpenAPI description the server ships is the one the generator writes today, the
server serves it, and the read operations' answers over real traces conform to it
(schemathesis, in ``test_schemathesis.py``, rarely generates a window holding data)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

from jsonschema import Draft202012Validator

from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.server.app import OPERATIONS
from fluoroscope.server.openapi import OPENAPI_PATH
from tests.support import ServerProcess, wait_for

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_openapi.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_openapi", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_description_is_up_to_date() -> None:
    assert OPENAPI_PATH.read_text(encoding="utf-8") == _generator().render(), (
        "src/fluoroscope/server/openapi.json is stale: run scripts/generate_openapi.py"
    )


def test_the_vendored_model_matches_its_record() -> None:
    models = SCRIPT.parent / "models"
    record = (models / "README.md").read_text(encoding="utf-8")
    pinned = dict(re.findall(r"\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|", record))
    assert (
        set(pinned) == {p.name for p in models.glob("*.json")} == {"xray-2016-04-12.service-2.json"}
    )
    for name, digest in pinned.items():
        assert hashlib.sha256((models / name).read_bytes()).hexdigest() == digest
    assert (models / "botocore.LICENSE").exists() and (models / "botocore.NOTICE").exists()


def test_every_route_is_described_and_served(server: ServerProcess) -> None:
    with urllib.request.urlopen(f"{server.url}/openapi.json", timeout=10) as response:
        assert response.headers["content-type"] == "application/json"
        served = json.loads(response.read())
    assert served == json.loads(OPENAPI_PATH.read_bytes())
    described = {
        path: operation["operationId"]
        for path, methods in served["paths"].items()
        for operation in methods.values()
    }
    assert {p: described.get(p) for p in OPERATIONS} == OPERATIONS
    assert {"/api/status", "/metrics", "/openapi.json"} <= described.keys()


def _call(server: ServerProcess, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{server.url}{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
        return json.loads(response.read())


def _trace(now: float, status: int) -> list[dict[str, Any]]:
    trace_id = new_trace_id(now)
    api, ddb, call, billing = (new_entity_id() for _ in range(4))
    return [
        {
            "name": "api", "id": api, "trace_id": trace_id, "origin": "AWS::ECS::Container",
            "start_time": now, "end_time": now + 0.3, "user": "alice",
            "annotations": {"tier": "gold", "n": 3, "ok": True},
            "http": {"request": {"method": "GET", "url": "http://api/x", "client_ip": "10.0.0.1",
                                 "user_agent": "t"}, "response": {"status": status}},
            "aws": {"ec2": {"instance_id": "i-1", "availability_zone": "eu-west-1a"}},
            "subsegments": [
                {"name": "DynamoDB", "id": ddb, "namespace": "aws", "start_time": now + 0.01,
                 "end_time": now + 0.03, "aws": {"operation": "GetItem", "table_name": "users"}},
                {"name": "billing.internal", "id": call, "namespace": "remote",
                 "start_time": now + 0.05, "end_time": now + 0.25, "fault": status >= 500,
                 "cause": {"exceptions": [{"id": new_entity_id(), "type": "Boom",
                                           "message": "down"}]} if status >= 500 else None,
                 "http": {"request": {"url": "http://billing.internal/pay"},
                          "response": {"status": status}}},
            ],
        },
        {"name": "billing", "id": billing, "trace_id": trace_id, "parent_id": call,
         "start_time": now + 0.06, "end_time": now + 0.24, "http": {"response": {"status": status}}},
    ]  # fmt: skip


def test_answers_over_real_traces_conform(server: ServerProcess) -> None:
    document = json.loads(OPENAPI_PATH.read_bytes())

    def check(path: str, body: dict[str, Any]) -> Any:
        operation = document["paths"][path]["post"]
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        answer = _call(server, path, body)
        validator = Draft202012Validator({**schema, "components": document["components"]})
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(answer)]
        assert not errors, (path, errors[:5])
        return answer

    now = time.time()
    docs = [d for status in (200, 429, 503) for d in _trace(now, status)]
    for doc in docs:
        for sub in doc.get("subsegments", []):
            if sub.get("cause") is None:
                sub.pop("cause", None)
    put = check("/TraceSegments", {"TraceSegmentDocuments": [json.dumps(d) for d in docs]})
    assert put["UnprocessedTraceSegments"] == []
    window = {"StartTime": now - 60, "EndTime": now + 60}

    def three() -> list[dict[str, Any]] | None:
        found: list[dict[str, Any]] = check("/TraceSummaries", window)["TraceSummaries"]
        return found if len(found) == 3 else None

    summaries = wait_for(three, timeout=30)
    assert {s["HasFault"] for s in summaries} == {True, False}
    ids = [s["Id"] for s in summaries]
    traces = check("/Traces", {"TraceIds": ids})["Traces"]
    assert len(traces) == 3
    graph = check("/ServiceGraph", window)
    assert graph["Services"]
    check("/TraceGraph", {"TraceIds": ids})
    check("/TimeSeriesServiceStatistics", {**window, "EntitySelectorExpression": 'service("api")'})
    check("/TimeSeriesServiceStatistics", window)
    check("/CreateGroup", {"GroupName": "gold", "FilterExpression": 'annotation.tier = "gold"'})
    check("/Groups", {})
    check("/GetGroup", {"GroupName": "gold"})
    check("/GetSamplingRules", {})
    check(
        "/SamplingTargets",
        {"SamplingStatisticsDocuments": [{"RuleName": "Default", "ClientID": "c" * 24,
                                          "Timestamp": now, "RequestCount": 3,
                                          "SampledCount": 1}]},
    )  # fmt: skip
