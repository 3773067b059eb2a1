"""schemathesis against a real server, driven by the OpenAPI description it ships.

Requests generated from the shipped description (``test_openapi.py`` checks the server
serves exactly that file) - valid ones and, in negative mode, ones breaking the schema -
go to every operation of a live ``fluoroscope server``; each response must not be a
server error and must conform to the description: its status code's schema and its
content type. A bounded number of examples per operation keeps the run short;
hypothesis shrinks any failure to a minimal request.

The cases are drawn from schemathesis's strategies in an ordinary hypothesis test, one
per operation, not through schemathesis's pytest plugin: the plugin builds pytest items
from pytest internals, and pytest 9.2 (what a fresh install gets) broke it
(``'Function' object has no attribute '_nodeid'``).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

import botocore.exceptions
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from fluoroscope.server.openapi import OPENAPI_PATH
from tests.support import ServerProcess

# per operation; more for a longer hunt: SCHEMATHESIS_EXAMPLES=1000 pytest ...
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "60"))

SCHEMA = schemathesis.openapi.from_path(OPENAPI_PATH)


def _labels() -> list[str]:
    labels = []
    for result in SCHEMA.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        labels.append(result.ok().label)
    return sorted(labels)


OPERATIONS = _labels()


def test_every_operation_is_fuzzed() -> None:
    assert len(OPERATIONS) > 30
    assert {"POST /TraceSegments", "POST /ServiceGraph", "GET /api/status"} <= set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_api_conforms_to_its_description(server: ServerProcess, label: str) -> None:
    operation = SCHEMA.find_operation_by_label(label)
    assert operation is not None
    cases = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in GenerationMode))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=cases)
    def conforms(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
        case.call_and_validate(
            base_url=server.url,
            checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            timeout=30,
        )

    conforms()


# What schemathesis found, pinned (each was a 500 or an answer outside the description).


_WINDOWED = ["get_trace_summaries", "get_service_graph", "get_time_series_service_statistics"]


@pytest.mark.parametrize("operation", _WINDOWED)
def test_times_before_1970_are_invalid_requests(server: ServerProcess, operation: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        getattr(server.xray(), operation)(StartTime=-100_000, EndTime=-100_000)
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "1970" in err.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    "path", ["/TraceSummaries", "/ServiceGraph", "/TimeSeriesServiceStatistics"]
)
def test_times_past_the_stores_last_second_are_invalid_requests(
    server: ServerProcess, path: str
) -> None:
    """4.58e94 s reached the service graph's statement as a float the engine refused (a
    500); the store's times end at 2**32 - 1 s, which is still served. (boto3 cannot
    send such times: the requests are made by hand.)"""

    def post(start: object, end: object) -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(
            f"{server.url}{path}",
            data=json.dumps({"StartTime": start, "EndTime": end}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    assert post(2**32 - 61, 2**32 - 1)[0] == 200
    for start, end in [(4.58e94, 4.58e94), (2**32 - 61, 2**32), ("9999-01-01T00:00:00Z", 0)]:
        status, answer = post(start, end)
        assert status == 400, answer
        assert answer["__type"] == "InvalidRequestException"
        assert "2106-02-07T06:28:15Z" in answer["message"]


def test_trace_ids_longer_than_a_trace_id_are_invalid_requests(server: ServerProcess) -> None:
    client = server.xray()
    assert client.batch_get_traces(TraceIds=["1-short"])["UnprocessedTraceIds"] == ["1-short"]
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.batch_get_traces(TraceIds=["1-short", "x" * 36])
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
