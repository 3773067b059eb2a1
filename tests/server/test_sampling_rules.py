"""Sampling rules through boto3: CRUD, X-Ray's validation and errors, pagination,
persistence across a restart, tags on create, and GetSamplingTargets' bad input."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest

from tests.support import ServerProcess, start_server


def _code(err: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def restored_rules(server: ServerProcess) -> Iterator[Any]:
    """Yield ``server``'s xray client, then delete every rule but Default and put
    Default back to X-Ray's (1/s, then 5 %): for fixtures of tests that change rules."""
    xray = server.xray()
    yield xray
    for record in xray.get_sampling_rules()["SamplingRuleRecords"]:
        if record["SamplingRule"]["RuleName"] != "Default":
            xray.delete_sampling_rule(RuleName=record["SamplingRule"]["RuleName"])
    xray.update_sampling_rule(
        SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 0.05, "ReservoirSize": 1}
    )


def rule(name: str, **fields: Any) -> dict[str, Any]:
    """A valid SamplingRule (override any field)."""
    body: dict[str, Any] = {
        "RuleName": name,
        "ResourceARN": "*",
        "Priority": 100,
        "FixedRate": 0.1,
        "ReservoirSize": 5,
        "ServiceName": "checkout",
        "ServiceType": "*",
        "Host": "*",
        "HTTPMethod": "POST",
        "URLPath": "/api/*",
        "Version": 1,
    }
    body.update(fields)
    return body


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Any]:
    """A boto3 client; every rule but Default is deleted afterwards."""
    xray = server.xray()
    yield xray
    for page in xray.get_paginator("get_sampling_rules").paginate():
        for record in page["SamplingRuleRecords"]:
            name = record["SamplingRule"]["RuleName"]
            if name != "Default":
                xray.delete_sampling_rule(RuleName=name)
    xray.update_sampling_rule(SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 0.05,
                                                  "ReservoirSize": 1})  # fmt: skip


def test_rule_lifecycle(client: Any) -> None:
    name = f"checkout-{uuid.uuid4().hex[:6]}"
    before = time.time() - 1
    created = client.create_sampling_rule(
        SamplingRule=rule(name), Tags=[{"Key": "team", "Value": "payments"}]
    )["SamplingRuleRecord"]
    shaped = created["SamplingRule"]
    assert shaped["RuleARN"].endswith(f":sampling-rule/{name}")
    assert shaped["Attributes"] == {} and shaped["Priority"] == 100
    assert created["CreatedAt"].timestamp() >= before
    assert created["ModifiedAt"] == created["CreatedAt"]
    tags = client.list_tags_for_resource(ResourceARN=shaped["RuleARN"])["Tags"]
    assert tags == [{"Key": "team", "Value": "payments"}]

    records = client.get_sampling_rules()["SamplingRuleRecords"]
    assert [r["SamplingRule"]["RuleName"] for r in records] == [name, "Default"]  # priority

    time.sleep(0.01)  # a later modification time than the creation's millisecond
    updated = client.update_sampling_rule(
        SamplingRuleUpdate={"RuleARN": shaped["RuleARN"], "FixedRate": 0.5, "Host": "shop.*"}
    )["SamplingRuleRecord"]
    assert updated["SamplingRule"]["FixedRate"] == 0.5
    assert updated["SamplingRule"]["Host"] == "shop.*"
    assert updated["SamplingRule"]["ServiceName"] == "checkout"  # untouched fields kept
    assert updated["ModifiedAt"] > updated["CreatedAt"] == created["CreatedAt"]

    deleted = client.delete_sampling_rule(RuleName=name)["SamplingRuleRecord"]
    assert deleted["SamplingRule"]["FixedRate"] == 0.5
    names = [
        r["SamplingRule"]["RuleName"] for r in client.get_sampling_rules()["SamplingRuleRecords"]
    ]
    assert names == ["Default"]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.list_tags_for_resource(ResourceARN=shaped["RuleARN"])
    assert _code(err) == "ResourceNotFoundException"


