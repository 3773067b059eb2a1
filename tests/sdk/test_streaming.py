"""Streaming: closed subsegments are sent independently so no datagram reaches 64 KiB."""

from __future__ import annotations

import threading
import time

import pytest

from fluoroscope.model.documents import validate_document
from fluoroscope.sdk import InMemoryEmitter, Tracer, carry
from fluoroscope.sdk._serialize import MAX_DOCUMENT_BYTES
from tests.sdk.conftest import UDPDaemon, flatten


def test_threshold_streams_closed_subsegments_as_independent_documents(
    daemon: UDPDaemon,
) -> None:
    tracer = Tracer(
        service="svc", daemon_address=daemon.address, sampling=False, streaming_threshold=10
    )
    with tracer.segment() as seg:
        for i in range(95):
            with tracer.subsegment(f"s{i}"):
                pass
    tracer.flush()
    docs = daemon.documents(2, until=lambda d: len(flatten(d)) == 96)
    ents = flatten(docs)
    assert len(ents) == 96
    assert all(e["_parent"] == seg.id for e in ents.values() if e["id"] != seg.id)
    independent = [d for d in docs if d.get("type") == "subsegment"]
    assert len(independent) >= 80
    (segment_doc,) = [d for d in docs if d.get("type") != "subsegment"]
    assert len(segment_doc.get("subsegments", [])) <= 10
    tracer.close()


def test_nested_subtrees_stream_and_keep_their_parents(daemon: UDPDaemon) -> None:
    tracer = Tracer(
        service="svc", daemon_address=daemon.address, sampling=False, streaming_threshold=5
    )
    with tracer.segment():
        for i in range(6):
            with tracer.subsegment(f"outer{i}"):
                for j in range(4):
                    with tracer.subsegment(f"inner{i}-{j}"):
                        pass
    tracer.flush()
    ents = flatten(daemon.documents(1, until=lambda d: len(flatten(d)) == 31))
    names = {e["id"]: e["name"] for e in ents.values()}
    for e in ents.values():
        if e["name"].startswith("inner"):
            assert names[e["_parent"]] == "outer" + e["name"][5:].split("-")[0]
    tracer.close()


def test_large_metadata_is_split_so_every_datagram_fits(daemon: UDPDaemon) -> None:
    tracer = Tracer(service="svc", daemon_address=daemon.address, sampling=False)
    with tracer.segment():
        for i in range(12):
            with tracer.subsegment(f"blob{i}") as sub:
                sub.put_metadata("blob", "x" * 20_000)
    tracer.flush()
    docs = daemon.documents(2, until=lambda d: len(flatten(d)) == 13)  # the fixture checks sizes
    assert {e["name"] for e in flatten(docs).values()} >= {f"blob{i}" for i in range(12)}
    assert all(
        e["metadata"]["default"]["blob"] == "x" * 20_000
        for e in flatten(docs).values()
        if e["name"].startswith("blob")
    )
    # as many children as fit stay embedded (3 of ~20 KB each), the rest go on their own
    (segment_doc,) = [d for d in docs if d.get("type") != "subsegment"]
    assert [s["name"] for s in segment_doc["subsegments"]] == ["blob0", "blob1", "blob2"]
    assert len(docs) == 10
    tracer.close()


def test_entity_too_large_alone_loses_metadata_then_is_sent(
    daemon: UDPDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    tracer = Tracer(service="svc", daemon_address=daemon.address, sampling=False)
    with tracer.segment():
        with tracer.subsegment("huge") as sub:
            sub.put_metadata("blob", "y" * 100_000)
            sub.put_annotation("kept", 1)
        with tracer.subsegment("small"):
            pass
    tracer.flush()
    ents = {
        e["name"]: e
        for e in flatten(daemon.documents(2, until=lambda d: len(flatten(d)) == 3)).values()
    }
    assert "metadata" not in ents["huge"]
    assert ents["huge"]["annotations"] == {"kept": 1}
    assert sum("too large" in r.getMessage() for r in caplog.records) == 1
    assert "small" in ents
    tracer.close()


def test_deep_nesting_is_split_below_the_embedding_limit() -> None:
    emitter = InMemoryEmitter()
    tracer = Tracer(service="svc", emitter=emitter, sampling=False)
    depth = 45
    with tracer.segment():
        scopes = []
        for i in range(depth):
            scope = tracer.subsegment(f"d{i}")
            scope.__enter__()
            scopes.append(scope)
        for scope in reversed(scopes):
            scope.__exit__(None, None, None)
    docs = emitter.documents
    assert len(docs) >= 2
    for doc in docs:
        validate_document(doc, now=time.time())
    assert len(flatten(docs)) == depth + 1
    assert all(len(p) < 64 * 1024 for p in emitter.payloads)


def test_max_document_bytes_leaves_room_for_the_header() -> None:
    assert MAX_DOCUMENT_BYTES + len(b'{"format":"json","version":1}\n') <= 65507


def test_concurrent_streaming_loses_and_duplicates_nothing(daemon: UDPDaemon) -> None:
    tracer = Tracer(
        service="svc", daemon_address=daemon.address, sampling=False, streaming_threshold=7
    )
    threads, per_thread = 8, 300

    def work(t: int) -> None:
        for i in range(per_thread):
            with tracer.subsegment(f"t{t}-{i}"):
                if i % 10 == 0:
                    with tracer.subsegment(f"t{t}-{i}-inner"):
                        pass

    with tracer.segment() as seg:
        pool = [threading.Thread(target=carry(work), args=(t,)) for t in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
    tracer.flush()
    expected = 1 + threads * per_thread + threads * (per_thread // 10)
    docs = daemon.documents(1, until=lambda d: len(flatten(d)) >= expected, timeout=10)
    ents = flatten(docs)  # raises on any entity sent twice
    assert len(ents) == expected
    names = {e["id"]: e["name"] for e in ents.values()}
    for e in ents.values():
        if e["name"].endswith("-inner"):
            assert names[e["_parent"]] == e["name"][: -len("-inner")]
        elif e["id"] != seg.id:
            assert e["_parent"] == seg.id
    tracer.close()
