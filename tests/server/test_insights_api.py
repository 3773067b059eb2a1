"""X-Ray Insights through boto3 against a real server evaluating in the background.

Generated traffic (``tests.insightgen``) with two known incidents in ledger, stamped in
the last hour and a half, goes in through PutTraceSegments; a group with
``InsightsEnabled`` is created, and the server's background pass (every second here)
must find both incidents closed, naming ledger, and answer the four operations with
X-Ray's members, pagination and errors. A group whose traffic is too short to learn a
band is reported as learning, with a reason, and gets no insight.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions
import pytest

from tests.insightgen import traffic
from tests.support import ServerProcess, start_server, wait_for

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
FIRST = (int(time.time()) - 90 * 60) // 60 * 60
INCIDENTS = (range(45, 52), range(62, 67))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("server"), env_changes={"FLUOROSCOPE_INSIGHTS_INTERVAL": "1"}
    )
    client = proc.xray()
    docs = traffic(FIRST, 80, {i for r in INCIDENTS for i in r})
    for k in range(0, len(docs), 50):
        sent = client.put_trace_segments(
            TraceSegmentDocuments=[json.dumps(d) for d in docs[k : k + 50]]
        )
        assert not sent["UnprocessedTraceSegments"]
    yield proc
    proc.stop()


def _post(server: ServerProcess, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{server.url}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _code(err: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


@pytest.fixture(scope="module")
def found(server: ServerProcess) -> list[dict[str, Any]]:
    """The group's insights once the background pass has closed both."""
    client = server.xray()
    client.create_group(
        GroupName="checkout",
        FilterExpression='service("api")',
        InsightsConfiguration={"InsightsEnabled": True},
    )
    window = {"StartTime": FIRST - 60, "EndTime": time.time() + 60, "GroupName": "checkout"}

    def closed() -> list[dict[str, Any]] | None:
        got = client.get_insight_summaries(**window)["InsightSummaries"]
        done = [i for i in got if i["State"] == "CLOSED"]
        return got if len(done) == len(INCIDENTS) == len(got) else None

    return wait_for(closed, timeout=180, interval=0.5)


def test_incidents_become_closed_insights_naming_ledger(found: list[dict[str, Any]]) -> None:
    starts = sorted(i["StartTime"] for i in found)
    assert [s.timestamp() for s in starts] == [FIRST + r.start * 60 for r in INCIDENTS]
    for insight in found:
        assert UUID.fullmatch(insight["InsightId"])
        assert insight["GroupName"] == "checkout"
        assert insight["GroupARN"].endswith(":group/checkout")
        assert insight["Categories"] == ["FAULT"]
        assert insight["RootCauseServiceId"] == {"Name": "ledger", "Names": ["ledger"]}
        assert insight["EndTime"] > insight["StartTime"]
        impact = insight["ClientRequestImpactStatistics"]
        assert impact["FaultCount"] > 0 and impact["TotalCount"] >= impact["FaultCount"]
        assert insight["LastUpdateTime"] and "ledger" in insight["Summary"]


def test_summaries_paginate_and_filter_by_state(
    server: ServerProcess, found: list[dict[str, Any]]
) -> None:
    client = server.xray()
    window = {"StartTime": FIRST - 60, "EndTime": time.time(), "GroupName": "checkout"}
    first = client.get_insight_summaries(MaxResults=1, **window)
    assert len(first["InsightSummaries"]) == 1 and first["NextToken"]
    second = client.get_insight_summaries(MaxResults=1, NextToken=first["NextToken"], **window)
    assert "NextToken" not in second
    ids = {first["InsightSummaries"][0]["InsightId"], second["InsightSummaries"][0]["InsightId"]}
    assert ids == {i["InsightId"] for i in found}
    assert client.get_insight_summaries(States=["ACTIVE"], **window)["InsightSummaries"] == []
    before = {**window, "EndTime": FIRST + 30 * 60}
    assert client.get_insight_summaries(**before)["InsightSummaries"] == []
    assert (
        client.get_insight_summaries(StartTime=FIRST, EndTime=time.time(), GroupName="Default")[
            "InsightSummaries"
        ]
        == []
    )


