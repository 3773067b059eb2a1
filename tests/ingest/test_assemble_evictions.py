"""Traces that left the trace cache are reloaded from the store; new ones are not.

The Assembler remembers which traces it evicted (by a hash of the id, per id second,
within a bounded window past a horizon). A trace evicted or forgotten must be reloaded
at its next document and merged with its stored rows; a new trace whose documents
arrive late (its id's second older than evicted traces') must not cost a store read.
Runs the real Assembler against real embedded stores; the loader is the store itself,
wrapped only to record which trace ids it was asked for.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.ingest.pipeline import Pipeline
from fluoroscope.model.errors import StoreUnavailable
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.store.batch import StoredTrace
from fluoroscope.store.store import Store
from tests.support import segment
from tests.tracegen import NOW, fleet


class RecordingLoader:
    """The store as the assembler's loader, recording the trace ids it is asked for
    (and refusing, when told to, as a store that went away would)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.asked: list[str] = []
        self.unavailable = False

    def load_traces(self, trace_ids: Iterable[str]) -> dict[str, StoredTrace]:
        ids = sorted(trace_ids)
        if self.unavailable:
            raise StoreUnavailable("the store is away")
        self.asked += ids
        return self.store.load_traces(ids)


def _segment(trace_id: str, start: float, name: str = "svc") -> dict[str, Any]:
    return {"name": name, "id": new_entity_id(), "trace_id": trace_id,
            "start_time": start, "end_time": start + 0.5}  # fmt: skip


def _ingest(store: Store, assembler: Assembler, *batches: list[dict[str, Any]]) -> None:
    for docs in batches:
        store.write(assembler.assemble(docs))


def _revision(store: Store, trace_id: str) -> int:
    page = store.summaries(NOW - 3600, NOW + 3600, limit=1000)
    (summary,) = [s for s in page.summaries if s.id == trace_id]
    return summary.revision


def test_late_new_traces_are_not_reloaded_and_evicted_ones_are(store: Store) -> None:
    now = time.time()
    loader = RecordingLoader(store)
    assembler = Assembler(loader, capacity=2, clock=lambda: now)
    early = [new_trace_id(now) for _ in range(3)]
    _ingest(store, assembler, *([_segment(t, now)] for t in early))
    assert assembler.cached_traces == 2  # early[0] was evicted, its id second is now's
    # traces whose documents arrive late: their ids' seconds are older than the evicted
    # trace's, and they evict more; none of them was ever stored
    late = [new_trace_id(now - lag) for lag in (1, 2, 0, 3, 1)]
    _ingest(store, assembler, *([_segment(t, now - 3)] for t in late))
    assert loader.asked == []
    assert assembler.counters["reloaded_traces"] == 0
    # every evicted trace's next document reloads it, and merges with what is stored
    for trace_id in [early[0], early[1], late[0]]:
        _ingest(store, assembler, [_segment(trace_id, now, name="other")])
        assert loader.asked[-1] == trace_id
        assert len(store.entities([trace_id])[trace_id]) == 2
        assert _revision(store, trace_id) == 2
    assert assembler.counters["reloaded_traces"] == 3
    assert assembler.counters["reload_misses"] == 0


def test_forgotten_traces_are_reloaded_even_past_the_bound(store: Store) -> None:
    """After a batch that could not be written its traces are forgotten; more forgotten
    than the cache holds are remembered as evicted ones are."""
    now = time.time()
    loader = RecordingLoader(store)
    assembler = Assembler(loader, capacity=2, clock=lambda: now)
    traces = [new_trace_id(now) for _ in range(4)]
    _ingest(store, assembler, [_segment(t, now) for t in traces[:2]])
    assembler.forget(traces[:1])
    loader.unavailable = True  # a reload that fails forgets nothing
    with pytest.raises(StoreUnavailable):
        assembler.assemble([_segment(traces[0], now, name="other")])
    loader.unavailable = False
    _ingest(store, assembler, [_segment(t, now) for t in traces[2:]])
    assembler.forget(traces[1:])  # 3 forgotten (and one evicted): past the cache's 2
    assert assembler.cached_traces == 0
    _ingest(store, assembler, [_segment(t, now, name="other") for t in traces])
    assert sorted(loader.asked) == sorted(traces)
    for trace_id in traces:
        assert len(store.entities([trace_id])[trace_id]) == 2
        assert _revision(store, trace_id) == 2
    assert assembler.counters["reload_misses"] == 0


