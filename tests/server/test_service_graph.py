"""GetServiceGraph through boto3, from statistics aggregated at ingest."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import botocore.exceptions
import pytest

from fluoroscope.model.ids import new_entity_id, new_trace_id
from tests.support import ServerProcess, wait_for


def _trace(now: float, status: int) -> list[dict[str, Any]]:
    trace_id = new_trace_id(now)
    api, ddb, call, billing = (new_entity_id() for _ in range(4))
    return [
        {
            "name": "api", "id": api, "trace_id": trace_id, "origin": "AWS::ECS::Container",
            "start_time": now, "end_time": now + 0.3, "http": {"response": {"status": status}},
            "subsegments": [
                {"name": "DynamoDB", "id": ddb, "namespace": "aws", "start_time": now + 0.01,
                 "end_time": now + 0.03, "aws": {"operation": "GetItem", "table_name": "users"}},
                {"name": "billing.internal", "id": call, "namespace": "remote", "start_time": now + 0.05,
                 "end_time": now + 0.25, "http": {"request": {"url": "http://billing.internal/pay"},
                                                  "response": {"status": status}}},
            ],
        },
        {"name": "billing", "id": billing, "trace_id": trace_id, "parent_id": call,
         "start_time": now + 0.06, "end_time": now + 0.24, "http": {"response": {"status": status}}},
    ]  # fmt: skip


def test_service_graph_nodes_edges_and_statistics(server: ServerProcess) -> None:
    client = server.xray()
    now = time.time()
    docs = [d for status in (200, 200, 404, 429, 500) for d in _trace(now, status)]
    client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])

    def graph() -> dict[tuple[str, str], Any] | None:
        found = client.get_service_graph(StartTime=now - 60, EndTime=now + 60)
        services = {(s["Name"], s.get("Type", "")): s for s in found["Services"]}
        api = services.get(("api", "AWS::ECS::Container"))
        return services if api and api["SummaryStatistics"]["TotalCount"] == 5 else None

    services = wait_for(graph)
    assert set(services) == {
        ("api", "client"),
        ("api", "AWS::ECS::Container"),
        ("users", "AWS::DynamoDB::Table"),
        ("billing", ""),
    }
    by_ref = {s["ReferenceId"]: s for s in services.values()}
    api = services[("api", "AWS::ECS::Container")]
    assert api["Root"] is True and api["State"] == "active"
    assert api["SummaryStatistics"] == {
        "OkCount": 2,
        "ErrorStatistics": {"ThrottleCount": 1, "OtherCount": 1, "TotalCount": 2},
        "FaultStatistics": {"OtherCount": 1, "TotalCount": 1},
        "TotalCount": 5,
        "TotalResponseTime": api["SummaryStatistics"]["TotalResponseTime"],
    }
    assert abs(api["SummaryStatistics"]["TotalResponseTime"] - 1.5) < 1e-3
    assert sum(h["Count"] for h in api["ResponseTimeHistogram"]) == 5
    assert {(by_ref[e["ReferenceId"]]["Name"]) for e in api["Edges"]} == {"users", "billing"}
    to_billing = next(e for e in api["Edges"] if by_ref[e["ReferenceId"]]["Name"] == "billing")
    assert to_billing["SummaryStatistics"]["TotalCount"] == 5
    assert abs(to_billing["SummaryStatistics"]["TotalResponseTime"] - 1.0) < 1e-3  # caller's view
    client_node = services[("api", "client")]
    assert client_node["State"] == "unknown" and "SummaryStatistics" not in client_node
    assert [by_ref[e["ReferenceId"]]["Type"] for e in client_node["Edges"]] == [
        "AWS::ECS::Container"
    ]
    users = services[("users", "AWS::DynamoDB::Table")]
    assert users["State"] == "unknown" and users["Edges"] == []
    assert users["SummaryStatistics"]["TotalCount"] == 5


def test_time_series_per_period_for_services_and_edges(server: ServerProcess) -> None:
    client = server.xray()
    base = (time.time() // 300) * 300 - 600  # two 5-minute buckets, fully in the past
    docs = [d for offset in (0, 60, 330) for d in _trace(base + offset, 200)]
    docs += _trace(base + 340, 500)
    client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])

    def series(selector: str | None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"StartTime": base, "EndTime": base + 600, "Period": 300}
        if selector:
            kwargs["EntitySelectorExpression"] = selector
        return list(
            client.get_time_series_service_statistics(**kwargs)["TimeSeriesServiceStatistics"]
        )

    def billing() -> list[dict[str, Any]] | None:
        found = series('service("billing")')
        return (
            found if sum(p["ServiceSummaryStatistics"]["TotalCount"] for p in found) == 4 else None
        )

    points = wait_for(billing)
    assert [p["Timestamp"].timestamp() for p in points] == [base, base + 300]
    assert [p["ServiceSummaryStatistics"]["TotalCount"] for p in points] == [2, 2]
    assert [p["ServiceSummaryStatistics"]["FaultStatistics"]["TotalCount"] for p in points] == [
        0,
        1,
    ]
    edges = series('edge("api", "users")')
    assert [p["EdgeSummaryStatistics"]["TotalCount"] for p in edges] == [2, 2]
    entering = series(None)
    assert [p["EdgeSummaryStatistics"]["TotalCount"] for p in entering] == [2, 2]
    assert sum(h["Count"] for h in entering[1]["ResponseTimeHistogram"]) == 2

    with pytest.raises(botocore.exceptions.ClientError) as err:
        series('service("billing") { fault }')
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"


def test_trace_graph_for_explicit_traces(server: ServerProcess) -> None:
    client = server.xray()
    now = time.time()
    first, second = _trace(now, 200), _trace(now, 503)
    client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in first + second])

    def graph() -> dict[tuple[str, str], Any] | None:
        found = client.get_trace_graph(
            TraceIds=[first[0]["trace_id"], second[0]["trace_id"], "1-bad"]
        )
        services = {(s["Name"], s.get("Type", "")): s for s in found["Services"]}
        api = services.get(("api", "AWS::ECS::Container"))
        return services if api and api["SummaryStatistics"]["TotalCount"] == 2 else None

    services = wait_for(graph)
    assert set(services) == {
        ("api", "client"),
        ("api", "AWS::ECS::Container"),
        ("users", "AWS::DynamoDB::Table"),
        ("billing", ""),
    }
    api = services[("api", "AWS::ECS::Container")]
    assert api["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 1
    by_ref = {s["ReferenceId"]: s for s in services.values()}
    to_billing = next(e for e in api["Edges"] if by_ref[e["ReferenceId"]]["Name"] == "billing")
    assert to_billing["SummaryStatistics"]["TotalCount"] == 2
    only_one = client.get_trace_graph(TraceIds=[first[0]["trace_id"]])["Services"]
    assert {s["Name"] for s in only_one} == {"api", "users", "billing"}
    assert all(s.get("SummaryStatistics", {}).get("TotalCount", 1) == 1 for s in only_one)


def test_service_graph_and_time_series_of_a_group(server: ServerProcess) -> None:
    """A group's graph holds only the traces its filter selects, with exact statistics
    (recomputed from their spans), through GroupName and GroupARN."""
    client = server.xray()
    run = uuid.uuid4().hex[:8]
    now = time.time()
    docs: list[dict[str, Any]] = []
    for status in (200, 200, 404, 500, 503):
        trace = _trace(now, status)
        trace[0]["annotations"] = {"run": run}
        docs += trace
    client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
    group = client.create_group(
        GroupName=f"faulty-{run}", FilterExpression=f'annotation.run = "{run}" AND fault'
    )["Group"]

    def graph(**kwargs: str) -> dict[tuple[str, str], Any] | None:
        found = client.get_service_graph(StartTime=now - 60, EndTime=now + 60, **kwargs)
        services = {(s["Name"], s.get("Type", "")): s for s in found["Services"]}
        api = services.get(("api", "AWS::ECS::Container"))
        return services if api and api["SummaryStatistics"]["TotalCount"] == 2 else None

    services = wait_for(lambda: graph(GroupName=group["GroupName"]))
    assert graph(GroupARN=group["GroupARN"]) == services
    assert set(services) == {
        ("api", "client"),
        ("api", "AWS::ECS::Container"),
        ("users", "AWS::DynamoDB::Table"),
        ("billing", ""),
    }
    by_ref = {s["ReferenceId"]: s for s in services.values()}
    api = services[("api", "AWS::ECS::Container")]
    assert api["Root"] is True
    assert api["SummaryStatistics"] == {
        "OkCount": 0,
        "ErrorStatistics": {"ThrottleCount": 0, "OtherCount": 0, "TotalCount": 0},
        "FaultStatistics": {"OtherCount": 2, "TotalCount": 2},
        "TotalCount": 2,
        "TotalResponseTime": api["SummaryStatistics"]["TotalResponseTime"],
    }
    assert abs(api["SummaryStatistics"]["TotalResponseTime"] - 0.6) < 1e-3
    assert api["ResponseTimeHistogram"] == [{"Value": 0.3, "Count": 2}]
    edges = {by_ref[e["ReferenceId"]]["Name"]: e for e in api["Edges"]}
    assert edges["billing"]["SummaryStatistics"]["TotalCount"] == 2
    assert edges["billing"]["ResponseTimeHistogram"] == [{"Value": 0.2, "Count": 2}]  # caller's
    assert services[("users", "AWS::DynamoDB::Table")]["SummaryStatistics"]["TotalCount"] == 2
    (entering,) = services[("api", "client")]["Edges"]
    assert entering["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 2

    points = client.get_time_series_service_statistics(
        StartTime=now - 120,
        EndTime=now + 60,
        Period=60,
        GroupName=group["GroupName"],
        EntitySelectorExpression='service("billing")',
    )["TimeSeriesServiceStatistics"]
    assert sum(p["ServiceSummaryStatistics"]["TotalCount"] for p in points) == 2

    everything = client.create_group(GroupName=f"all-{run}")["Group"]  # no filter: whole graph
    whole = client.get_service_graph(StartTime=now - 60, EndTime=now + 60)["Services"]
    assert (
        client.get_service_graph(
            StartTime=now - 60, EndTime=now + 60, GroupName=everything["GroupName"]
        )["Services"]
        == whole
    )

    client.delete_group(GroupName=group["GroupName"])
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.get_service_graph(StartTime=now - 60, EndTime=now + 60, GroupName=group["GroupName"])
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
