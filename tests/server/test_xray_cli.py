"""The AWS CLI (``awscli`` from PyPI, in a virtual environment of its own made by
``scripts/install-awscli``: its exact botocore pin must not replace ours) against a real
server: every sampling, tagging, policy and settings operation as a user types it, and
the refusals a user would meet."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import awscli
from tests.support import ServerProcess

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def aws() -> str:
    return awscli.install()


def _run(aws: str, server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return awscli.run(aws, server, "xray", *args)


def _cli(aws: str, server: ServerProcess, *args: str) -> Any:
    done = _run(aws, server, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def _refused(aws: str, server: ServerProcess, *args: str) -> str:
    done = _run(aws, server, *args)
    assert done.returncode != 0, done.stdout
    return done.stderr


RULE = {
    "RuleName": "cli-rule", "ResourceARN": "*", "Priority": 50, "FixedRate": 0.1,
    "ReservoirSize": 2, "ServiceName": "cli", "ServiceType": "*", "Host": "*",
    "HTTPMethod": "GET", "URLPath": "/cli/*", "Version": 1,
}  # fmt: skip


def test_sampling_operations_with_the_aws_cli(aws: str, server: ServerProcess) -> None:
    created = _cli(aws, server, "create-sampling-rule", "--sampling-rule", json.dumps(RULE),
                   "--tags", "Key=owner,Value=cli")  # fmt: skip
    arn = created["SamplingRuleRecord"]["SamplingRule"]["RuleARN"]
    rules = _cli(aws, server, "get-sampling-rules")["SamplingRuleRecords"]
    assert [r["SamplingRule"]["RuleName"] for r in rules] == ["cli-rule", "Default"]
    updated = _cli(aws, server, "update-sampling-rule", "--sampling-rule-update",
                   json.dumps({"RuleName": "cli-rule", "FixedRate": 0.5}))  # fmt: skip
    assert updated["SamplingRuleRecord"]["SamplingRule"]["FixedRate"] == 0.5
    targets = _cli(aws, server, "get-sampling-targets", "--sampling-statistics-documents",
                   json.dumps([{"RuleName": "cli-rule", "ClientID": "c" * 24,
                                "Timestamp": 1.7e9, "RequestCount": 4, "SampledCount": 2,
                                "BorrowCount": 0}]))  # fmt: skip
    assert targets["SamplingTargetDocuments"][0]["ReservoirQuota"] == 2
    summaries = _cli(aws, server, "get-sampling-statistic-summaries")
    assert any(s["RuleName"] == "cli-rule" and s["RequestCount"] == 4
               for s in summaries["SamplingStatisticSummaries"])  # fmt: skip

    assert _cli(aws, server, "list-tags-for-resource", "--resource-arn", arn)["Tags"] == [
        {"Key": "owner", "Value": "cli"}
    ]
    _cli(aws, server, "tag-resource", "--resource-arn", arn, "--tags", "Key=env,Value=dev")
    _cli(aws, server, "untag-resource", "--resource-arn", arn, "--tag-keys", "owner")
    assert _cli(aws, server, "list-tags-for-resource", "--resource-arn", arn)["Tags"] == [
        {"Key": "env", "Value": "dev"}
    ]
    assert "cannot be deleted" in _refused(aws, server, "delete-sampling-rule",
                                            "--rule-name", "Default")  # fmt: skip
    bad = {**RULE, "RuleName": "cli-bad", "FixedRate": 1.5}
    refusal = _refused(aws, server, "create-sampling-rule", "--sampling-rule", json.dumps(bad))
    assert "InvalidRequestException" in refusal and "FixedRate" in refusal
    deleted = _cli(aws, server, "delete-sampling-rule", "--rule-arn", arn)
    assert deleted["SamplingRuleRecord"]["SamplingRule"]["RuleName"] == "cli-rule"


def test_settings_and_policies_with_the_aws_cli(aws: str, server: ServerProcess) -> None:
    assert _cli(aws, server, "get-encryption-config")["EncryptionConfig"]["Type"] == "NONE"
    assert _cli(aws, server, "put-encryption-config", "--type", "NONE")["EncryptionConfig"]
    assert "KMS" in _refused(aws, server, "put-encryption-config", "--type", "KMS",
                             "--key-id", "alias/x")  # fmt: skip
    policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "xray:PutTraceSegments", "Resource": "*"}]})  # fmt: skip
    put = _cli(aws, server, "put-resource-policy", "--policy-name", "cli-policy",
               "--policy-document", policy)  # fmt: skip
    revision = put["ResourcePolicy"]["PolicyRevisionId"]
    listed = _cli(aws, server, "list-resource-policies")["ResourcePolicies"]
    assert [p["PolicyName"] for p in listed] == ["cli-policy"]
    big = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "x", "Sid": "s" * 6000}]})  # fmt: skip
    assert "PolicySizeLimitExceededException" in _refused(
        aws, server, "put-resource-policy", "--policy-name", "big", "--policy-document", big
    )
    _cli(aws, server, "delete-resource-policy", "--policy-name", "cli-policy",
         "--policy-revision-id", revision)  # fmt: skip
    assert _cli(aws, server, "list-resource-policies")["ResourcePolicies"] == []

    rules = _cli(aws, server, "get-indexing-rules")["IndexingRules"]
    assert rules[0]["Rule"]["Probabilistic"]["ActualSamplingPercentage"] == 100
    _cli(aws, server, "update-indexing-rule", "--name", "Default", "--rule",
         json.dumps({"Probabilistic": {"DesiredSamplingPercentage": 50}}))  # fmt: skip
    destination = _cli(aws, server, "get-trace-segment-destination")
    assert destination == {"Destination": "XRay", "Status": "ACTIVE"}
    assert _cli(aws, server, "update-trace-segment-destination", "--destination", "XRay")
    assert "CloudWatchLogs" in _refused(aws, server, "update-trace-segment-destination",
                                        "--destination", "CloudWatchLogs")  # fmt: skip
    assert "30 days" in _refused(aws, server, "get-insight-summaries",
                                             "--group-name", "Default", "--start-time", "0",
                                             "--end-time", "60")  # fmt: skip
