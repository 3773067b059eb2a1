"""The pipeline keeps receiving while the engine is busy, and its buffers are bounded."""

from __future__ import annotations

import json
import threading
import time

import pytest

from fluoroscope.ingest.pipeline import Pipeline
from fluoroscope.model.errors import Throttled
from fluoroscope.store.store import Store
from tests.support import segment


def test_receiving_continues_while_a_long_query_holds_the_engine(store: Store) -> None:
    pipeline = Pipeline(store, flush_interval=0.05)
    pipeline.start()
    query = threading.Thread(
        target=store._t.query_arrow, args=("SELECT sleepEachRow(0.25) FROM numbers(8)",)
    )
    docs = [segment() for _ in range(2000)]
    query.start()
    time.sleep(0.2)  # the engine is now busy for about two seconds
    try:
        started = time.perf_counter()
        for doc in docs:
            assert pipeline.offer_datagram(json.dumps(doc).encode())
        offering = time.perf_counter() - started
        assert query.is_alive(), "the query should still hold the engine while we offered"
        # Offering never waits for the engine: 2000 offers take far less than the query.
        assert offering < 0.5
    finally:
        query.join()
        pipeline.close()
    assert pipeline.counters["stored_documents"] == len(docs)
    found = store.entities([d["trace_id"] for d in docs[::100]])
    assert len(found) == 20


def test_buffers_are_bounded_and_overflow_is_counted(store: Store) -> None:
    pipeline = Pipeline(store, max_buffered_bytes=10_000)  # worker not started: nothing drains
    body = json.dumps(segment()).encode()
    accepted = sum(pipeline.offer_datagram(body) for _ in range(100))
    assert 0 < accepted < 100
    assert pipeline.counters["udp_dropped_full"] == 100 - accepted
    with pytest.raises(Throttled):
        pipeline.submit([segment()], size=5_000)
    assert pipeline.counters["http_throttled"] == 1
    pipeline.start()
    pipeline.close()
    assert pipeline.counters["stored_documents"] == accepted


def test_an_empty_submission_completes_once_what_came_before_is_stored(store: Store) -> None:
    """The barrier a sharded server's shutdown relies on."""
    pipeline = Pipeline(store, flush_interval=0.05)
    docs = [segment() for _ in range(50)]
    for doc in docs:
        assert pipeline.offer_datagram(json.dumps(doc).encode())
    pipeline.start()
    try:
        barrier = pipeline.submit([], 0)
        barrier.result(timeout=15)
        assert pipeline.counters["stored_documents"] == len(docs)
        assert pipeline.submit([], 0).result(timeout=15) is None  # nothing queued at all
    finally:
        pipeline.close()


def test_documents_another_worker_owns_are_handed_on_not_merged(store: Store) -> None:
    mine, theirs = segment(), segment()
    handed: list[tuple[str, bytes]] = []
    pipeline = Pipeline(
        store, flush_interval=0.05, owns=lambda tid: tid == mine["trace_id"], stray=handed.extend
    )
    for doc in (mine, theirs):
        assert pipeline.offer_datagram(json.dumps(doc).encode())
    pipeline.start()
    pipeline.close()
    assert handed == [(theirs["trace_id"], json.dumps(theirs).encode())]
    assert pipeline.counters["stored_documents"] == 1
    assert pipeline.counters["udp_rerouted"] == 1
    assert set(store.entities([mine["trace_id"], theirs["trace_id"]])) == {mine["trace_id"]}
