"""The pipeline keeps receiving while the engine is busy, and its buffers are bounded."""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pyarrow as pa
import pytest

from fluoroscope.ingest.pipeline import Pipeline
from fluoroscope.model.errors import StoreError, Throttled
from fluoroscope.store.store import Store
from tests.support import segment, stored_once, summarized_without, wait_for


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


def test_a_document_that_cannot_be_stored_costs_no_other(store: Store) -> None:
    """Defence behind validation: ``submit`` trusts its caller, so a document validation
    would refuse (a negative status no column can hold) gets in. The batch is split
    until that document is alone; it is counted and its submission fails, and every
    other document - its own trace's first segment included - is stored."""
    poison_trace = segment()
    good = [segment() for _ in range(40)] + [poison_trace]
    poison = segment(poison_trace["trace_id"], http={"response": {"status": -5}})
    pipeline = Pipeline(store, flush_interval=0.05)
    pipeline.start()
    try:
        alone = pipeline.submit(good[:20], 2_000)
        mixed = pipeline.submit([*good[20:30], poison, *good[30:]], 2_000)
        assert alone.result(timeout=30) is None
        with pytest.raises(StoreError, match="could not be stored"):
            mixed.result(timeout=30)
        later = segment(poison_trace["trace_id"])
        assert pipeline.submit([later], 100).result(timeout=30) is None
    finally:
        pipeline.close()
    assert pipeline.counters["lost_unstorable"] == 1
    assert pipeline.counters["stored_documents"] == len(good) + 1
    found = store.entities([doc["trace_id"] for doc in good])
    assert {tid: len(rows) for tid, rows in found.items()} == {
        doc["trace_id"]: 2 if doc is poison_trace else 1 for doc in good
    }
    page = store.summaries(time.time() - 600, time.time() + 600, limit=1000)
    (summary,) = [s for s in page.summaries if s.id == poison_trace["trace_id"]]
    assert summary.http is None  # nothing of the refused document was merged


