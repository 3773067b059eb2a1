"""The CloudWatch Logs API behind the same access control as the X-Ray API: with access
keys configured, boto3's ``logs`` client signing with SigV4 for service ``logs`` gets in,
and an unsigned, mis-signed or cross-origin request is refused before any operation."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from tests.server.logs_helpers import raw_call, refused
from tests.support import ServerProcess, start_server

KEY_ID = "AKIDFLUOROSCOPELOGS"
SECRET = "logs/s3cr3t+Key0123456789abcdef"
TOKEN = "tok-logs-" + "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("secured-logs"),
        "--access-key",
        f"{KEY_ID}:{SECRET}",
        "--api-key",
        TOKEN,
        api_key=TOKEN,
    )
    yield proc
    proc.stop()


def _logs(server: ServerProcess, secret: str = SECRET, **config: Any) -> Any:
    return boto3.client(
        "logs",
        endpoint_url=server.url,
        region_name="eu-west-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
    )


def test_signed_requests_get_in(secured: ServerProcess) -> None:
    logs = _logs(secured)
    logs.create_log_group(logGroupName="/signed")
    logs.create_log_stream(logGroupName="/signed", logStreamName="s")
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName="/signed", logStreamName="s", logEvents=[{"timestamp": now, "message": "m"}]
    )
    events = logs.get_log_events(logGroupName="/signed", logStreamName="s")["events"]
    assert [e["message"] for e in events] == ["m"]


def test_unsigned_and_mis_signed_requests_are_refused(secured: ServerProcess) -> None:
    before = secured.status()["auth_failures"]
    code, _, status = refused(
        lambda: _logs(secured, signature_version=UNSIGNED).describe_log_groups()
    )
    assert (code, status) == ("MissingAuthenticationTokenException", 403)
    code, _, status = refused(lambda: _logs(secured, secret="wrong" * 6).describe_log_groups())
    assert (code, status) == ("InvalidSignatureException", 403)
    after = secured.status()["auth_failures"]
    assert after.get("missing", 0) > before.get("missing", 0)
    assert after.get("bad_signature", 0) > before.get("bad_signature", 0)
    # nothing was created by a refused call
    code, _, _ = refused(
        lambda: _logs(secured, signature_version=UNSIGNED).create_log_group(logGroupName="/never")
    )
    assert code == "MissingAuthenticationTokenException"
    assert _logs(secured).describe_log_groups(logGroupNamePrefix="/never")["logGroups"] == []


def test_a_bearer_token_gets_in_and_a_foreign_page_does_not(secured: ServerProcess) -> None:
    def call(headers: dict[str, str]) -> int:
        request = urllib.request.Request(
            f"{secured.url}/",
            data=b"{}",
            method="POST",
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "Logs_20140328.DescribeLogGroups",
                **headers,
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as err:
            return int(err.code)

    assert call({"Authorization": f"Bearer {TOKEN}"}) == 200
    assert call({"Authorization": "Bearer nope"}) == 403
    assert call({"Authorization": f"Bearer {TOKEN}", "Origin": "http://evil.example"}) == 403
    status, _, body = raw_call(secured, "Logs_20140328.DescribeLogGroups", b"{}")
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException")
