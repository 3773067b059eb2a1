"""The Lambda handler decorator: continues _X_AMZN_TRACE_ID, cold start, flush."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from fluoroscope.sdk import Tracer, current_entity, lambda_handler
from fluoroscope.sdk import _lambda as lambda_module
from tests.sdk.conftest import UDPDaemon, flatten

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
PARENT = "557abcec3ee5a047"


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lambda_module, "_cold", [True])
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders-fn")


def _context() -> Any:
    return SimpleNamespace(
        aws_request_id="req-1",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:orders-fn",
    )


def test_invocations_continue_the_header_and_mark_cold_start(
    monkeypatch: pytest.MonkeyPatch, daemon: UDPDaemon
) -> None:
    # a long interval: only the decorator's flush can deliver before the handler returns
    tracer = Tracer(service="ignored", daemon_address=daemon.address, sampling=False)
    tracer.emitter._interval = 3600.0  # type: ignore[attr-defined]

    @lambda_handler(tracer=tracer)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with tracer.subsegment("s3", namespace="aws") as sub:
            sub.set_aws(operation="GetObject", bucket_name="b")
        assert current_entity() is not None
        return {"ok": event["n"]}

    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={ROOT};Parent={PARENT};Sampled=1")
    assert handler({"n": 1}, _context()) == {"ok": 1}
    first = daemon.documents(1)
    assert len(first) == 1  # delivered before returning, without the background sender
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={ROOT};Parent=1111222233334444;Sampled=1")
    handler({"n": 2}, _context())
    docs = daemon.documents(2)
    invocations = [d for d in docs if d["name"] == "orders-fn"]
    assert [d["type"] for d in invocations] == ["subsegment", "subsegment"]
    assert [d["parent_id"] for d in invocations] == [PARENT, "1111222233334444"]
    assert all(d["trace_id"] == ROOT for d in invocations)
    assert [d["annotations"]["cold_start"] for d in invocations] == [True, False]
    assert invocations[0]["metadata"]["lambda"]["request_id"] == "req-1"
    (s3,) = invocations[0]["subsegments"]
    assert s3["namespace"] == "aws"
    assert s3["aws"]["bucket_name"] == "b"
    assert not any(d["id"] == PARENT for d in flatten(docs).values())  # the facade is never sent
    tracer.close()


def test_exceptions_are_recorded_reraised_and_flushed(
    monkeypatch: pytest.MonkeyPatch, daemon: UDPDaemon
) -> None:
    tracer = Tracer(service="svc", daemon_address=daemon.address, sampling=False)

    @tracer.lambda_handler
    def handler(event: Any, context: Any) -> None:
        raise RuntimeError("handler failed")

    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={ROOT};Parent={PARENT};Sampled=1")
    with pytest.raises(RuntimeError, match="handler failed"):
        handler({}, None)
    (doc,) = daemon.documents(1)
    assert doc["fault"] is True
    assert doc["cause"]["exceptions"][0]["message"] == "handler failed"
    tracer.close()


def test_unsampled_invocation_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, daemon: UDPDaemon
) -> None:
    tracer = Tracer(service="svc", daemon_address=daemon.address, sampling=False)
    headers: list[str | None] = []

    @lambda_handler(tracer=tracer)
    def handler(event: Any, context: Any) -> None:
        with tracer.subsegment("call", namespace="remote") as sub:
            headers.append(sub.trace_header())

    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={ROOT};Parent={PARENT};Sampled=0")
    handler({}, None)
    assert headers == [f"Root={ROOT};Parent={PARENT};Sampled=0"]
    assert daemon.quiet() == []
    tracer.close()


def test_without_header_a_local_segment_is_recorded(
    monkeypatch: pytest.MonkeyPatch, daemon: UDPDaemon
) -> None:
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    tracer = Tracer(service="svc", daemon_address=daemon.address, sampling=False)

    @lambda_handler(tracer=tracer, name="local-fn")
    def handler(event: Any, context: Any) -> str:
        return "done"

    assert handler({}, None) == "done"
    (doc,) = daemon.documents(1)
    assert doc["name"] == "local-fn"
    assert "type" not in doc
    (invocation,) = doc["subsegments"]
    assert invocation["annotations"] == {"cold_start": True}
    tracer.close()
