"""The official aws-xray-sdk emits over UDP to the real server; boto3 reads back.

What the SDK sent must come back field for field: annotations, metadata, http, user,
exceptions, embedded subsegments and subsegments streamed as separate datagrams.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter

from tests.support import ServerProcess, get_documents, wait_for


class RecordingEmitter(UDPEmitter):  # type: ignore[misc]
    """The SDK's own UDP emitter, also keeping what it sent (the expected documents)."""

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.sent: list[dict[str, Any]] = []

    def send_entity(self, entity: Any) -> None:
        import json

        self.sent.append(json.loads(entity.serialize()))
        super().send_entity(entity)


def _close_emitter() -> None:
    """The SDK never closes an emitter it replaces; close its socket ourselves."""
    old = getattr(xray_recorder, "_emitter", None)
    sock = getattr(old, "_socket", None)
    if sock is not None:
        sock.close()


@pytest.fixture
def recorder(server: ServerProcess) -> Iterator[RecordingEmitter]:
    _close_emitter()
    emitter = RecordingEmitter(f"127.0.0.1:{server.port}")
    xray_recorder.configure(
        sampling=False,
        context_missing="LOG_ERROR",
        emitter=emitter,
        daemon_address=f"127.0.0.1:{server.port}",
        streaming_threshold=2,
        service="demo-svc",
    )
    yield emitter
    xray_recorder.clear_trace_entities()
    _close_emitter()


def _emit_trace() -> str:
    segment = xray_recorder.begin_segment("demo-svc")
    segment.put_annotation("customer_id", 42)
    segment.put_annotation("tier", "gold")
    segment.put_annotation("vip", True)
    segment.put_metadata("order", {"items": [1, 2, 3], "note": "ünïcödé"}, "debug")
    segment.put_http_meta("url", "http://example.com/orders?id=7")
    segment.put_http_meta("method", "POST")
    segment.put_http_meta("user_agent", "pytest")
    segment.put_http_meta("client_ip", "10.1.2.3")
    segment.put_http_meta("status", 503)
    segment.set_user("alice")
    for i in range(4):
        with xray_recorder.in_subsegment(f"step{i}") as sub:
            sub.put_annotation("step", i)
            with xray_recorder.in_subsegment(f"inner{i}") as inner:
                inner.put_metadata("i", i)
    sub = xray_recorder.begin_subsegment("payments.example.com", namespace="remote")
    sub.put_http_meta("url", "https://payments.example.com/charge")
    sub.put_http_meta("method", "POST")
    sub.put_http_meta("status", 502)
    try:
        raise ValueError("card declined")
    except ValueError as exc:
        sub.add_exception(exc, traceback.extract_stack())
    xray_recorder.end_subsegment()
    xray_recorder.end_segment()
    return str(segment.trace_id)


def _by_id(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every entity (segments and nested subsegments) by id, children stripped."""
    found: dict[str, dict[str, Any]] = {}
    stack = list(docs)
    while stack:
        doc = dict(stack.pop())
        stack.extend(doc.pop("subsegments", []))
        found[doc["id"]] = doc
    return found


def test_documents_round_trip_exactly(server: ServerProcess, recorder: RecordingEmitter) -> None:
    trace_id = _emit_trace()
    assert len(recorder.sent) > 1, "the SDK should have streamed some subsegments separately"
    client = server.xray()

    def complete() -> list[dict[str, Any]] | None:
        docs = get_documents(client, trace_id)
        if docs is None:
            return None
        return docs if len(_by_id(docs)) >= len(_by_id(recorder.sent)) else None

    stored = wait_for(complete)
    sent = _by_id(recorder.sent)
    got = _by_id(stored)
    real = {k: v for k, v in got.items() if not v.get("inferred")}
    assert real == sent  # every field of every entity, exactly as the SDK sent it

    segments = [d for d in stored if not d.get("inferred")]
    assert len(segments) == 1, "streamed subsegments are re-nested into their segment"
    top = segments[0]
    assert {s["name"] for s in top["subsegments"]} >= {"step0", "payments.example.com"}
    step0 = next(s for s in top["subsegments"] if s["name"] == "step0")
    assert [s["name"] for s in step0["subsegments"]] == ["inner0"]

    inferred = [d for d in stored if d.get("inferred")]
    assert [(d["name"], d["origin"]) for d in inferred] == [("payments.example.com", "remote")]
    caller = next(s for s in top["subsegments"] if s["name"] == "payments.example.com")
    assert inferred[0]["parent_id"] == caller["id"]
    assert inferred[0]["fault"] is True


def test_summary_fields(server: ServerProcess, recorder: RecordingEmitter) -> None:
    before = time.time() - 1
    trace_id = _emit_trace()
    client = server.xray()

    def summary() -> dict[str, Any] | None:
        found = client.get_trace_summaries(StartTime=before, EndTime=time.time() + 1)
        return next((s for s in found["TraceSummaries"] if s["Id"] == trace_id), None)

    s = wait_for(summary)
    assert s["HasFault"] is True and s["HasError"] is False and s["HasThrottle"] is False
    assert s["IsPartial"] is False
    assert s["Http"] == {
        "HttpURL": "http://example.com/orders?id=7",
        "HttpStatus": 503,
        "HttpMethod": "POST",
        "UserAgent": "pytest",
        "ClientIp": "10.1.2.3",
    }
    service = {"Name": "demo-svc", "Names": ["demo-svc"]}
    assert s["EntryPoint"] == service
    assert s["Users"] == [{"UserName": "alice", "ServiceIds": [service]}]
    assert s["Annotations"]["tier"] == [
        {"AnnotationValue": {"StringValue": "gold"}, "ServiceIds": [service]}
    ]
    assert s["Annotations"]["vip"] == [
        {"AnnotationValue": {"BooleanValue": True}, "ServiceIds": [service]}
    ]
    assert s["Annotations"]["customer_id"][0]["AnnotationValue"] == {"NumberValue": 42}
    assert sorted(v["AnnotationValue"]["NumberValue"] for v in s["Annotations"]["step"]) == [
        0,
        1,
        2,
        3,
    ]
    assert {x["Name"] for x in s["ServiceIds"]} == {"demo-svc", "payments.example.com"}
    assert s["ResponseTime"] == pytest.approx(s["Duration"], abs=0.01)
    assert s["Revision"] >= 1


def test_centralized_sampling_uses_our_rules(server: ServerProcess) -> None:
    """The SDK's default sampler polls GetSamplingRules (unsigned) and adopts our Default
    rule; had any classic field been missing it would silently fall back to local rules."""
    from aws_xray_sdk.core.sampling.sampler import DefaultSampler

    sampler = DefaultSampler()
    xray_recorder.configure(
        sampler=sampler, daemon_address=f"127.0.0.1:{server.port}", sampling=True
    )
    try:
        sampler.start()
        rules = wait_for(lambda: sampler._cache.rules, timeout=20)
        assert [(r.name, r.rate, r.priority) for r in rules] == [("Default", 0.05, 10000)]
        # The first request of a second is borrowed from the Default rule's reservoir.
        assert (
            sampler.should_trace({"service": "demo-svc", "method": "GET", "path": "/"}) == "Default"
        )
    finally:
        xray_recorder.configure(sampling=False)