def test_a_datagram_that_cannot_be_stored_costs_no_other(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same defence for datagrams, merged a part at a time into one batch per slice:
    with validation made to accept everything (as a defect of it would), a document it
    should refuse fails the merge of its part, or the encoding of the slice's batch; the
    batch is dropped, its valid documents so far are written again a slice at a time,
    halved around the one that fails, and the parts after it go on in a batch of their
    own."""
    import fluoroscope.ingest.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "validate_document", lambda doc, **_: None)
    good = [segment() for _ in range(450)]
    poison_trace, other_trace = good[10], good[300]
    # one fails the merge of its part (a time no arithmetic takes), one the encoding
    unmergeable = {**segment(poison_trace["trace_id"]), "start_time": "soon"}
    unencodable = segment(other_trace["trace_id"], http={"response": {"status": -5}})
    bodies = [json.dumps(doc).encode() for doc in good]
    bodies.insert(250, json.dumps(unmergeable).encode())  # the slice's third part
    bodies.insert(420, json.dumps(unencodable).encode())  # its fifth
    pipeline = Pipeline(store, flush_interval=0.05)
    assert pipeline.offer_datagrams(bodies) == len(bodies)
    pipeline.start()
    pipeline.close()
    stored_once(store, pipeline.counters, good, 2)
    summarized_without(store, good, other_trace["trace_id"])


def test_a_submission_is_answered_before_the_udp_backlog_of_its_round(store: Store) -> None:
    """PutTraceSegments waits for its own documents only: queued behind 5,000 datagrams,
    it is answered when those datagrams are not yet stored; a barrier queued with it
    is answered only once they are."""
    pipeline = Pipeline(store, max_batch=500)  # worker not started: one round takes all
    backlog = [json.dumps(segment()).encode() for _ in range(5_000)]
    assert pipeline.offer_datagrams(backlog) == len(backlog)
    submitted = [segment() for _ in range(3)]
    seen: dict[str, int] = {}

    def stored_when(name: str) -> Callable[[Future[None]], object]:
        return lambda _: seen.setdefault(name, pipeline.counters["stored_documents"])

    pipeline.submit(submitted, 300).add_done_callback(stored_when("submission"))
    pipeline.submit([], 0).add_done_callback(stored_when("barrier"))
    pipeline.start()
    pipeline.close()
    assert seen == {"submission": 3, "barrier": 3 + len(backlog)}


def test_a_submission_arriving_during_a_backlog_round_is_taken_in_between(store: Store) -> None:
    """Submitted while the worker is halfway through 5,000 datagrams, the document is
    written before the rest of them and its submitter answered then."""
    seen: dict[str, int] = {}
    calls = 0
    late = segment()

    def owns(_: str) -> bool:  # called by the worker for every datagram it parses
        nonlocal calls
        calls += 1
        if calls == 700:  # in the second batch of 500
            pipeline.submit([late], 100).add_done_callback(
                lambda _: seen.setdefault("late", pipeline.counters["stored_documents"])
            )
        return True

    pipeline = Pipeline(store, max_batch=500, owns=owns, stray=lambda _: None)
    backlog = [json.dumps(segment()).encode() for _ in range(5_000)]
    assert pipeline.offer_datagrams(backlog) == len(backlog)
    pipeline.start()
    try:
        wait_for(lambda: seen, timeout=60)
    finally:
        pipeline.close()
    assert seen == {"late": 1_001}  # two batches of datagrams, then the late document
    assert pipeline.counters["stored_documents"] == len(backlog) + 1


def test_documents_submitted_while_a_round_begins_join_that_round(store: Store) -> None:
    """``before_round`` runs as each round begins, before the round takes what is
    buffered: what it lets be submitted meanwhile (an OTLP translation finishing) is
    stored in that round - first, as submissions are - not a round later."""
    seen: dict[str, int] = {}
    late = segment()

    def before_round() -> None:
        if not seen:
            seen["hook"] = pipeline.counters["stored_documents"]
            pipeline.submit([late], 100).add_done_callback(
                lambda _: seen.setdefault("late", pipeline.counters["stored_documents"])
            )

    pipeline = Pipeline(store, before_round=before_round)
    backlog = [json.dumps(segment()).encode() for _ in range(10)]
    assert pipeline.offer_datagrams(backlog) == len(backlog)
    pipeline.start()
    try:
        wait_for(lambda: "late" in seen, timeout=60)
    finally:
        pipeline.close()
    assert seen == {"hook": 0, "late": 1}
    assert pipeline.counters["stored_documents"] == len(backlog) + 1


def test_the_collector_is_paused_for_a_batch_and_back_after_it(store: Store) -> None:
    from fluoroscope.ingest import heap as module

    assert gc.isenabled()
    module._pause_collector()
    module._pause_collector()  # another batch at the same time
    module._resume_collector()
    assert not gc.isenabled()  # until the last batch ends
    module._resume_collector()
    assert gc.isenabled()
    gc.disable()  # a collector turned off by someone else stays off
    try:
        module._pause_collector()
        module._resume_collector()
        assert not gc.isenabled()
    finally:
        gc.enable()
    pipeline = Pipeline(store, flush_interval=0.05)
    pipeline.start()
    try:
        docs = [segment() for _ in range(50)]
        for doc in docs:
            assert pipeline.offer_datagram(json.dumps(doc).encode())
        pipeline.submit([], 0).result(timeout=30)
    finally:
        pipeline.close()
    assert pipeline.counters["stored_documents"] == len(docs)
    assert gc.isenabled() and module._paused == 0


_TUNED = """
import gc, json, sys, tempfile
from pathlib import Path
from fluoroscope.ingest.heap import tune_gc
from fluoroscope.ingest.pipeline import Pipeline
from fluoroscope.store.store import Store
from tests.support import segment, stored_once

tune_gc()
frozen = gc.get_freeze_count()
with tempfile.TemporaryDirectory() as tmp:
    store = Store.open("chdb", Path(tmp), 30)
    pipeline = Pipeline(store, flush_interval=0.05)
    pipeline.start()
    docs = [segment() for _ in range(300)]
    pipeline.offer_datagrams([json.dumps(doc).encode() for doc in docs])
    pipeline.submit([], 0).result(timeout=60)
    grew = gc.get_freeze_count() > frozen
    pipeline.close()  # and hands them back to the collector
    stored = store.entities([d["trace_id"] for d in docs])
    store.close()
print(json.dumps([pipeline.counters["stored_documents"], len(stored), gc.isenabled(), grew,
                  gc.get_freeze_count()]))
"""


def test_a_tuned_process_freezes_what_its_batches_leave_alive() -> None:
    """In an ingest worker (``tune_gc``), what a batch leaves alive is frozen out of
    collection; the collector is on between batches, every document is stored, and a
    closed pipeline leaves nothing frozen (the interpreter exits cleanly)."""
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    out = subprocess.run(
        [sys.executable, "-c", _TUNED], capture_output=True, check=True, env=env, timeout=120
    )
    stored, entities, enabled, grew, frozen = json.loads(out.stdout.splitlines()[-1])
    assert (stored, entities, enabled, grew, frozen) == (300, 300, True, True, 0)


def test_a_backlog_batch_is_merged_a_slice_at_a_time(store: Store) -> None:
    """A batch of 4,000 datagrams is parsed and merged a slice at a time, then written
    whole: the Python memory it takes at its peak is a slice's parsed documents and
    rows, not the batch's (measured with tracemalloc: 21.5 MB, against 56.7 MB when the
    4,000 were parsed and merged at once; 5.4 MB stay, the traces' state). Each trace
    has a document in two slices (2,000 datagrams apart): both are stored, and the
    trace's summary is the later merge's."""
    now = time.time()
    meta = {"default": {f"key{i}": [i, str(i), {"x": i}] for i in range(30)}}  # ~1.5 KB
    firsts = [segment(start_time=now - 1, end_time=now - 0.5, metadata=meta) for _ in range(2_000)]
    seconds = [
        segment(
            trace_id=d["trace_id"],
            parent_id=d["id"],
            start_time=now - 0.9,
            end_time=now,
            metadata=meta,
        )
        for d in firsts
    ]
    bodies = [json.dumps(doc).encode() for doc in firsts + seconds]
    pipeline = Pipeline(store)  # worker not started: one round takes all
    assert pipeline.offer_datagrams(bodies) == len(bodies)
    pa.array(["x"])  # pyarrow's lazy imports at its first conversion, not measured below
    gc.collect()
    tracemalloc.start()
    try:
        pipeline.start()
        pipeline.close()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pipeline.counters["stored_documents"] == len(bodies)
    assert peak < 32 * 1024 * 1024
    sample = [doc["trace_id"] for doc in firsts[::250]]
    found = store.entities(sample)
    assert {tid: len(rows) for tid, rows in found.items()} == dict.fromkeys(sample, 2)
    page = store.summaries(now - 600, now + 600, limit=5000)
    durations = {s.id: s.duration for s in page.summaries if s.id in set(sample)}
    assert durations == {tid: pytest.approx(1.0, abs=0.01) for tid in sample}


_ALLOCATOR_SCRIPT = """
import gc, json, sys
import pyarrow as pa
from fluoroscope.ingest.heap import arrow_on_glibc, malloc_trim
if sys.argv[1] == "glibc":
    arrow_on_glibc()
def anon():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("RssAnon"))
base = anon()
tables = []
for i in range(30):  # a hub's round: batches' tables concatenated, then inserted
    parts = [
        pa.table({"a": pa.array(range(2000)), "s": pa.array([f"x{k}" * 8 for k in range(2000)])})
        for _ in range(20)
    ]
    tables.append(pa.concat_tables(parts).combine_chunks())
