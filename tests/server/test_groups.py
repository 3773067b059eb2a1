"""Groups through boto3: CRUD, persistence, and group references in filters."""

from __future__ import annotations

import json
import time
import uuid

import botocore.exceptions
import pytest

from tests.support import ServerProcess, segment, wait_for


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
