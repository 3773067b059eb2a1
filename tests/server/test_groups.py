"""Groups through boto3: CRUD, persistence, and group references in filters."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import botocore.exceptions
import pytest

from fluoroscope.model.ids import new_trace_id
from tests.support import ServerProcess, segment, wait_for
from tests.tracegen import call_trace


def _code(err: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_group_lifecycle_and_use_in_filters(server: ServerProcess) -> None:
    client = server.xray()
    run = uuid.uuid4().hex[:8]
    name = f"slow-{run}"
    created = client.create_group(GroupName=name, FilterExpression="responsetime > 2")["Group"]
    assert created["GroupName"] == name and created["FilterExpression"] == "responsetime > 2"
    assert created["GroupARN"].endswith(f":group/{name}")
    assert created["InsightsConfiguration"] == {
        "InsightsEnabled": False,
        "NotificationsEnabled": False,
    }
    assert client.get_group(GroupARN=created["GroupARN"])["Group"] == created
    names = [g["GroupName"] for g in client.get_groups()["Groups"]]
    assert names[0] == "Default" and name in names

    now = time.time()
    slow = segment(annotations={"run": run}, end_time=now + 3)
    fast = segment(annotations={"run": run})
    client.put_trace_segments(TraceSegmentDocuments=[json.dumps(slow), json.dumps(fast)])

    def found(expression: str) -> set[str]:
        pages = client.get_trace_summaries(
            StartTime=now - 60,
            EndTime=now + 60,
            FilterExpression=f'annotation.run = "{run}" AND {expression}',
        )
        return {s["Id"] for s in pages["TraceSummaries"]}

    assert wait_for(lambda: found(f'group.name = "{name}"')) == {slow["trace_id"]}
    assert found(f'group.arn = "{created["GroupARN"]}"') == {slow["trace_id"]}
    assert found(f'!group.name = "{name}"') == {fast["trace_id"]}

    updated = client.update_group(GroupName=name, FilterExpression="responsetime < 1")["Group"]
    assert updated["FilterExpression"] == "responsetime < 1"
    assert found(f'group.name = "{name}"') == {fast["trace_id"]}

    client.delete_group(GroupName=name)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.get_group(GroupName=name)
    assert _code(err) == "InvalidRequestException" and "does not exist" in str(err.value)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        found(f'group.name = "{name}"')
    assert _code(err) == "InvalidRequestException"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"GroupName": "Default"}, "reserved"),
        ({"GroupName": "has space"}, "GroupName"),
        ({"GroupName": "bad-filter", "FilterExpression": "responsetime >"}, "position"),
        (
            {"GroupName": "svc-user", "FilterExpression": 'service("a") { user = "x" }'},
            "inside service()",
        ),
    ],
)
def test_bad_groups_are_refused(
    server: ServerProcess, kwargs: dict[str, str], fragment: str
) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        server.xray().create_group(**kwargs)
    assert _code(err) == "InvalidRequestException"
    assert fragment in str(err.value)


def test_duplicate_and_default_changes_are_refused(server: ServerProcess) -> None:
    client = server.xray()
    name = f"dup-{uuid.uuid4().hex[:8]}"
    client.create_group(GroupName=name)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.create_group(GroupName=name)
    assert "already exists" in str(err.value)
    with pytest.raises(botocore.exceptions.ClientError):
        client.delete_group(GroupName="Default")
    graph = client.get_service_graph(
        StartTime=time.time() - 60, EndTime=time.time(), GroupName="Default"
    )
    assert "Services" in graph


def test_groups_survive_a_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.support import start_server

    data = tmp_path_factory.mktemp("groups")
    first = start_server(data)
    first.xray().create_group(GroupName="kept", FilterExpression="fault")
    first.stop()
    second = start_server(data)
    try:
        assert second.xray().get_group(GroupName="kept")["Group"]["FilterExpression"] == "fault"
    finally:
        second.stop()


_KEPT_VS_SPANS = """
import json, sys
from pathlib import Path
from fluoroscope.query.graph import build_graph, filtered_graph
from fluoroscope.query.groups import GroupService
from fluoroscope.query.groupstats import GroupStats, TrackedGroup
from fluoroscope.server.xray import render_graph
from fluoroscope.store.store import Store

data, name, lo, hi = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
store = Store.open("chdb", Path(data), 30)
groups = GroupService(store)
tracker = GroupStats(store, groups)
tracker.refresh()
tracked = tracker.tracked(name)
condition = groups.condition(groups.get(name).filter_expression)
# read every minute of the window from the statistics kept at ingest
forced = TrackedGroup(name, tracked.key, condition, since=lo - 7200)
kept = filtered_graph(store, lo, hi, condition, forced)
spans = filtered_graph(store, lo, hi, condition)
rows = store.stats("node", lo, hi, group_key=tracked.key).num_rows
print(json.dumps({"kept": render_graph(kept), "spans": render_graph(spans), "rows": rows}))
"""


def test_a_groups_statistics_are_kept_as_segments_arrive(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Through the real server: the worker gathers contributions once a group exists, the
    server keeps the group's statistics, and they equal its graph recomputed from spans."""
    from tests.support import start_server

    data = tmp_path_factory.mktemp("groupstats")
    server = start_server(data)
    try:
        client = server.xray()
        filter_text = 'service("billing") { fault }'
        client.create_group(GroupName="billing-faults", FilterExpression=filter_text)
        now = time.time()
        docs = []
        for k in range(6):
            docs += call_trace(new_trace_id(now), now - 30 + k, fault=k % 2 == 0)
        # the callee of one more trace arrives first, its caller later
        late = call_trace(new_trace_id(now), now - 10, fault=True)
        server.send_documents(late[1], *docs)
        wait_for(lambda: server.counter("stored_documents") >= len(docs) + 1)
        server.send_documents(late[0])
        wait_for(lambda: server.counter("stored_documents") >= len(docs) + 2)
        graph = client.get_service_graph(
            StartTime=now - 120, EndTime=now + 60, GroupName="billing-faults"
        )
        billing = next(s for s in graph["Services"] if s["Name"] == "billing")
        assert billing["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 4
    finally:
        server.stop()
    found = subprocess.run(
        [sys.executable, "-c", _KEPT_VS_SPANS, str(data), "billing-faults",
         str(now - 120), str(now + 60)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    result = json.loads(found.stdout)
    assert result["rows"] > 0
    assert result["kept"] == result["spans"]
    names = {s["Name"] for s in result["kept"]["Services"]}
    assert names == {"api", "billing"}