def test_default_rule_is_editable_never_deletable(client: Any) -> None:
    updated = client.update_sampling_rule(
        SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 0.2, "ReservoirSize": 3}
    )["SamplingRuleRecord"]["SamplingRule"]
    assert (updated["FixedRate"], updated["ReservoirSize"], updated["Priority"]) == (0.2, 3, 10000)
    for change in ({"Host": "x"}, {"Priority": 5}, {"URLPath": "/a"}):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            client.update_sampling_rule(SamplingRuleUpdate={"RuleName": "Default", **change})
        assert _code(err) == "InvalidRequestException" and "Default" in str(err.value)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.delete_sampling_rule(RuleName="Default")
    assert _code(err) == "InvalidRequestException" and "cannot be deleted" in str(err.value)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.create_sampling_rule(SamplingRule=rule("Default"))
    assert _code(err) == "InvalidRequestException"


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"RuleName": "has space"}, "RuleName"),
        ({"RuleName": "x" * 33}, "RuleName"),
        ({"Priority": 0}, "Priority"),
        ({"Priority": 10000}, "Priority"),
        ({"FixedRate": 1.5}, "FixedRate"),
        ({"FixedRate": -0.1}, "FixedRate"),
        ({"ReservoirSize": 2**31}, "ReservoirSize"),
        ({"ReservoirSize": -1}, "ReservoirSize"),
        ({"Version": 2}, "Version"),
        ({"HTTPMethod": "X" * 11}, "HTTPMethod"),
        ({"URLPath": "/" * 129}, "URLPath"),
        ({"ServiceName": "s" * 65}, "ServiceName"),
        ({"Attributes": {f"k{i}": "v" for i in range(6)}}, "Attributes"),
        ({"Attributes": {"k": "v" * 33}}, "Attributes"),
    ],
)
def test_invalid_rules_are_refused(
    server: ServerProcess, fields: dict[str, Any], fragment: str
) -> None:
    """Sent unchecked (botocore would refuse some itself), as any client may send them."""
    with pytest.raises(botocore.exceptions.ClientError) as err:
        unchecked(server).create_sampling_rule(
            SamplingRule=rule(f"bad-{uuid.uuid4().hex[:6]}", **fields)
        )
    assert _code(err) == "InvalidRequestException"
    assert str(err.value).split(": ", 1)[1].startswith(fragment)