def test_past_the_remembered_window_the_horizon_decides(store: Store) -> None:
    """With room for two evicted ids, the oldest seconds are forgotten: their traces
    (evicted or new) are reloaded, those after are told apart exactly."""
    now = time.time()
    loader = RecordingLoader(store)
    assembler = Assembler(loader, capacity=1, clock=lambda: now, remember_evicted=2)
    traces = [new_trace_id(now - 10 + k) for k in range(6)]  # one per second
    _ingest(store, assembler, *([_segment(t, now)] for t in traces))
    # evicted: traces[0..4]; remembered by id: the last two seconds' (traces[3], [4])
    _ingest(store, assembler, [_segment(traces[0], now, name="other")])
    assert loader.asked == [traces[0]]  # beyond the window: by the horizon
    assert len(store.entities([traces[0]])[traces[0]]) == 2
    older_new = new_trace_id(now - 9)
    _ingest(store, assembler, [_segment(older_new, now)])
    assert loader.asked[-1] == older_new  # a new trace behind the horizon: a miss
    assert assembler.counters["reload_misses"] == 1
    asked = len(loader.asked)
    _ingest(store, assembler, [_segment(new_trace_id(now - 6 + 0.5), now)])
    assert len(loader.asked) == asked  # after the horizon and not evicted: new
    _ingest(store, assembler, [_segment(traces[4], now, name="other")])
    assert loader.asked[-1] == traces[4]
    assert _revision(store, traces[4]) == 2


def test_evicted_traces_are_told_from_new_ones_after_their_seconds_are_sealed(
    store: Store,
) -> None:
    """The evicted ids of a second whose evictions are over are kept sorted in an array
    (8 bytes each where a set took ~83), and a second reopened by late evictions is
    merged into it: every evicted trace is still reloaded, and no new one."""
    now = time.time()
    loader = RecordingLoader(store)
    assembler = Assembler(loader, capacity=20, clock=lambda: now)
    seconds = range(-30, 0)
    traces = {lag: [new_trace_id(now + lag) for _ in range(12)] for lag in seconds}
    for lag in seconds:  # in time order, a batch per second: 20 cached, the rest evicted
        assembler.assemble([_segment(t, now + lag) for t in traces[lag][:8]])
    late = sorted({*seconds[::7], *seconds[-3:]})  # seconds sealed by now, and still open
    for lag in late:  # late traces, evicted as more arrive
        assembler.assemble([_segment(t, now + lag) for t in traces[lag][8:]])
    new = [new_trace_id(now + lag) for lag in seconds]  # the same seconds, never seen
    assembler.assemble([_segment(t, now) for t in new])  # and they evict all the others
    assert loader.asked == []
    sent = [t for lag in seconds for t in traces[lag][:8]]
    sent += [t for lag in late for t in traces[lag][8:]]
    assembler.assemble([_segment(t, now, name="again") for t in sent])
    assert sorted(loader.asked) == sorted(sent)


def test_the_pipeline_counts_its_reloads(store: Store) -> None:
    """``reloaded_traces`` and ``reload_misses`` reach the pipeline's counters (those
    ``/api/status`` and ``/metrics`` show)."""
    pipeline = Pipeline(store, flush_interval=0.05, cached_traces=1)
    pipeline.start()
    now = time.time()
    first, second = new_trace_id(now), new_trace_id(now)
    try:
        for doc in (segment(first), segment(second), segment(new_trace_id(now - 2))):
            pipeline.submit([doc], 200).result(timeout=30)
        assert pipeline.counters["reloaded_traces"] == 0  # the late one is new
        pipeline.submit([segment(first, name="other")], 200).result(timeout=30)
    finally:
        pipeline.close()
    assert pipeline.counters["reloaded_traces"] == 1
    assert pipeline.counters["reload_misses"] == 0
    assert len(store.entities([first])[first]) == 2


# -- the cache's size never changes what is stored ---------------------------------------


@pytest.fixture(scope="module")
def stores(chdb_dir: Path) -> Iterator[list[Store]]:
    """A store written through an unbounded cache, and one through a tiny one."""
    made = [
        Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)
    ]
    yield made
    for store in made:
        store.close()


def _clear(store: Store) -> None:
    for table in ("spans", "traces", "node_stats", "edge_stats", "graph_stats"):
        store._t.execute(f"TRUNCATE TABLE {store._db}.{table}")


