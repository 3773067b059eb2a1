"""Graph statistics summed a batch at a time from outcome rows are the cells ingest
summed one outcome at a time.

The ingest pipeline records one row per outcome (``OutcomeRows``) and the store sums a
batch's rows with array operations (``store.outcomes``) instead of adding each outcome
to its cell in Python (``StatsBatch``). For the same documents, in the same batches,
both ways must store the same statistics: the same rows, to the bit, and the same
answers of ``Store.stats`` (the service graph's and the time series' reads), including
inferred nodes retracted when their callee arrives, in-progress entities, streamed
subsegments, durations at the histogram's rounding edges and starts at a minute's edge.
Runs the real Assembler into two real stores.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.model.stats import OutcomeRows, StatsBatch, histogram_bucket
from fluoroscope.store.graphstats import minutes_sql
from fluoroscope.store.store import Store
from tests.tracegen import NOW, fleet

_KEYS = {
    "node": "minute, name, type, is_root, inferred",
    "edge": "minute, src_name, src_type, dst_name, dst_type",
}
_VALUES = (
    "total, ok, errors, throttles, faults, response_time, first_start, last_end, "
    "arraySort(mapKeys(histogram)) AS hk, "
    "arrayMap(k -> histogram[k], arraySort(mapKeys(histogram))) AS hv"
)


@pytest.fixture(scope="module")
def stores(chdb_dir: Path) -> Any:
    """A store written with cells summed per outcome, one with rows summed per batch."""
    made = [
        Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)
    ]
    yield made
    for store in made:
        store.close()


def _rows(store: Store, kind: str) -> list[tuple[Any, ...]]:
    """Every per-minute row of ``kind`` as written (no merge), in key order."""
    table = store._t.query_arrow(
        f"SELECT toUInt32(minute) AS m, {_KEYS[kind].removeprefix('minute, ')}, {_VALUES} "
        f"FROM {minutes_sql(store._db, kind)} ORDER BY {_KEYS[kind]}, total, response_time",
        {"lo": 0, "hi": 2**32 - 1},
    )
    return [tuple(row.values()) for row in table.to_pylist()]


def _reads(store: Store, kind: str) -> list[dict[str, Any]]:
    rows = store.stats(kind, NOW - 600, NOW + 3600, period=60).to_pylist()
    return sorted(rows, key=repr)


def _clear(store: Store) -> None:
    for table in ("spans", "traces", "node_stats", "edge_stats", "graph_stats"):
        store._t.execute(f"TRUNCATE TABLE {store._db}.{table}")


def _same_stats(by_cell: Store, by_batch: Store, batches: list[list[dict[str, Any]]]) -> None:
    by_cells = Assembler(by_cell, clock=lambda: NOW + 600)
    by_rows = Assembler(by_batch, clock=lambda: NOW + 600, outcome_rows=True)
    for docs in batches:
        summed = by_cells.assemble(docs)
        recorded = by_rows.assemble(docs)
        assert isinstance(summed.stats, StatsBatch) and summed.outcomes is None
        assert isinstance(recorded.outcomes, OutcomeRows) and recorded.stats is None
        by_cell.write(summed)
        by_batch.write(recorded)
    for kind in ("node", "edge"):
        assert _rows(by_batch, kind) == _rows(by_cell, kind)
        assert _reads(by_batch, kind) == _reads(by_cell, kind)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=fleet())
def test_batch_sums_are_the_cells(stores: list[Store], batches: list[list[dict[str, Any]]]) -> None:
    by_cell, by_batch = stores
    for store in stores:
        _clear(store)
    _same_stats(by_cell, by_batch, batches)


# Durations at the histogram's edges (two significant digits of the microseconds, the
# 100 us and ~4000 s bounds, halves that round up), and starts just before a minute.
_EDGES = [0.0, 1e-6, 99e-6, 99.4e-6, 99.5e-6, 100e-6, 0.00995, 0.009949999, 0.0125, 0.0135,
          1.2345, 9.95, 99.5, 3999.9999, 4000.0, 4000.0005, 5000.0]  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    durations=st.lists(st.sampled_from(_EDGES) | st.floats(0, 5000), min_size=1, max_size=12),
    offsets=st.lists(
        st.sampled_from([0.0, 59.999999, 59.9999999999, 60.0, 1e-7]) | st.floats(0, 180),
        min_size=1,
        max_size=12,
    ),
    flags=st.lists(st.sampled_from(["", "error", "fault", "throttle"]), min_size=1),
)
def test_batch_buckets_and_minutes_are_the_cells(
    stores: list[Store], durations: list[float], offsets: list[float], flags: list[str]
) -> None:
    by_cell, by_batch = stores
    for store in stores:
        _clear(store)
    docs: list[dict[str, Any]] = []
    for i, elapsed in enumerate(durations):
        start = NOW + offsets[i % len(offsets)]
        doc: dict[str, Any] = {
            "name": f"svc{i % 3}", "id": new_entity_id(), "trace_id": new_trace_id(start),
            "start_time": start, "end_time": start + elapsed,
        }  # fmt: skip
        flag = flags[i % len(flags)]
        if flag:
            doc[flag] = True
        docs.append(doc)
    _same_stats(by_cell, by_batch, [docs])
    # and the buckets are the documented ones, not merely the same
    buckets = {
        histogram_bucket(d["end_time"] - d["start_time"]) for d in docs
    }  # the root's client edge and its node share them
    stored = {k for row in _rows(by_batch, "node") for k in row[-2]}
    assert stored == buckets
