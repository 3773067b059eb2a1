"""The demo's Lambda functions, called in this process, checked through their traces with
the SDK's own pytest fixture (``fluoroscope_traces``): how many DynamoDB and S3 calls a
request makes, where the payments call happens, that nothing faults, and — on purpose —
that the legacy-order bug fails ``assert_no_fault`` naming the entry and the exception.

The functions talk to the demo's real backends (moto in its own process, the payments API
on a loopback thread, set to never fail); no server or daemon is involved: the fixture
records in memory.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace

import pytest

from fluoroscope.demo.app import BUCKET, REGION, TABLE
from fluoroscope.demo.backends import AwsEmulator, PaymentsApi
from fluoroscope.sdk.instrument import get_instrumentor
from fluoroscope.sdk.testing import TraceRecorder

MODULE = "fluoroscope.demo.functions"


@pytest.fixture(scope="module")
def functions() -> Iterator[ModuleType]:
    """``fluoroscope.demo.functions`` imported against the demo's backends; its
    instrumentation of botocore/requests/httpx undone afterwards."""
    aws = AwsEmulator(table=TABLE, bucket=BUCKET, region=REGION)
    payments = PaymentsApi(fault_rate=0.0, throttle_rate=0.0, seed=7)
    aws.start()
    payments.start()
    env = {
        "TABLE_NAME": TABLE,
        "BUCKET_NAME": BUCKET,
        "PAYMENTS_URL": payments.url,
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_LAMBDA_FUNCTION_NAME": "orders",
        "NO_PROXY": "127.0.0.1",
    }
    patch = pytest.MonkeyPatch()
    for key in ("AWS_PROFILE", "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        patch.delenv(key, raising=False)
    for key, value in env.items():
        patch.setenv(key, value)
    sys.modules.pop(MODULE, None)
    try:
        yield importlib.import_module(MODULE)
    finally:
        sys.modules.pop(MODULE, None)
        for name in ("botocore", "requests", "httpx"):
            inst = get_instrumentor(name)
            if inst is not None:
                inst.uninstrument()
        patch.undo()
        payments.close()
        aws.close()


def _post(order_id: str) -> dict[str, object]:
    items = [{"sku": "book", "price": 12.5, "qty": 2}]
    return {"body": json.dumps({"orderId": order_id, "items": items, "customer": "ada"})}


CONTEXT = SimpleNamespace(aws_request_id="req-1", invoked_function_arn="arn:aws:lambda:x")


@pytest.mark.slow
def test_create_order_stays_within_its_call_budget(
    functions: ModuleType, fluoroscope_traces: TraceRecorder
) -> None:
    response = functions.create_order(_post("budget-1"), CONTEXT)
    assert response["statusCode"] == 201, response
    trace = fluoroscope_traces.one()
    trace.assert_no_fault()
    trace.assert_calls("DynamoDB", exactly=1, operation="PutItem")
    trace.assert_calls("S3 PutObject", exactly=1)
    trace.assert_calls("127.0.0.1*", exactly=1, namespace="remote")  # the payments API
    trace.assert_no_call(namespace="remote", inside="validateOrder")
    trace.assert_no_call("S3", inside="DynamoDB")
    trace.assert_self_time_under(1.0)  # the function's own code, calls excluded


@pytest.mark.slow
def test_get_order_reads_once_and_fetches_the_receipt_in_get_file(
    functions: ModuleType, fluoroscope_traces: TraceRecorder
) -> None:
    response = functions.get_order({"pathParameters": {"id": "seed-0001"}}, CONTEXT)
    assert response["statusCode"] == 200, response
    trace = fluoroscope_traces.one()
    trace.assert_no_error()
    trace.assert_calls("DynamoDB", at_most=1)
    s3 = trace.assert_calls("S3 GetObject", exactly=1)
    assert s3[0].parent is not None
    assert s3[0].parent.name == "getFile"


@pytest.mark.slow
def test_the_legacy_bug_fails_no_fault_with_its_exception(
    functions: ModuleType, fluoroscope_traces: TraceRecorder
) -> None:
    with pytest.raises(KeyError):
        functions.get_order({"pathParameters": {"id": "legacy-42"}}, CONTEXT)
    trace = fluoroscope_traces.one()
    trace.assert_no_call("DynamoDB")  # it crashed before reading anything
    with pytest.raises(AssertionError) as failed:
        trace.assert_no_fault()
    text = str(failed.value)
    marked = [line for line in text.splitlines() if line.lstrip().startswith(">>")]
    assert any("loadLegacyOrder" in line and "FAULT" in line for line in marked), text
    assert "KeyError: 'amount_cents'" in text, text
    assert "at _parse_legacy (" in text, text
