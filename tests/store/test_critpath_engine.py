"""The critical path computed in the engine, held to the pure reference
(:mod:`fluoroscope.model.critpath`) on generated traces that went through the real
ingest into the real embedded store; and the set's figures on a known mix."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.critpath import critical_path
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.query.compile import Condition
from fluoroscope.query.investigate import critical_path_across, spans_of
from fluoroscope.store.store import Store
from tests.tracegen import NOW, fleet

EVERYTHING = Condition("1", {})


def _load(store: Store, batches: list[list[dict[str, Any]]]) -> None:
    assembler = Assembler(store)
    for batch in batches:
        store.write(assembler.assemble(batch))


def assert_engine_matches_model(
    store: Store, rows: list[dict[str, Any]], trace_ids: Collection[str]
) -> None:
    """Each trace's critical-path entries in the engine's ``rows`` (``entries=True``) are
    those of :func:`critical_path` over the trace's stored entities."""
    engine: dict[str, dict[str, tuple[Any, ...]]] = {}
    for r in rows:
        engine.setdefault(r["trace_id"], {})[r["id"]] = (
            r["service"], r["name"], r["operation"],
            round(r["lo"], 6), round(r["hi"], 6), round(r["critical"], 6),
        )  # fmt: skip
    stored = store.entities(set(trace_ids))
    for tid in trace_ids:
        cp = critical_path(spans_of(stored[tid]))
        expected = {
            e.id: (
                e.service, e.name, e.operation,
                round(e.start, 6), round(e.end, 6), round(e.critical, 6),
            )
            for e in cp.entries
        }  # fmt: skip
        assert engine.get(tid, {}) == expected, tid


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches=fleet())
def test_engine_paths_equal_the_pure_walk(
    chdb_dir: Path, batches: list[list[dict[str, Any]]]
) -> None:
    store = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    try:
        _load(store, batches)
        lo, hi = NOW - 60, NOW + 600
        rows = store.critical_path_stats(lo, hi, "1", {}, entries=True)
        trace_ids = {d["trace_id"] for batch in batches for d in batch}
        assert_engine_matches_model(store, rows, trace_ids)
    finally:
        store.close()


def _request(start: float, db: float) -> list[dict[str, Any]]:
    return [
        {"id": new_entity_id(), "trace_id": new_trace_id(start), "name": "api",
         "start_time": start, "end_time": start + 0.1 + db,
         "subsegments": [{"id": new_entity_id(), "name": "DynamoDB", "namespace": "aws",
                          "aws": {"operation": "Query"}, "start_time": start + 0.05,
                          "end_time": start + 0.05 + db}]}
    ]  # fmt: skip


def test_shares_of_the_median_and_the_slowest(store: Store) -> None:
    # 99 requests with a 0.1 s query, one with a 5 s query
    docs = [d for i in range(99) for d in _request(NOW + i, 0.1)] + _request(NOW + 100, 5.0)
    _load(store, [docs])
    answer = critical_path_across(store, NOW - 10, NOW + 200, None)
    by_name = {e.name: e for e in answer.entries}
    assert answer.matched == answer.analysed == 100 and answer.sample_rate == 1.0
    assert by_name["DynamoDB"].operation == "Query"
    assert by_name["DynamoDB"].at_p50 == pytest.approx(0.1, abs=1e-6)
    assert by_name["DynamoDB"].at_p99 == pytest.approx(5.0, abs=1e-6)
    assert by_name["api"].at_p50 == pytest.approx(0.1, abs=1e-6)
    assert answer.entries[0].name == "DynamoDB"  # ranked by its part of the p99
    slowest = critical_path_across(store, NOW - 10, NOW + 200, None, slowest_percent=1)
    assert slowest.analysed == 1 and slowest.p50 == pytest.approx(5.1, abs=1e-6)
    sampled = critical_path_across(store, NOW - 10, NOW + 200, None, max_traces=20)
    assert sampled.sample_rate == pytest.approx(0.2) and "sample" in sampled.message
    assert 5 <= sampled.analysed <= 40


def test_zero_length_and_skewed_entities_agree_and_end(store: Store) -> None:
    start = NOW + 5
    tid = new_trace_id(start)
    docs = [
        {"id": new_entity_id(), "trace_id": tid, "name": "api", "start_time": start,
         "end_time": start + 1.0, "subsegments": [
             {"id": new_entity_id(), "name": "mark", "start_time": start + 0.5,
              "end_time": start + 0.5},
             {"id": new_entity_id(), "name": "mark", "start_time": start + 0.5,
              "end_time": start + 0.5},
             {"id": new_entity_id(), "name": "early", "start_time": start - 0.2,
              "end_time": start + 0.3},
             {"id": new_entity_id(), "name": "late", "start_time": start + 0.9,
              "end_time": start + 1.4}]},
    ]  # fmt: skip
    _load(store, [docs])
    rows = store.critical_path_stats(NOW - 10, NOW + 60, "1", {}, entries=True)
    engine = {
        r["id"]: (round(r["lo"], 6), round(r["hi"], 6), round(r["critical"], 6)) for r in rows
    }
    cp = critical_path(spans_of(store.entities([tid])[tid]))
    assert engine == {
        e.id: (round(e.start, 6), round(e.end, 6), round(e.critical, 6)) for e in cp.entries
    }
    assert len(engine) == 5  # api, late and early clamped to it, the two zero-length marks
