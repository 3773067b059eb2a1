"""How the project's exceptions are answered on the CloudWatch Logs API: the documented
exception names and statuses (botocore retries ThrottlingException and 5xx), the JSON 1.1
error shape, and ``queryCompileError`` for a malformed query."""

from __future__ import annotations

import orjson
import pytest

from fluoroscope.model.errors import (
    FluoroscopeError,
    InvalidRequest,
    ResourceNotFound,
    StoreError,
    StoreUnwritable,
    Throttled,
)
from fluoroscope.server.logs import as_logs_error, logs_error
from fluoroscope.server.logsqueries import malformed_query
from fluoroscope.store.logs import LogGroupExists, LogGroupNotFound, LogStreamExists


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (LogGroupNotFound("/g"), "ResourceNotFoundException", 400),
        (ResourceNotFound("gone"), "ResourceNotFoundException", 400),
        (LogGroupExists("/g"), "ResourceAlreadyExistsException", 400),
        (LogStreamExists("s"), "ResourceAlreadyExistsException", 400),
        (InvalidRequest("bad"), "InvalidParameterException", 400),
        (Throttled("full"), "ThrottlingException", 400),
        (StoreUnwritable("disk", reason="disk full"), "ServiceUnavailableException", 503),
        (StoreError("engine"), "ServiceUnavailableException", 503),
    ],
)
def test_project_errors_become_documented_exceptions(
    exc: FluoroscopeError, code: str, status: int
) -> None:
    error = as_logs_error(exc)
    assert error is not None and (error.code, error.status) == (code, status)
    response = logs_error(error)
    assert response.status_code == status
    assert response.headers["x-amzn-ErrorType"] == code
    assert response.headers["content-type"] == "application/x-amz-json-1.1"
    assert response.headers["x-amzn-RequestId"]
    assert orjson.loads(response.body)["__type"] == code
    assert ("retry-after" in response.headers) == (status == 503)


def test_a_bug_is_not_disguised() -> None:
    assert as_logs_error(KeyError("x")) is None


def test_malformed_query_carries_its_location() -> None:
    body = orjson.loads(logs_error(malformed_query("long\n^", 3, 5, "short")).body)
    assert body == {
        "__type": "MalformedQueryException",
        "message": "long\n^",
        "queryCompileError": {
            "location": {"startCharOffset": 3, "endCharOffset": 5},
            "message": "short",
        },
    }
