"""Submitted documents are parsed and merged a part at a time, as datagrams are.

PutTraceSegments' documents reach the pipeline as their JSON text (OTLP spans translated
by the worker, parsed); the worker parses them ``_PART`` at a time as it merges them
into one batch per slice (``Pipeline._merge_submitted``). What it writes must be what
merging each slice at once wrote (``Assembler.assemble``, then ``encode_batch``), byte
for byte; and a document that fails to merge or encode costs no other document, of its
submission or of another.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from benchmarks.ingest import make_trace
from hypothesis import given, settings
from hypothesis import strategies as st

import fluoroscope.ingest.pipeline as pipeline_module
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.ingest.pipeline import Pipeline
from fluoroscope.model.errors import StoreError
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.store import Store
from tests.ingest.nativediff import _variants
from tests.ingest.test_merge_parts import _ipc, _Nothing
from tests.support import segment, stored_once, summarized_without


@pytest.fixture(scope="module")
def empty_store(chdb_dir: Path) -> Iterator[Store]:
    """A store nothing is written to: every trace the pipelines see is new."""
    made = Store.open("chdb", chdb_dir, 30, database=f"t_submit_parts_{time.time_ns()}")
    yield made
    made.close()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    slices=st.lists(st.integers(1, 150), min_size=1, max_size=6),
    part=st.integers(1, 60),
    parsed=st.lists(st.booleans(), min_size=1, max_size=6),
)
def test_submissions_merged_in_parts_write_what_one_assemble_of_a_slice_writes(
    empty_store: Store, seed: int, slices: list[int], part: int, parsed: list[bool]
) -> None:
    rng = random.Random(seed)
    now = time.time()
    docs: list[dict[str, Any]] = []
    for i in range(60):
        docs.extend(_variants(rng, make_trace(rng, now - 30 + i * 0.05)))
    rng.shuffle(docs)  # a trace's documents across slices and parts, in any order
    # submissions of 1-40 documents, as JSON text (PutTraceSegments) or parsed (OTLP)
    submitted: list[Any] = []
    while len(submitted) < len(docs):
        size = rng.randint(1, 40)
        as_dicts = parsed[len(submitted) % len(parsed)]
        for doc in docs[len(submitted) : len(submitted) + size]:
            submitted.append(orjson.loads(orjson.dumps(doc)) if as_dicts else orjson.dumps(doc))

    pipeline = Pipeline(empty_store, clock=lambda: now)  # never started: driven slice by slice
    pipeline.assembler.track_contributions = True
    whole = Assembler(_Nothing(), clock=lambda: now, stored_until=empty_store.max_trace_ts(),
                      capacity=20_000, outcome_rows=True)  # fmt: skip
    whole.track_contributions = True
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pipeline_module, "_PART", part)
        start, k = 0, 0
        while start < len(submitted):
            end = min(start + slices[k % len(slices)], len(submitted))
            # as the worker did: every body parsed, each slice assembled at once
            chunk = [orjson.loads(orjson.dumps(doc)) for doc in docs[start:end]]
            expected = whole.assemble(chunk)
            pipeline._merge_submitted(submitted, start, end)
            ((documents, entities, tables),) = pipeline._merged
            pipeline._merged.clear()
            assert (documents, entities) == (end - start, len(expected))
            assert _ipc(tables) == _ipc(encode_batch(expected))
            start, k = end, k + 1
    assert pipeline.counters["reloaded_traces"] == 0


def test_a_submitted_document_that_cannot_be_stored_costs_no_other(store: Store) -> None:
    """Validation is the server's: a document it should have refused (as a defect of it
    would let through) fails the merge of its part, or the encoding of its slice's
    batch. Its submission fails, as it did when each slice was merged at once; every
    other document - of that submission, of the others, its own trace's - is stored,
    and nothing of the failing documents."""
    good = [segment() for _ in range(450)]
    poison_trace, other_trace = good[10], good[300]
    # one fails the merge of its part (a time no arithmetic takes), one the encoding
    unmergeable = {**segment(poison_trace["trace_id"]), "start_time": "soon"}
    unencodable = segment(other_trace["trace_id"], http={"response": {"status": -5}})
    texts = [orjson.dumps(doc) for doc in good]
    # five submissions in one slice of one round: the third and fifth hold the poison
    first = texts[:120]
    second = [orjson.loads(text) for text in texts[120:200]]  # parsed, as OTLP's are
    third = [*texts[200:240], orjson.dumps(unmergeable), *texts[240:300]]  # merge fails
    fourth = texts[300:400]
    fifth = [*texts[400:420], orjson.dumps(unencodable), *texts[420:]]  # encoding fails
    pipeline = Pipeline(store, flush_interval=0.05)  # started once all are queued
    futures = [
        pipeline.submit(docs, 100 * len(docs)) for docs in (first, second, third, fourth, fifth)
    ]
    pipeline.start()
    try:
        for future in (futures[0], futures[1], futures[3]):
            assert future.result(timeout=60) is None
        for future, doc in ((futures[2], unmergeable), (futures[4], unencodable)):
            with pytest.raises(StoreError, match=f"document {doc['id']!r} could not be stored"):
                future.result(timeout=60)
    finally:
        pipeline.close()
    stored_once(store, pipeline.counters, good, 2)
    summarized_without(store, good, other_trace["trace_id"])


def test_a_submitted_text_that_is_no_json_costs_no_other(store: Store) -> None:
    """The server parsed every text it submits, so none is broken; should one be (as a
    defect could make it), it is refused alone - in a part that merges, and in one whose
    merge fails and is written again - and its submission answered with the error."""
    good = [segment() for _ in range(300)]
    texts = [orjson.dumps(doc) for doc in good]
    unmergeable = {**segment(good[150]["trace_id"]), "start_time": "soon"}
    first = texts[:100]
    second = [*texts[100:130], b'{"trace_id": ', *texts[130:200]]  # a part that merges
    # a part whose merge fails: the text is passed over when it is written again
    third = [*texts[200:220], b"\xff", orjson.dumps(unmergeable), *texts[220:]]
    pipeline = Pipeline(store, flush_interval=0.05)  # started once all are queued
    futures = [pipeline.submit(docs, 100 * len(docs)) for docs in (first, second, third)]
    pipeline.start()
    try:
        assert futures[0].result(timeout=60) is None
        for future in futures[1:]:
            with pytest.raises(StoreError, match="could not be stored"):
                future.result(timeout=60)
    finally:
        pipeline.close()
    stored_once(store, pipeline.counters, good, 3)