def test_insight_events_and_impact_graph(
    server: ServerProcess, found: list[dict[str, Any]]
) -> None:
    client = server.xray()
    insight_id = found[0]["InsightId"]
    detail = client.get_insight(InsightId=insight_id)["Insight"]
    assert detail["InsightId"] == insight_id and detail["State"] == "CLOSED"
    assert detail["RootCauseServiceId"] == found[0]["RootCauseServiceId"]
    events = client.get_insight_events(InsightId=insight_id)["InsightEvents"]
    assert len(events) == 2 and events[0]["EventTime"] > events[1]["EventTime"]
    assert "returned" in events[0]["Summary"]
    page = client.get_insight_events(InsightId=insight_id, MaxResults=1)
    assert len(page["InsightEvents"]) == 1 and page["NextToken"]
    graph = client.get_insight_impact_graph(
        InsightId=insight_id, StartTime=detail["StartTime"], EndTime=detail["EndTime"]
    )
    assert graph["InsightId"] == insight_id
    by_name = {s["Name"]: s for s in graph["Services"]}
    assert {"api", "billing", "ledger"} <= set(by_name)
    refs = {s["ReferenceId"]: s["Name"] for s in graph["Services"]}
    assert {refs[e["ReferenceId"]] for e in by_name["billing"]["Edges"]} == {"ledger"}
    assert graph["ServiceGraphStartTime"] <= graph["StartTime"]


def test_bad_insight_requests_are_refused(
    server: ServerProcess, found: list[dict[str, Any]]
) -> None:
    client = server.xray()
    now = datetime.now(UTC)
    calls: list[Callable[[], Any]] = [
        lambda: client.get_insight(InsightId=str(uuid.uuid4())),
        lambda: client.get_insight_events(InsightId="not-an-id"),
        lambda: client.get_insight_summaries(
            StartTime=now - timedelta(days=40), EndTime=now, GroupName="checkout"
        ),
        lambda: client.get_insight_summaries(StartTime=now, EndTime=now, GroupName="nope"),
        lambda: client.get_insight_summaries(
            StartTime=now, EndTime=now, GroupName="checkout", NextToken="forged"
        ),
        lambda: client.get_insight_impact_graph(
            InsightId=found[0]["InsightId"], StartTime=now - timedelta(hours=7), EndTime=now
        ),
    ]
    for call in calls:
        with pytest.raises(botocore.exceptions.ClientError) as err:
            call()
        assert _code(err) == "InvalidRequestException"
    # what boto3 checks before sending, sent as another client might
    window = {"StartTime": time.time() - 60, "EndTime": time.time(), "GroupName": "checkout"}
    for path, body in (
        ("/InsightSummaries", {**window, "MaxResults": 101}),
        ("/InsightSummaries", {**window, "MaxResults": 0}),
        ("/InsightSummaries", {**window, "States": ["ACTIVE", "CLOSED"]}),
        ("/InsightSummaries", {**window, "States": ["OPEN"]}),
        ("/InsightSummaries", {"StartTime": time.time()}),
        ("/InsightEvents", {"InsightId": found[0]["InsightId"], "MaxResults": 51}),
        ("/Insight", {}),
    ):
        with pytest.raises(urllib.error.HTTPError) as refused:
            _post(server, path, body)
        assert refused.value.code == 400
        assert json.loads(refused.value.read())["__type"] == "InvalidRequestException"


def test_a_group_with_too_short_a_history_is_learning(server: ServerProcess) -> None:
    client = server.xray()
    client.create_group(
        GroupName="newcomer",
        FilterExpression='service("not-yet-deployed")',
        InsightsConfiguration={"InsightsEnabled": True},
    )

    def learning() -> dict[str, Any] | None:
        answer = _post(server, "/api/insights", {"StartTime": FIRST, "EndTime": time.time()})
        return next((g for g in answer["Groups"] if g["GroupName"] == "newcomer"), None)

    state = wait_for(learning, timeout=60)
    assert state["State"] == "LEARNING" and "a band needs" in state["Reason"]
    window = {"StartTime": FIRST, "EndTime": time.time(), "GroupName": "newcomer"}
    assert client.get_insight_summaries(**window)["InsightSummaries"] == []
