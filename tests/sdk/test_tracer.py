"""Segments, subsegments and captures, checked on the wire (real UDP on loopback)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from fluoroscope.model.trace_header import parse_trace_header
from fluoroscope.sdk import InMemoryEmitter, Tracer, current_entity
from tests.sdk.conftest import UDPDaemon, by_name, flatten


def test_segment_with_subsegments_is_one_valid_document(tracer: Tracer, daemon: UDPDaemon) -> None:
    with tracer.segment() as seg:
        seg.put_annotation("customer", "acme")
        with tracer.subsegment("parse") as sub:
            sub.put_annotation("user_id", 42)
            sub.put_annotation("ratio", 0.5)
            sub.put_annotation("vip", True)
            sub.put_metadata("payload", {"a": [1, 2]}, namespace="debug")
            sub.put_metadata("raw", object())
    tracer.flush()
    (doc,) = daemon.documents(1)
    assert doc["name"] == "test-svc"
    assert doc["id"] == seg.id
    assert doc["trace_id"] == seg.trace_id
    assert doc["annotations"] == {"customer": "acme"}
    assert doc["service"]["runtime"] == "CPython"
    assert doc["aws"]["xray"]["sdk"] == "Fluoroscope for Python"
    (parse,) = doc["subsegments"]
    assert parse["name"] == "parse"
    assert parse["annotations"] == {"user_id": 42, "ratio": 0.5, "vip": True}
    assert parse["metadata"]["debug"] == {"payload": {"a": [1, 2]}}
    assert parse["metadata"]["default"]["raw"].startswith("<object object")
    assert doc["start_time"] <= parse["start_time"] <= parse["end_time"] <= doc["end_time"]


def test_http_aws_sql_blocks_and_status_flags(tracer: Tracer, daemon: UDPDaemon) -> None:
    with tracer.segment("web") as seg:
        seg.set_http_request(method="GET", url="http://x/y", client_ip="1.2.3.4")
        seg.set_user("alice")
        for name, status in (("ok", 200), ("missing", 404), ("slow-down", 429), ("broken", 503)):
            with tracer.subsegment(name, namespace="remote") as sub:
                sub.set_http_request(method="POST", url=f"http://down/{name}", traced=True)
                sub.set_http_response(status=status, content_length=12)
        with tracer.subsegment("dynamodb", namespace="aws") as sub:
            sub.set_aws(operation="PutItem", region="us-east-1", table_name="orders")
            sub.set_aws({"request_id": "R1"})
        with tracer.subsegment("db@localhost", namespace="remote") as sub:
            sub.set_sql(url="postgresql://localhost/db", sanitized_query="SELECT 1")
        seg.set_http_response(status=200)
    tracer.flush()
    docs = daemon.documents(1)
    ents = by_name(docs)
    assert ents["web"]["user"] == "alice"
    assert ents["web"]["http"] == {
        "request": {"method": "GET", "url": "http://x/y", "client_ip": "1.2.3.4"},
        "response": {"status": 200},
    }
    assert "error" not in ents["ok"]
    assert "fault" not in ents["ok"]
    assert ents["missing"]["error"] is True
    assert "fault" not in ents["missing"]
    assert ents["slow-down"]["throttle"] is True
    assert ents["slow-down"]["error"] is True
    assert ents["broken"]["fault"] is True
    assert "error" not in ents["broken"]
    assert ents["broken"]["http"]["request"]["traced"] is True
    assert ents["broken"]["namespace"] == "remote"
    assert ents["dynamodb"]["namespace"] == "aws"
    assert ents["dynamodb"]["aws"] == {
        "operation": "PutItem",
        "region": "us-east-1",
        "table_name": "orders",
        "request_id": "R1",
    }
    assert ents["db@localhost"]["sql"]["sanitized_query"] == "SELECT 1"


def _raise_value_error() -> None:
    raise ValueError("bad thing")


def test_exception_becomes_cause_without_sdk_frames(tracer: Tracer, daemon: UDPDaemon) -> None:
    @tracer.capture("boom")
    def boom() -> None:
        _raise_value_error()

    with pytest.raises(ValueError, match="bad thing"), tracer.segment("svc"):
        boom()
    tracer.flush()
    ents = by_name(daemon.documents(1))
    cause = ents["boom"]["cause"]
    (exc,) = cause["exceptions"]
    assert exc["type"] == "ValueError"
    assert exc["message"] == "bad thing"
    labels = [frame["label"] for frame in exc["stack"]]
    assert labels[:2] == ["_raise_value_error", "boom"]
    assert all("fluoroscope/sdk" not in frame["path"] for frame in exc["stack"])
    assert any(frame["path"].endswith("test_tracer.py") for frame in exc["stack"])
    assert ents["boom"]["fault"] is True
    # the same exception, seen again by the segment, is written as a reference
    assert ents["svc"]["cause"] == exc["id"]
    assert ents["svc"]["fault"] is True


def test_chained_exceptions_are_linked(tracer: Tracer, daemon: UDPDaemon) -> None:
    def wrap() -> None:
        try:
            _raise_value_error()
        except ValueError as exc:
            raise RuntimeError("wrapped") from exc

    with pytest.raises(RuntimeError), tracer.segment("svc"), tracer.subsegment("work"):
        wrap()
    tracer.flush()
    work = by_name(daemon.documents(1))["work"]
    first, second = work["cause"]["exceptions"]
    assert (first["type"], second["type"]) == ("RuntimeError", "ValueError")
    assert first["cause"] == second["id"]


def test_capture_sync_async_and_async_generator(tracer: Tracer, daemon: UDPDaemon) -> None:
    @tracer.capture("getFile")
    def get_file(key: str) -> str:
        entity = current_entity()
        assert entity is not None
        assert entity.name == "getFile"
        return key.upper()

    @tracer.capture
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    @tracer.capture("stream")
    async def stream(n: int) -> AsyncIterator[int]:
        for i in range(n):
            assert current_entity().name == "stream"  # type: ignore[union-attr]
            yield i
            await asyncio.sleep(0)

    async def main() -> None:
        async with tracer.segment("svc") as seg:
            assert get_file("a") == "A"
            assert await fetch(2) == 4
            assert [i async for i in stream(3)] == [0, 1, 2]
            assert current_entity() is seg

    asyncio.run(main())
    tracer.flush()
    ents = by_name(daemon.documents(1))
    assert {"svc", "getFile", "fetch", "stream"} <= set(ents)
    assert ents["stream"]["_parent"] == ents["svc"]["id"]
    assert get_file.__name__ == "get_file"


def test_capture_as_context_manager(tracer: Tracer, daemon: UDPDaemon) -> None:
    with tracer.segment("svc"), tracer.capture("block") as sub:
        sub.put_annotation("k", 1)

    async def main() -> None:
        async with tracer.segment("svc2"), tracer.capture("ablock") as asub:
            asub.put_annotation("k", 2)

    asyncio.run(main())
    tracer.flush()
    ents = by_name(daemon.documents(2))
    assert ents["block"]["annotations"] == {"k": 1}
    assert ents["ablock"]["annotations"] == {"k": 2}


def test_invalid_annotations_are_dropped_and_logged_once(
    tracer: Tracer, daemon: UDPDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    with tracer.segment("svc") as seg:
        for _ in range(3):
            seg.put_annotation("bad key!", 1)
        seg.put_annotation("nested", {"a": 1})  # type: ignore[arg-type]
        seg.put_annotation("nan", float("nan"))
        seg.put_annotation("big", 2**70)
        seg.put_annotation("ok_key_1", "v")
        seg.put_metadata("x", 1, namespace="AWS.reserved")
    tracer.flush()
    (doc,) = daemon.documents(1)
    assert doc["annotations"] == {"ok_key_1": "v"}
    assert "metadata" not in doc
    assert sum("bad key!" in r.getMessage() for r in caplog.records) == 1


def test_names_are_sanitized(tracer: Tracer, daemon: UDPDaemon) -> None:
    with tracer.segment("svc (v2)!"), tracer.subsegment("a" * 300):
        pass
    tracer.flush()
    (doc,) = daemon.documents(1)
    assert doc["name"] == "svc v2"
    assert len(doc["subsegments"][0]["name"]) == 200


def test_in_progress_document_is_replaced_by_the_final_one(
    tracer: Tracer, daemon: UDPDaemon
) -> None:
    with tracer.segment("long") as seg:
        seg.send_in_progress()
        tracer.flush()
        (first,) = daemon.documents(1)
        assert first["in_progress"] is True
        assert "end_time" not in first
    tracer.flush()
    docs = daemon.documents(2)
    assert docs[1]["id"] == first["id"]
    assert docs[1]["end_time"] >= docs[1]["start_time"]


def test_unsampled_request_sends_nothing_but_propagates(daemon: UDPDaemon) -> None:
    tracer = Tracer(service="svc", daemon_address=daemon.address, sampler=None, sampling=True)
    incoming = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"
    with tracer.segment(trace_header=incoming) as seg:
        assert not seg.sampled
        with tracer.subsegment("child") as sub:
            sub.put_annotation("k", 1)
            header = parse_trace_header(sub.trace_header())
        assert seg.response_header() == "Root=1-5759e988-bd862e3fe1be46a994272793"
    assert header is not None
    assert header.root == "1-5759e988-bd862e3fe1be46a994272793"
    assert header.sampled == "0"
    assert header.parent is not None
    tracer.flush()
    assert daemon.quiet() == []
    tracer.close()


def test_incoming_header_is_continued_and_extra_fields_forwarded(
    tracer: Tracer, daemon: UDPDaemon
) -> None:
    incoming = (
        "Root=1-5759e988-bd862e3fe1be46a994272793; Parent=53995c3f42cd8ad8; Sampled=?;"
        "Lineage=a87bd80c:1|68fd508a:5"
    )
    with tracer.segment("api", trace_header=incoming) as seg:
        with tracer.subsegment("call", namespace="remote") as sub:
            outgoing = sub.trace_header()
        response = seg.response_header()
    assert outgoing == (
        f"Root=1-5759e988-bd862e3fe1be46a994272793;Parent={sub.id};Sampled=1;"
        "Lineage=a87bd80c:1|68fd508a:5"
    )
    assert response == "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    tracer.flush()
    (doc,) = daemon.documents(1)
    assert doc["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert doc["parent_id"] == "53995c3f42cd8ad8"


def test_malformed_header_starts_a_new_trace_and_logs_once(
    tracer: Tracer, daemon: UDPDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    for _ in range(3):
        with tracer.segment("api", trace_header="Root=garbage;Sampled=1"):
            pass
    tracer.flush()
    docs = daemon.documents(3)
    assert len({d["trace_id"] for d in docs}) == 3
    assert sum("malformed" in r.getMessage() for r in caplog.records) == 1


def test_subsegment_closing_after_its_segment_is_sent_independently(
    tracer: Tracer, daemon: UDPDaemon
) -> None:
    with tracer.segment("svc") as seg:
        late = tracer.subsegment("late")
        late.__enter__()
        seg_token_holder = current_entity()
        assert seg_token_holder is late
        late_id = late.id
    # the segment's `with` restored the context; close `late` on its own
    late.close()
    tracer.flush()
    docs = daemon.documents(2)
    ents = flatten(docs)
    assert ents[late_id]["type"] == "subsegment"
    assert ents[late_id]["_parent"] == seg.id
    assert ents[late_id]["trace_id"] == seg.trace_id


def test_generator_capture_spans_iteration_only_inside_body(
    tracer: Tracer, daemon: UDPDaemon
) -> None:
    seen: list[str] = []

    @tracer.capture("numbers")
    def numbers(n: int) -> Iterator[int]:
        for i in range(n):
            seen.append(current_entity().name)  # type: ignore[union-attr]
            yield i

    with tracer.segment("svc") as seg:
        for _ in numbers(2):
            assert current_entity() is seg
    assert seen == ["numbers", "numbers"]
    tracer.flush()
    assert by_name(daemon.documents(1))["numbers"]["_parent"] == seg.id


def test_in_memory_emitter_keeps_documents() -> None:
    emitter = InMemoryEmitter()
    tracer = Tracer(service="svc", emitter=emitter, sampling=False)
    with tracer.segment() as seg, tracer.subsegment("a"):
        pass
    assert [d["id"] for d in emitter.segments()] == [seg.id]
    assert [s["name"] for s in emitter.subsegments()] == ["a"]
    assert emitter.payloads[0].startswith(b'{"format":"json","version":1}\n')
    emitter.clear()
    assert emitter.documents == []