peak = anon()
del tables, parts
gc.collect()
malloc_trim()()
print(json.dumps({"base": base, "peak": peak, "after": anon(),
                  "pool": pa.default_memory_pool().backend_name}))
"""


def test_arrow_buffers_freed_by_a_round_go_back_to_the_os() -> None:
    """The server and the workers allocate Arrow buffers with glibc (``arrow_on_glibc``),
    whose freed memory the processes return every second: pyarrow's bundled allocator
    (mimalloc) kept every page a round had used (measured: 156 of 156 MB still
    resident; ``sys.argv[1]`` other than "glibc" runs the script on it)."""
    done = subprocess.run(
        [sys.executable, "-c", _ALLOCATOR_SCRIPT, "glibc"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    glibc = json.loads(done.stdout)
    assert glibc["pool"] == "system"
    grown = glibc["peak"] - glibc["base"]
    assert grown > 40_000  # kB: the round's tables were resident
    assert glibc["after"] - glibc["base"] < grown / 3, glibc


_ARENAS_SCRIPT = """
import ctypes, os, sys, tempfile, threading
from fluoroscope.ingest.mallocarena import one_malloc_arena
if sys.argv[1] == "one":
    assert one_malloc_arena()
kept = []
def allocate():
    kept.append([b"x" * 4000 + bytes([i % 256]) for i in range(2000)])  # glibc's malloc
threads = [threading.Thread(target=allocate) for _ in range(4)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL("libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.TemporaryDirectory() as where:
    path = os.path.join(where, "info.xml")
    out = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, out)
    libc.fclose(out)
    print(open(path).read().count("<heap nr="))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc arenas")
def test_one_malloc_arena_serves_every_thread() -> None:
    """The server and the workers call ``one_malloc_arena`` at start: threads that
    allocate then share glibc's one arena instead of each making its own (whose freed
    memory ``malloc_trim`` could not return; ``sys.argv[1]`` other than "one" runs the
    script with glibc's default, where the four threads make arenas of their own)."""

    def arenas(mode: str) -> int:
        done = subprocess.run(
            [sys.executable, "-c", _ARENAS_SCRIPT, mode],
            capture_output=True, text=True, timeout=120, check=True,
        )  # fmt: skip
        return int(done.stdout)

    assert arenas("default") > 1  # what the setting changes: the threads' own arenas
    assert arenas("one") == 1