def _stored(store: Store, trace_ids: set[str]) -> tuple[Any, ...]:
    """Every entity (as stored), summary and statistics read of ``store``."""
    entities = {
        trace_id: sorted(
            (e.id, e.parent_id, e.is_segment, orjson.dumps(e.document, option=orjson.OPT_SORT_KEYS))
            for e in rows
        )
        for trace_id, rows in store.entities(sorted(trace_ids)).items()
    }
    # compared whole: services in their order, indices, root causes with their paths
    summaries = sorted(
        store.summaries(NOW - 600, NOW + 3600, limit=1000).summaries, key=lambda s: s.id
    )
    stats = [
        sorted(store.stats(kind, NOW - 600, NOW + 3600, period=60).to_pylist(), key=repr)
        for kind in ("node", "edge")
    ]
    return entities, summaries, stats


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=fleet(traces=8, spread=3.0, step=0.0, batches=6),
    capacity=st.integers(1, 3),
    remember=st.integers(1, 6),
    forget=st.lists(st.booleans(), max_size=6),
)
def test_the_cache_size_never_changes_what_is_stored(
    stores: list[Store],
    batches: list[list[dict[str, Any]]],
    capacity: int,
    remember: int,
    forget: list[bool],
) -> None:
    """Any arrival order, batching, eviction and forgetting: the rows stored through a
    cache of 1-3 traces remembering 1-6 evicted ids are those stored through an unbounded
    cache; and while no remembered id was let go, nothing new was reloaded.

    A trace rebuilt from the store meets its entities in the store's order, not in
    arrival order: its summary is compared whole all the same (the order of its
    services, which of equally long children the response-time cause follows, where a
    fault or error cause's path ends)."""
    unbounded, bounded = stores
    for store in stores:
        _clear(store)
    reference = Assembler(unbounded, capacity=10_000, clock=lambda: NOW + 600)
    loader = RecordingLoader(bounded)
    small = Assembler(loader, capacity=capacity, clock=lambda: NOW + 600, remember_evicted=remember)
    for k, docs in enumerate(batches):
        unbounded.write(reference.assemble(docs))
        bounded.write(small.assemble(docs))
        if k < len(forget) and forget[k]:  # as after a write that failed, then retried
            small.forget({d["trace_id"] for d in docs})
    trace_ids = {d["trace_id"] for docs in batches for d in docs}
    assert _stored(bounded, trace_ids) == _stored(unbounded, trace_ids)
    assert reference.counters["reloaded_traces"] == 0
    if remember >= len(trace_ids):
        assert small.counters["reload_misses"] == 0, "a new trace was reloaded"
    assert set(loader.asked) <= trace_ids


def test_a_later_copy_replaces_an_entitys_annotations_and_exceptions(stores: list[Store]) -> None:
    """A complete copy of an entity replaces its in-progress one whole: annotations and
    exceptions only the earlier copy had are gone from the summary, whether the trace
    stayed cached between the copies or was rebuilt from the store (which keeps only
    the later copy)."""
    unbounded, bounded = stores
    for store in stores:
        _clear(store)
    trace_id = new_trace_id(NOW)
    first = segment(trace_id, start_time=NOW, name="checkout", in_progress=True)
    del first["end_time"]
    first["annotations"] = {"stage": "pending", "attempt": 1}
    first["fault"] = True
    first["cause"] = {"exceptions": [{"type": "Timeout", "message": "early"}]}
    later = {k: v for k, v in first.items() if k not in ("in_progress", "fault", "cause")}
    later["end_time"] = NOW + 0.25
    later["annotations"] = {"stage": "done"}
    other = segment(new_trace_id(NOW), start_time=NOW, end_time=NOW + 0.1, name="other")
    cached = Assembler(unbounded, capacity=10_000, clock=lambda: NOW + 600)
    reloaded = Assembler(RecordingLoader(bounded), capacity=1, clock=lambda: NOW + 600)
    for docs in ([first], [other], [later]):  # ``other`` evicts the trace from ``reloaded``
        unbounded.write(cached.assemble(docs))
        bounded.write(reloaded.assemble(docs))
    assert reloaded.counters["reloaded_traces"] == 1
    assert _stored(unbounded, {trace_id}) == _stored(bounded, {trace_id})
    (summary,) = [
        s for s in unbounded.summaries(NOW - 600, NOW + 3600, limit=10).summaries
        if s.id == trace_id
    ]  # fmt: skip
    assert list(summary.annotations) == ["stage"]
    assert [value for value, _ in summary.annotations["stage"]] == ["done"]
    assert not summary.has_fault and not summary.fault_root_causes
    assert summary.exceptions == []
