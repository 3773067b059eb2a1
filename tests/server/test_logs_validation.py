"""The CloudWatch Logs API's protocol and request validation, through boto3's ``logs``
client (its own parameter checks off where they would stop the request first) and raw
JSON 1.1 calls against a real server: each documented constraint is answered with its
documented exception type, every answer carries ``x-amzn-RequestId``, and the X-Ray API
on the same port is untouched."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.server.logs_helpers import logs_client, raw_call, refused
from tests.support import ServerProcess, get_documents, segment, wait_for


@pytest.fixture(scope="module")
def logs(server: ServerProcess) -> Any:
    return logs_client(server, validate=False)


def test_unknown_operations_are_refused_like_aws_does(server: ServerProcess) -> None:
    for target in ("Logs_20140328.NoSuchOperation", "DynamoDB_20120810.ListTables", None):
        status, headers, body = raw_call(server, target, b"{}")
        assert status == 400
        assert body["__type"] == "UnknownOperationException"
        assert headers["x-amzn-errortype"] == "UnknownOperationException"
        assert headers["x-amzn-requestid"]


def test_answers_are_json_1_1_with_a_request_id(server: ServerProcess) -> None:
    status, headers, body = raw_call(server, "Logs_20140328.DescribeQueries", b"")
    assert status == 200 and body == {"queries": []}
    assert headers["content-type"] == "application/x-amz-json-1.1"
    assert len(headers["x-amzn-requestid"]) == 36


def test_a_body_that_is_not_a_json_object_is_a_serialization_error(server: ServerProcess) -> None:
    for body in (b"{not json", b"[1, 2]", b'"text"'):
        status, _, answer = raw_call(server, "Logs_20140328.DescribeLogGroups", body)
        assert (status, answer["__type"]) == (400, "SerializationException")


def test_the_xray_api_keeps_working_beside_it(server: ServerProcess) -> None:
    doc = segment()
    xray = server.xray()
    assert (
        xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(doc)])["UnprocessedTraceSegments"]
        == []
    )
    assert wait_for(lambda: get_documents(xray, doc["trace_id"]))
    status, _, body = raw_call(server, None, b"{}", "application/json")
    assert status == 400 and body["__type"] == "UnknownOperationException"


GROUP_NAME_CASES = [
    ("", "length greater than or equal to 1"),
    ("a" * 513, "length less than or equal to 512"),
    ("bad name", "regular expression pattern"),
    ("bad:name", "regular expression pattern"),
]


@pytest.mark.parametrize(("name", "says"), GROUP_NAME_CASES)
def test_group_names_are_checked(logs: Any, name: str, says: str) -> None:
    code, message, status = refused(lambda: logs.create_log_group(logGroupName=name))
    assert (code, status) == ("InvalidParameterException", 400)
    assert says in message and "'logGroupName'" in message


def test_group_names_in_the_aws_namespace_are_refused(logs: Any) -> None:
    code, message, _ = refused(lambda: logs.create_log_group(logGroupName="aws/mine"))
    assert code == "InvalidParameterException" and "aws/" in message


def test_a_missing_required_member_is_named(logs: Any) -> None:
    code, message, _ = refused(lambda: logs.delete_log_group())
    assert code == "InvalidParameterException"
    assert "Value null at 'logGroupName'" in message


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ({"limit": 0}, "greater than or equal to 1"),
        ({"limit": 51}, "less than or equal to 50"),
        ({"limit": "ten"}, "integer"),
        ({"logGroupNamePrefix": "/a", "logGroupNamePattern": "b"}, "mutually exclusive"),
        ({"logGroupClass": "GOLD"}, "enum value set"),
        ({"logGroupIdentifiers": []}, "greater than or equal to 1"),
        ({"nextToken": "%%%"}, "nextToken"),
    ],
)
def test_describe_log_groups_members(logs: Any, call: dict[str, Any], says: str) -> None:
    code, message, _ = refused(lambda: logs.describe_log_groups(**call))
    assert code == "InvalidParameterException" and says in message


def test_describe_log_streams_members(logs: Any) -> None:
    for call, says in (
        ({}, "Either LogGroupName or LogGroupIdentifier"),
        ({"logGroupName": "/a", "logGroupIdentifier": "/a"}, "mutually exclusive"),
        ({"logGroupName": "/a", "orderBy": "Size"}, "enum value set"),
        (
            {"logGroupName": "/a", "orderBy": "LastEventTime", "logStreamNamePrefix": "x"},
            "LastEventTime",
        ),
        ({"logGroupName": "/a", "logStreamNamePrefix": "a:b"}, "regular expression"),
    ):
        code, message, _ = refused(lambda c=call: logs.describe_log_streams(**c))  # type: ignore[misc]
        assert code == "InvalidParameterException" and says in message, (call, message)


def test_stream_names_are_checked(logs: Any) -> None:
    for name in ("a:b", "a*b", "", "s" * 513):
        code, _, _ = refused(
            lambda n=name: logs.create_log_stream(logGroupName="/g", logStreamName=n)  # type: ignore[misc]
        )
        assert code == "InvalidParameterException", name


def test_retention_must_be_one_of_the_documented_days(logs: Any) -> None:
    for days in (0, 2, 4000, -1):
        code, message, _ = refused(
            lambda d=days: logs.put_retention_policy(logGroupName="/g", retentionInDays=d)  # type: ignore[misc]
        )
        assert code == "InvalidParameterException" and "3653" in message


def _put(logs: Any, events: list[dict[str, Any]]) -> tuple[str, str, int]:
    return refused(
        lambda: logs.put_log_events(logGroupName="/g", logStreamName="s", logEvents=events)
    )


def test_put_log_events_batch_limits(logs: Any) -> None:
    now = int(time.time() * 1000)
    code, message, _ = _put(logs, [])
    assert code == "InvalidParameterException" and "logEvents" in message
    code, message, _ = _put(logs, [{"timestamp": now, "message": "x"}] * 10_001)
    assert code == "InvalidParameterException" and "10000" in message
    # 1 MiB counts the messages' UTF-8 bytes plus 26 per event: 4 events of 262,118
    # bytes fit exactly (tests/server/test_logs_api.py), one byte more does not
    fits = 1_048_576 // 4 - 26
    code, message, _ = _put(logs, [{"timestamp": now, "message": "é" * (fits // 2) + "x"}] * 4)
    assert code == "InvalidParameterException" and "too large" in message
    code, message, _ = _put(logs, [{"timestamp": now, "message": ""}])
    assert code == "InvalidParameterException" and "message" in message
    code, message, _ = _put(logs, [{"timestamp": -1, "message": "x"}])
    assert code == "InvalidParameterException" and "timestamp" in message
    code, message, _ = _put(logs, [{"message": "x"}])
    assert code == "InvalidParameterException" and "timestamp" in message


def test_put_log_events_order(logs: Any) -> None:
    now = int(time.time() * 1000)
    code, message, _ = _put(
        logs, [{"timestamp": now, "message": "b"}, {"timestamp": now - 1, "message": "a"}]
    )
    assert code == "InvalidParameterException" and "chronological order" in message


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ({"logGroupName": "/g", "logStreamNames": ["a"], "logStreamNamePrefix": "a"}, "exclusive"),
        ({"logGroupName": "/g", "logStreamNames": []}, "greater than or equal to 1"),
        ({"logGroupName": "/g", "logStreamNames": ["s"] * 101}, "less than or equal to 100"),
        ({"logGroupName": "/g", "filterPattern": "x" * 1025}, "less than or equal to 1024"),
        ({"logGroupName": "/g", "limit": 10_001}, "less than or equal to 10000"),
        ({"logGroupName": "/g", "startTime": -5}, "greater than or equal to 0"),
        ({"logGroupName": "/g", "nextToken": "not-a-token"}, "nextToken"),
    ],
)
def test_filter_log_events_members(logs: Any, call: dict[str, Any], says: str) -> None:
    code, message, _ = refused(lambda: logs.filter_log_events(**call))
    assert code == "InvalidParameterException" and says in message


def test_get_log_events_members(logs: Any) -> None:
    for call, says in (
        ({"logStreamName": "s"}, "Either LogGroupName or LogGroupIdentifier"),
        ({"logGroupName": "/g"}, "Value null at 'logStreamName'"),
        ({"logGroupName": "/g", "logStreamName": "s", "limit": 0}, "greater than or equal"),
        ({"logGroupName": "/g", "logStreamName": "s", "nextToken": "x/1/2"}, "nextToken"),
    ):
        code, message, _ = refused(lambda c=call: logs.get_log_events(**c))  # type: ignore[misc]
        assert code == "InvalidParameterException" and says in message, (call, message)


@pytest.mark.parametrize(
    ("call", "says"),
    [
        ({}, "Exactly one of"),
        ({"logGroupName": "/g", "logGroupNames": ["/g"]}, "Exactly one of"),
        ({"logGroupNames": ["/g"] * 51}, "less than or equal to 50"),
        ({"logGroupName": "/g", "limit": 100_001}, "less than or equal to 100000"),
        ({"logGroupName": "/g", "limit": 0}, "greater than or equal to 1"),
        ({"logGroupName": "/g", "queryLanguage": "SQL"}, "CWLI"),
        ({"logGroupName": "/g", "queryString": "x" * 10_001}, "less than or equal to 10000"),
        ({"logGroupName": "/g", "startTime": 100, "endTime": 50}, "endTime"),
    ],
)
def test_start_query_members(logs: Any, call: dict[str, Any], says: str) -> None:
    request = {"startTime": 0, "endTime": 60, "queryString": "fields @message", **call}
    code, message, _ = refused(lambda: logs.start_query(**request))
    assert code == "InvalidParameterException" and says in message


def test_unknown_query_ids(logs: Any) -> None:
    for call in (logs.get_query_results, logs.stop_query):
        code, _, status = refused(lambda c=call: c(queryId="0" * 32))  # type: ignore[misc]
        assert (code, status) == ("ResourceNotFoundException", 400)
    code, _, _ = refused(lambda: logs.get_query_results(queryId=""))
    assert code == "InvalidParameterException"
    code, _, _ = refused(lambda: logs.describe_queries(maxResults=1001))
    assert code == "InvalidParameterException"
