"""Tags, resource policies, encryption, indexing rules, destination and Insights through
boto3, and the sampling counters of /api/status and /metrics."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any

import botocore.exceptions
import pytest

from tests.support import ServerProcess


def _code(err: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def _policy(size: int = 0) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                 "Action": ["xray:PutTraceSegments"], "Resource": "*", "Sid": "x" * size}  # fmt: skip
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def test_tags_on_groups(server: ServerProcess) -> None:
    client = server.xray()
    name = f"tagged-{uuid.uuid4().hex[:6]}"
    arn = client.create_group(GroupName=name, Tags=[{"Key": "env", "Value": "prod"}])["Group"][
        "GroupARN"
    ]
    assert client.list_tags_for_resource(ResourceARN=arn)["Tags"] == [
        {"Key": "env", "Value": "prod"}
    ]
    client.tag_resource(ResourceARN=arn, Tags=[{"Key": "team", "Value": "a"},
                                               {"Key": "env", "Value": "dev"}])  # fmt: skip
    tags = client.list_tags_for_resource(ResourceARN=arn)["Tags"]
    assert tags == [{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "a"}]
    client.untag_resource(ResourceARN=arn, TagKeys=["env", "absent"])
    assert client.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.tag_resource(
            ResourceARN=arn, Tags=[{"Key": f"k{i}", "Value": ""} for i in range(200)]
        )
    assert _code(err) == "TooManyTagsException"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.tag_resource(ResourceARN=arn, Tags=[{"Key": "aws:x", "Value": "y"}])
    assert _code(err) == "InvalidRequestException"
    client.delete_group(GroupName=name)
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.list_tags_for_resource(ResourceARN=arn)
    assert _code(err) == "ResourceNotFoundException"
    client.create_group(GroupName=name)  # the same name again: no old tags resurface
    assert client.list_tags_for_resource(ResourceARN=arn)["Tags"] == []
    client.delete_group(GroupName=name)


def test_resource_policies_with_xrays_limits(server: ServerProcess) -> None:
    client = server.xray()
    first = client.put_resource_policy(PolicyName="p0", PolicyDocument=_policy())["ResourcePolicy"]
    assert first["PolicyName"] == "p0" and first["PolicyRevisionId"]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.put_resource_policy(PolicyName="p0", PolicyDocument=_policy(), PolicyRevisionId="0")
    assert _code(err) == "InvalidPolicyRevisionIdException"
    second = client.put_resource_policy(
        PolicyName="p0", PolicyDocument=_policy(1), PolicyRevisionId=first["PolicyRevisionId"]
    )["ResourcePolicy"]
    assert second["PolicyRevisionId"] != first["PolicyRevisionId"]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.put_resource_policy(PolicyName="big", PolicyDocument=_policy(6 * 1024))
    assert _code(err) == "PolicySizeLimitExceededException"
    for document in ("{not json", json.dumps({"Statement": []}), json.dumps({"Version": "1"})):
        with pytest.raises(botocore.exceptions.ClientError) as err:
            client.put_resource_policy(PolicyName="bad", PolicyDocument=document)
        assert _code(err) == "MalformedPolicyDocumentException"
    for i in range(1, 5):
        client.put_resource_policy(PolicyName=f"p{i}", PolicyDocument=_policy())
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.put_resource_policy(PolicyName="p5", PolicyDocument=_policy())
    assert _code(err) == "PolicyCountLimitExceededException"
    listed = client.list_resource_policies()["ResourcePolicies"]
    assert [p["PolicyName"] for p in listed] == [f"p{i}" for i in range(5)]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.delete_resource_policy(PolicyName="p0", PolicyRevisionId="stale")
    assert _code(err) == "InvalidPolicyRevisionIdException"
    for i in range(5):
        client.delete_resource_policy(PolicyName=f"p{i}")
    assert client.list_resource_policies()["ResourcePolicies"] == []


def test_settings_report_what_fluoroscope_does(server: ServerProcess) -> None:
    client = server.xray()
    assert client.get_encryption_config()["EncryptionConfig"] == {
        "Type": "NONE",
        "Status": "ACTIVE",
    }
    assert client.put_encryption_config(Type="NONE")["EncryptionConfig"]["Type"] == "NONE"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.put_encryption_config(Type="KMS", KeyId="alias/aws/xray")
    assert _code(err) == "InvalidRequestException" and "KMS" in str(err.value)

    rules = client.get_indexing_rules()["IndexingRules"]
    assert rules[0]["Name"] == "Default"
    assert rules[0]["Rule"]["Probabilistic"]["ActualSamplingPercentage"] == 100
    updated = client.update_indexing_rule(
        Name="Default", Rule={"Probabilistic": {"DesiredSamplingPercentage": 5}}
    )["IndexingRule"]
    assert updated["Rule"]["Probabilistic"] == {
        "DesiredSamplingPercentage": 5,
        "ActualSamplingPercentage": 100,  # every trace is indexed all the same
    }
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.update_indexing_rule(
            Name="x", Rule={"Probabilistic": {"DesiredSamplingPercentage": 5}}
        )
    assert _code(err) == "ResourceNotFoundException"

    assert client.get_trace_segment_destination()["Destination"] == "XRay"
    assert client.update_trace_segment_destination(Destination="XRay")["Status"] == "ACTIVE"
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.update_trace_segment_destination(Destination="CloudWatchLogs")
    assert _code(err) == "InvalidRequestException" and "CloudWatchLogs" in str(err.value)


def test_insights_refuse_a_window_older_than_30_days(server: ServerProcess) -> None:
    client = server.xray()
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.get_insight_summaries(StartTime=0, EndTime=60, GroupName="Default")
    assert _code(err) == "InvalidRequestException"
    assert "30 days" in str(err.value)


def test_sampling_counters(server: ServerProcess) -> None:
    client = server.xray(unsigned=True)
    client.get_sampling_rules()
    doc = {"RuleName": "Default", "ClientID": "c" * 24, "Timestamp": 1e9,
           "RequestCount": 3, "SampledCount": 1, "BorrowCount": 0}  # fmt: skip
    client.get_sampling_targets(SamplingStatisticsDocuments=[doc])
    client.get_sampling_targets(SamplingStatisticsDocuments=[doc | {"RuleName": "nope"}])
    sampling: dict[str, Any] = server.status()["sampling"]
    assert sampling["calls"]["GetSamplingRules"] >= 1
    assert sampling["reports_by_rule"]["Default"] >= 1
    assert sampling["polls_by_client"]["c" * 24] >= 1
    assert sampling["refused_documents"]["404"] >= 1
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert 'fluoroscope_sampling_reports_total{rule="Default"}' in text
    assert 'fluoroscope_sampling_calls_total{operation="GetSamplingTargets"}' in text
    assert 'fluoroscope_sampling_refused_documents_total{code="404"}' in text
