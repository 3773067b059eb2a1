"""Helpers for the CloudWatch Logs API tests: boto3's ``logs`` client pointed at a
server, raw JSON 1.1 calls, and the error code of a refused call."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from tests.support import ServerProcess


def logs_client(server: ServerProcess, *, validate: bool = True, retries: int = 1) -> Any:
    """boto3's ``logs`` client for ``server``; ``validate=False`` turns off botocore's
    own checks of the parameters, so that the server's are what answers."""
    return boto3.client(
        "logs",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(
            parameter_validation=validate,
            retries={"max_attempts": retries, "mode": "standard"},
            read_timeout=60,
        ),
    )


def refused(call: Callable[[], Any]) -> tuple[str, str, int]:
    """(code, message, HTTP status) of the error ``call`` gets."""
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    status = caught.value.response["ResponseMetadata"]["HTTPStatusCode"]
    return str(error["Code"]), str(error.get("Message", "")), int(status)


def raw_call(
    server: ServerProcess, target: str | None, body: bytes, content_type: str | None = None
) -> tuple[int, dict[str, str], Any]:
    """POST ``body`` to ``/`` with ``X-Amz-Target: target``: (status, headers, JSON)."""
    headers = {"Content-Type": content_type or "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = urllib.request.Request(f"{server.url}/", data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, got, data = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        status, got, data = err.code, dict(err.headers), err.read()
    return status, {k.lower(): v for k, v in got.items()}, json.loads(data or b"null")
