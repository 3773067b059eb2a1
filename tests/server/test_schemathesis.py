"""schemathesis against a real server, driven by the OpenAPI description it serves.

Requests generated from ``GET /openapi.json`` (valid ones and, in negative mode, ones
breaking the schema) go to every operation of a live ``fluoroscope server``; each
response must not be a server error and must conform to the description: its status
code's schema and its content type. A bounded number of examples per operation keeps
the run short; hypothesis shrinks any failure to a minimal request.
"""

from __future__ import annotations

import os

import botocore.exceptions
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.support import ServerProcess

# per operation; more for a longer hunt: SCHEMATHESIS_EXAMPLES=1000 pytest ...
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "60"))


@pytest.fixture(scope="module")
def api_schema(server: ServerProcess) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_conforms_to_its_description(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    case.call_and_validate(
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        timeout=30,
    )


# What schemathesis found, pinned (each was a 500 or an answer outside the description).


@pytest.mark.parametrize("operation", ["get_trace_summaries", "get_service_graph",
                                       "get_time_series_service_statistics"])  # fmt: skip
def test_times_before_1970_are_invalid_requests(server: ServerProcess, operation: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        getattr(server.xray(), operation)(StartTime=-100_000, EndTime=-100_000)
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "1970" in err.value.response["Error"]["Message"]


def test_trace_ids_longer_than_a_trace_id_are_invalid_requests(server: ServerProcess) -> None:
    client = server.xray()
    assert client.batch_get_traces(TraceIds=["1-short"])["UnprocessedTraceIds"] == ["1-short"]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.batch_get_traces(TraceIds=["1-short", "x" * 36])
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
