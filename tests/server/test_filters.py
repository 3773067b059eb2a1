"""FilterExpression in GetTraceSummaries, through boto3: which traces each expression finds.

A small fleet of traces with known properties is stored once; each corpus row names
the expected traces. Every query also pins the run's own annotation so other tests'
traces in the same server never interfere.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import botocore.exceptions
import pytest

from fluoroscope.model.ids import new_entity_id, new_trace_id
from tests.support import ServerProcess, wait_for

RUN = uuid.uuid4().hex[:8]


def _trace(
    key: str, now: float, *, status: int, rt: float, user: str = "", **extra: Any
) -> list[dict[str, Any]]:
    trace_id = new_trace_id(now)
    root = new_entity_id()
    segment: dict[str, Any] = {
        "name": extra.pop("service", "api"), "id": root, "trace_id": trace_id, "start_time": now,
        "end_time": now + rt, "annotations": {"run": RUN, "key": key, **extra.pop("annotations", {})},
        "http": {"request": {"method": extra.pop("method", "GET"), "url": f"http://shop.example/{key}"},
                 "response": {"status": status}},
    }  # fmt: skip
    if user:
        segment["user"] = user
    if "account" in extra:
        segment["aws"] = {"account_id": extra.pop("account")}
    if extra.pop("nested_fault", False):  # api -> handler -> deserialize, which raised
        segment["subsegments"] = [
            {"name": "handler", "id": new_entity_id(), "start_time": now, "end_time": now + 0.9 * rt,
             "fault": True, "subsegments": [
                 {"name": "deserialize", "id": new_entity_id(), "start_time": now,
                  "end_time": now + 0.8 * rt, "fault": True, "cause": {"exceptions": [
                      {"id": new_entity_id(), "type": "ValueError", "message": "bad json"},
                      {"id": new_entity_id(), "type": "KeyError", "message": "k"}]}}]}
        ]  # fmt: skip
    docs = [segment]
    for callee in extra.pop("calls", []):
        name, callee_status, callee_rt = callee
        call = new_entity_id()
        segment.setdefault("subsegments", []).append(
            {"name": name, "id": call, "namespace": "remote", "start_time": now + 0.001,
             "end_time": now + 0.001 + callee_rt, "http": {"response": {"status": callee_status}}}
        )  # fmt: skip
        docs.append(
            {"name": name, "id": new_entity_id(), "trace_id": trace_id, "parent_id": call,
             "start_time": now + 0.002, "end_time": now + callee_rt, "origin": "AWS::EC2::Instance",
             "http": {"response": {"status": callee_status}},
             **({"cause": {"exceptions": [{"id": new_entity_id(), "type": "TimeoutError",
                                           "message": "upstream timed out"}]}} if callee_status >= 500 else {})}
        )  # fmt: skip
    if extra.pop("partial", False):
        docs.append({"name": "worker", "id": new_entity_id(), "trace_id": trace_id, "parent_id": root,
                     "start_time": now + 0.01, "in_progress": True})  # fmt: skip
    return docs


FLEET: dict[str, dict[str, Any]] = {
    "fast": {
        "status": 200,
        "rt": 0.05,
        "user": "alice",
        "annotations": {"tier": "gold", "items": 3},
    },
    "slow": {
        "status": 200,
        "rt": 6.0,
        "user": "bob",
        "annotations": {"tier": "silver", "items": 12},
    },
    "notfound": {"status": 404, "rt": 0.02, "method": "POST"},
    "throttled": {"status": 429, "rt": 0.01, "annotations": {"vip": True}},
    "broken": {
        "status": 502,
        "rt": 2.0,
        "calls": [("billing", 503, 1.9)],
        "account": "999900001111",
    },
    "deep_slow": {"status": 200, "rt": 3.0, "calls": [("billing", 200, 2.8), ("search", 200, 0.1)]},
    "pending": {"status": 200, "rt": 0.3, "partial": True},
    "other_svc": {"status": 200, "rt": 0.1, "service": "admin"},
    "deserial": {"status": 500, "rt": 1.0, "account": "111122223333", "nested_fault": True},
}
FAULTS = {"broken", "deserial"}
# deserial's FaultRootCauses exactly as GetTraceSummaries renders them
DESERIAL_FAULT = (
    '[{"Services": [{"Name": "api", "Names": ["api"], "EntityPath": ['
    '{"Name": "api", "Exceptions": [], "Remote": false}, '
    '{"Name": "handler", "Exceptions": [], "Remote": false}, '
    '{"Name": "deserialize", "Exceptions": [{"Name": "ValueError", "Message": "bad json"}, '
    '{"Name": "KeyError", "Message": "k"}], "Remote": false}], "Inferred": false, '
    '"AccountId": "111122223333"}], "ClientImpacting": true}]'
)

CORPUS: list[tuple[str, set[str]]] = [
    ("fault", FAULTS),
    ("!fault", set(FLEET) - FAULTS),
    ("fault = false", set(FLEET) - FAULTS),
    ("error", {"notfound", "throttled"}),
    ("throttle", {"throttled"}),
    ("ok", {"fast", "slow", "deep_slow", "pending", "other_svc"}),
    ("ok !partial responsetime < 1", {"fast", "other_svc"}),
    ("partial", {"pending"}),
    ("responsetime > 5", {"slow"}),
    ("duration >= 2 AND duration <= 3", {"broken", "deep_slow"}),
    ("http.status = 404 OR http.status = 429", {"notfound", "throttled"}),
    ("http.status != 200", {"notfound", "throttled", *FAULTS}),
    ('http.method = "POST"', {"notfound"}),
    ('http.url ENDSWITH "/slow"', {"slow"}),
    ('http.url BEGINSWITH "http://shop.example/deep"', {"deep_slow"}),
    ('http.url CONTAINS "ottl"', {"throttled"}),
    ('user = "alice"', {"fast"}),
    ('user CONTAINS ""', {"fast", "slow"}),
    ('annotation.tier = "gold"', {"fast"}),
    ("annotation.items > 5", {"slow"}),
    ("annotation.items", {"fast", "slow"}),
    ("!annotation.items", set(FLEET) - {"fast", "slow"}),
    ("annotation[vip] = true", {"throttled"}),
    ('service("billing")', {"broken", "deep_slow"}),
    ('service("billing") { fault }', {"broken"}),
    ('service("billing") { responsetime > 2.5 }', {"deep_slow"}),
    ('service("api") { root = true and fault = true }', FAULTS),
    ('service(id(name: "billing", type: "AWS::EC2::Instance")) { ok }', {"deep_slow"}),
    ('!service("billing") AND responsetime > 1', {"slow"}),
    ("service() { fault }", FAULTS),
    ('service("admin")', {"other_svc"}),
    ('edge("api", "billing")', {"broken", "deep_slow"}),
    ('edge("api", "billing") { fault }', {"broken"}),
    ('edge("api", "billing") { responsetime > 2.5 }', {"deep_slow"}),
    ('edge("api", id(name: "search", type: "AWS::EC2::Instance"))', {"deep_slow"}),
    ('edge("api", "search") AND !edge("api", "billing") { fault }', {"deep_slow"}),
    ('edge("billing", "api")', set()),
    ('rootcause.fault.service { name = "billing" }', {"broken"}),
    (
        'rootcause.fault.exception { name = "TimeoutError" AND message CONTAINS "timed out" }',
        {"broken"},
    ),
    ('rootcause.fault.entity { name = "billing" }', {"broken"}),
    ('rootcause.error.service { name = "api" }', {"notfound", "throttled"}),
    (
        'rootcause.responsetime.service { name = "billing" and coverage > 0.8 }',
        {"broken", "deep_slow"},
    ),
    ('rootcause.responsetime.service { name = "billing" and coverage > 0.94 }', {"broken"}),
    ('rootcause.responsetime.service { name = "admin" }', {"other_svc"}),
    (
        'rootcause.responsetime.service { name = "api" }',
        {"fast", "slow", "notfound", "throttled", "deserial"},
    ),
    ("(fault OR error) AND NOT http.status = 429", {*FAULTS, "notfound"}),
    ("RESPONSETIME > 5 or THROTTLE", {"slow", "throttled"}),
    # first / last / index: positions in a cause's Services, EntityPath and Exceptions
    ('rootcause.fault.entity { last and name = "deserialize" }', {"deserial"}),
    ('rootcause.fault.entity { first and name = "api" }', {"deserial"}),
    ('rootcause.fault.entity { last and name = "api" }', set()),
    ('rootcause.fault.entity { index = 1 and name = "handler" }', {"deserial"}),
    ("rootcause.fault.entity { index >= 2 and !last }", set()),
    ("rootcause.fault.entity { first and last }", {"broken"}),
    ('rootcause.fault.exception { last and name = "KeyError" }', {"deserial"}),
    ('rootcause.fault.exception { first and message = "bad json" }', {"deserial"}),
    ('rootcause.fault.exception { index = 1 and name = "ValueError" }', set()),
    ('rootcause.fault.exception { first AND name = "TimeoutError" }', {"broken"}),
    (
        'rootcause.responsetime.entity { last and coverage > 0.75 and name = "deserialize" }',
        {"deserial"},
    ),
    (
        'rootcause.responsetime.service { first and last and index = 0 and name = "billing" }',
        {"broken", "deep_slow"},
    ),
    ("rootcause.responsetime.service { index > 0 }", set()),
    # rootcause.json: pasted (and trimmed) root causes
    (f"rootcause.json = #{DESERIAL_FAULT}", {"deserial"}),
    (
        'rootcause.json = #[{"Services": [{"Name": "billing", "EntityPath": [{"Name": "billing"}]}]}]',
        {"broken", "deep_slow"},
    ),
    (
        'rootcause.json = #[{"Services": [{"Name": "billing", "EntityPath": [{"Name": "billing", '
        '"Exceptions": [{"Name": "TimeoutError"}]}]}]}]',
        {"broken"},
    ),
    (
        'rootcause.json = #[{"Services": [{"Name": "billing"}], "ClientImpacting": true}]',
        {"broken"},
    ),
    ('rootcause.json = #[{"Services": [{"Name": "api"}], "ClientImpacting": false}]', set()),
    (
        'rootcause.json = #[{"Services": [{"Name": "api", "AccountId": "111122223333", '
        '"EntityPath": [{"Name": "api"}, {"Name": "handler"}, {"Name": "deserialize", '
        '"Exceptions": [{"Name": "ValueError", "Message": "bad json"}, {"Name": "KeyError"}]}]}]}]',
        {"deserial"},
    ),
    (
        'rootcause.json = #[{"Services": [{"Name": "api", "EntityPath": [{"Name": "api"}, '
        '{"Name": "handler"}]}]}]',
        set(),
    ),
    (
        'rootcause.json = #[{"Services": [{"Name": "api", "EntityPath": [{}, {}, {"Exceptions": '
        '[{"Name": "ValueError"}]}]}]}]',
        set(),
    ),
    (
        'rootcause.json = #[{"Services": [{"Name": "billing", "Type": "AWS::EC2::Instance"}]}, '
        '{"Services": [{"Name": "billing", "Inferred": false, "EntityPath": [{"Remote": false, '
        '"Exceptions": [{"Message": "upstream timed out"}]}]}]}]',
        {"broken"},
    ),
    ('rootcause.json = #[{"Services": [{"Name": "api"}, {"Name": "billing"}]}]', set()),
    # id(account.id: ...)
    ('id(account.id: "111122223333")', {"deserial"}),
    ('service(id(name: "api", account.id: "111122223333")) { fault }', {"deserial"}),
    ('service(id(account.id: "999900001111")) { fault }', {"broken"}),
    ('service(id(name: "billing", account.id: "999900001111"))', set()),
    ('edge(id(name: "api", account.id: "999900001111"), "billing")', {"broken"}),
    ('edge(id(account.id: "111122223333"), "billing")', set()),
]


@pytest.fixture(scope="module")
def fleet(server: ServerProcess) -> float:
    client = server.xray()
    now = time.time()
    docs = [d for key, spec in FLEET.items() for d in _trace(key, now, **dict(spec))]
    response = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
    assert response["UnprocessedTraceSegments"] == []
    return now


def _found(server: ServerProcess, now: float, expression: str) -> set[str]:
    client = server.xray()
    found: set[str] = set()
    pages = client.get_paginator("get_trace_summaries").paginate(
        StartTime=now - 60,
        EndTime=now + 60,
        FilterExpression=f'annotation.run = "{RUN}" AND ({expression})',
    )
    for page in pages:
        for summary in page["TraceSummaries"]:
            found.add(summary["Annotations"]["key"][0]["AnnotationValue"]["StringValue"])
    return found


@pytest.mark.parametrize(("expression", "expected"), CORPUS, ids=[e for e, _ in CORPUS])
def test_filter_finds_exactly_the_expected_traces(
    server: ServerProcess, fleet: float, expression: str, expected: set[str]
) -> None:
    wait_for(lambda: _found(server, fleet, "annotation.key") == set(FLEET) or None)
    assert _found(server, fleet, expression) == expected


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ('responsetime > "slow"', "position 15"),
        ('service("api" { fault }', "position"),
        ("fault AND", "position"),
        ('rootcause.json = #[{"Services": [{"Nom": "api"}]}]', "unknown field 'Nom'"),
        ('rootcause.json = #[{"Services": [{"Inferred": "no"}]}]', "must be true or false"),
        ("rootcause.json = #[]", "lists no root cause"),
    ],
)
def test_bad_filters_are_invalid_requests_pointing_at_the_problem(
    server: ServerProcess, expression: str, fragment: str
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        server.xray().get_trace_summaries(
            StartTime=time.time() - 60, EndTime=time.time(), FilterExpression=expression
        )
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert fragment in err.value.response["Error"]["Message"]


def test_sampling_returns_a_stable_subset(server: ServerProcess, fleet: float) -> None:
    client = server.xray()
    base = {
        "StartTime": fleet - 60,
        "EndTime": fleet + 60,
        "FilterExpression": f'annotation.run = "{RUN}"',
    }
    wait_for(lambda: _found(server, fleet, "annotation.key") == set(FLEET) or None)
    everything = client.get_trace_summaries(
        **base, Sampling=True, SamplingStrategy={"Name": "FixedRate", "Value": 1.0}
    )
    assert len(everything["TraceSummaries"]) == len(FLEET)
    half = [
        {s["Id"] for s in client.get_trace_summaries(
            **base, Sampling=True, SamplingStrategy={"Name": "FixedRate", "Value": 0.5})["TraceSummaries"]}
        for _ in range(2)
    ]  # fmt: skip
    assert half[0] == half[1]  # the same traces each time: pages stay consistent
    assert half[0] <= {s["Id"] for s in everything["TraceSummaries"]}
    tiny = client.get_trace_summaries(
        **base, Sampling=True, SamplingStrategy={"Name": "FixedRate", "Value": 0.0001}
    )
    assert len(tiny["TraceSummaries"]) < len(FLEET)
    with pytest.raises(botocore.exceptions.ClientError):
        client.get_trace_summaries(
            **base, Sampling=True, SamplingStrategy={"Name": "FixedRate", "Value": 0}
        )
    assert len(
        client.get_trace_summaries(**base, TimeRangeType="Service")["TraceSummaries"]
    ) == len(FLEET)


def test_summaries_carry_root_causes(server: ServerProcess, fleet: float) -> None:
    client = server.xray()
    wait_for(lambda: _found(server, fleet, "annotation.key") == set(FLEET) or None)
    (broken,) = client.get_trace_summaries(
        StartTime=fleet - 60,
        EndTime=fleet + 60,
        FilterExpression=f'annotation.run = "{RUN}" AND annotation.key = "broken"',
    )["TraceSummaries"]
    (fault,) = broken["FaultRootCauses"]
    assert fault["ClientImpacting"] is True
    (service,) = fault["Services"]
    assert (service["Name"], service["Type"], service["Inferred"]) == (
        "billing",
        "AWS::EC2::Instance",
        False,
    )
    assert service["EntityPath"] == [
        {
            "Name": "billing",
            "Exceptions": [{"Name": "TimeoutError", "Message": "upstream timed out"}],
            "Remote": False,
        }
    ]
    assert broken["ErrorRootCauses"] == []
    (slowest,) = broken["ResponseTimeRootCauses"]
    assert slowest["Services"][0]["Name"] == "billing"
    assert 0.9 < slowest["Services"][0]["EntityPath"][-1]["Coverage"] <= 1.0


def test_rootcause_json_row_is_what_summaries_render(server: ServerProcess, fleet: float) -> None:
    """The corpus pastes deserial's FaultRootCauses verbatim: check it is the real output."""
    client = server.xray()
    wait_for(lambda: _found(server, fleet, "annotation.key") == set(FLEET) or None)
    (deserial,) = client.get_trace_summaries(
        StartTime=fleet - 60,
        EndTime=fleet + 60,
        FilterExpression=f'annotation.run = "{RUN}" AND annotation.key = "deserial"',
    )["TraceSummaries"]
    assert deserial["FaultRootCauses"] == json.loads(DESERIAL_FAULT)
    assert [s["AccountId"] for s in deserial["ServiceIds"]] == ["111122223333"]