def unchecked(server: ServerProcess) -> Any:
    """A boto3 client that sends parameters without checking them first."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "xray",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(parameter_validation=False),
    )


def test_duplicates_limits_and_unknown_rules(client: Any) -> None:
    name = f"dup-{uuid.uuid4().hex[:6]}"
    client.create_sampling_rule(SamplingRule=rule(name))
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.create_sampling_rule(SamplingRule=rule(name))
    assert _code(err) == "InvalidRequestException" and "already exists" in str(err.value)
    for i in range(23):  # with Default and the one above: 25, the limit
        client.create_sampling_rule(SamplingRule=rule(f"r{i}-{name}"[:32], Priority=i + 1))
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.create_sampling_rule(SamplingRule=rule(f"over-{name}"))
    assert _code(err) == "RuleLimitExceededException"
    pages = list(client.get_paginator("get_sampling_rules").paginate())
    records = [r for p in pages for r in p["SamplingRuleRecords"]]
    assert len(records) == 25
    priorities = [(r["SamplingRule"]["Priority"], r["SamplingRule"]["RuleName"]) for r in records]
    assert priorities == sorted(priorities)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.get_sampling_rules(NextToken="not-a-token")
    assert _code(err) == "InvalidRequestException"
    for missing in ({"RuleName": "nope"}, {"RuleARN": "arn:aws:xray:us-east-1:1:group/x"}):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            client.delete_sampling_rule(**missing)
        assert _code(err) == "InvalidRequestException"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.update_sampling_rule(SamplingRuleUpdate={"RuleName": "nope", "FixedRate": 0.1})
    assert _code(err) == "InvalidRequestException" and "does not exist" in str(err.value)


def test_wildcards_everywhere_are_a_valid_rule(client: Any) -> None:
    """As in X-Ray: a catch-all rule is allowed, and wins over Default by priority."""
    fields = {k: "*" for k in ("ServiceName", "ServiceType", "Host", "HTTPMethod", "URLPath")}
    client.create_sampling_rule(SamplingRule=rule("catch-all", **fields, Priority=9999))
    names = [
        r["SamplingRule"]["RuleName"] for r in client.get_sampling_rules()["SamplingRuleRecords"]
    ]
    assert names == ["catch-all", "Default"]


def test_targets_bad_input_spares_the_other_documents(server: ServerProcess, client: Any) -> None:
    client.create_sampling_rule(SamplingRule=rule("targets", ReservoirSize=10))
    unsigned = server.xray(unsigned=True)
    now = time.time()

    def doc(name: str, client_id: str, **counts: int) -> dict[str, Any]:
        body: dict[str, Any] = {"RuleName": name, "ClientID": client_id, "Timestamp": now,
                                "RequestCount": 10, "SampledCount": 1, "BorrowCount": 0}  # fmt: skip
        body.update(counts)
        return body

    a, b = "a" * 24, "b" * 24
    answer = unsigned.get_sampling_targets(
        SamplingStatisticsDocuments=[
            doc("targets", a),
            doc("no-such-rule", a),
            doc("targets", b, SampledCount=11),  # more sampled than seen
        ]
    )
    assert [t["RuleName"] for t in answer["SamplingTargetDocuments"]] == ["targets"]
    assert answer["SamplingTargetDocuments"][0]["ReservoirQuota"] == 10  # the only client
    assert {(u["RuleName"], u["ErrorCode"]) for u in answer["UnprocessedStatistics"]} == {
        ("no-such-rule", "404"),
        ("targets", "400"),
    }
    assert answer["LastRuleModification"].timestamp() >= now - 5
    stale = unsigned.get_sampling_targets(
        SamplingStatisticsDocuments=[doc("targets", a) | {"Timestamp": now - 60}]
    )
    assert stale["SamplingTargetDocuments"] == []
    assert "precedes" in stale["UnprocessedStatistics"][0]["Message"]
    summaries = client.get_sampling_statistic_summaries()["SamplingStatisticSummaries"]
    mine = [s for s in summaries if s["RuleName"] == "targets"]
    assert sum(s["RequestCount"] for s in mine) == 10
    assert sum(s["SampledCount"] for s in mine) == 1


def test_rules_and_tags_survive_a_restart(tmp_path_factory: pytest.TempPathFactory) -> None:
    data = tmp_path_factory.mktemp("rules")
    first = start_server(data)
    try:
        xray = first.xray()
        xray.create_sampling_rule(SamplingRule=rule("kept"), Tags=[{"Key": "k", "Value": "v"}])
        xray.create_sampling_rule(SamplingRule=rule("gone"))
        xray.delete_sampling_rule(RuleName="gone")
        xray.update_sampling_rule(SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 0.3})
        modified = xray.get_sampling_targets(SamplingStatisticsDocuments=[])["LastRuleModification"]
    finally:
        first.stop()
    second = start_server(data)
    try:
        xray = second.xray()
        records = xray.get_sampling_rules()["SamplingRuleRecords"]
        assert [r["SamplingRule"]["RuleName"] for r in records] == ["kept", "Default"]
        assert records[1]["SamplingRule"]["FixedRate"] == 0.3
        arn = records[0]["SamplingRule"]["RuleARN"]
        assert xray.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "k", "Value": "v"}]
        again = xray.get_sampling_targets(SamplingStatisticsDocuments=[])["LastRuleModification"]
        assert again >= modified  # the SDKs see no change they already have as new
    finally:
        second.stop()


def test_ten_thousand_clients_at_once_and_others_still_answered(
    server: ServerProcess, client: Any
) -> None:
    """10,000 clients report at once (400 calls of 25, 8 at a time) while one more client
    polls: each of its polls is answered, promptly, with its quota."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    client.create_sampling_rule(SamplingRule=rule("flood", ReservoirSize=100))
    now = time.time()
    stop = threading.Event()
    waits: list[float] = []

    def other() -> None:
        xray = server.xray(unsigned=True)
        while not stop.is_set():
            started = time.monotonic()
            answer = xray.get_sampling_targets(SamplingStatisticsDocuments=[
                {"RuleName": "Default", "ClientID": "0" * 24, "Timestamp": time.time(),
                 "RequestCount": 1, "SampledCount": 0, "BorrowCount": 0}])  # fmt: skip
            waits.append(time.monotonic() - started)
            assert answer["SamplingTargetDocuments"][0]["ReservoirQuota"] == 1

    def flood(batch: int) -> int:
        docs = [
            {
                "RuleName": "flood",
                "ClientID": f"{batch:06d}{i:018d}",
                "Timestamp": now,
                "RequestCount": 10,
                "SampledCount": 1,
                "BorrowCount": 0,
            }
            for i in range(25)
        ]
        answer = server.xray(unsigned=True).get_sampling_targets(SamplingStatisticsDocuments=docs)
        return sum(t["ReservoirQuota"] for t in answer["SamplingTargetDocuments"])

    watcher = threading.Thread(target=other)
    watcher.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            handed = sum(pool.map(flood, range(400)))
    finally:
        stop.set()
        watcher.join()
    assert 0 < handed <= 100  # the quotas held never add up to more than the reservoir
    assert waits and max(waits) < 10, max(waits)
    status = server.status()["sampling"]
    assert status["active_clients_by_rule"]["flood"] == 10_000
    assert status["reports_by_rule"]["flood"] >= 10_000
