"""Migration 23: the service graph's statistics per minute, 10 minutes and hour.

A window's minutes are covered exactly by the buckets read; the graph read from
``graph_stats`` equals the one summed minute by minute, for any window, on a store written
before the migration (filled by it from the per-minute tables) and after (whose minutes
are ``graph_stats``' 60-second step: the per-minute tables are no longer written)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.query.graph import build_graph, service_graph
from fluoroscope.store.graphstats import GRAPH_STEPS, cover
from fluoroscope.store.schema import MIGRATIONS, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests.support import old_schema


@given(
    lo=st.integers(0, 10**6).map(lambda m: m * 60),
    length=st.integers(-100, 3 * 86400),
)
def test_the_buckets_read_are_exactly_the_window_minutes(lo: int, length: int) -> None:
    hi = lo + length
    minutes: list[int] = []
    for step, first, end in cover(lo, hi):
        assert step in GRAPH_STEPS and first % step == 0 and end % step == 0 and end > first
        minutes += range(first, end, 60)
    assert sorted(minutes) == list(range(lo, hi, 60))  # each minute once
    # 6 hours take at most 5 hours, 10 tens and 18 minutes
    if length <= 6 * 3600:
        assert sum((end - first) // step for step, first, end in cover(lo, hi)) <= 33


def _trace(rng: random.Random, t: float) -> list[dict[str, Any]]:
    trace_id = new_trace_id(t)
    root = new_entity_id()
    fault = rng.random() < 0.2
    services = rng.sample(["api", "orders", "payments", "users"], 2)
    return [
        {"name": services[0], "id": root, "trace_id": trace_id, "start_time": t,
         "end_time": t + rng.uniform(0.01, 3), "http": {"response": {"status": 200}},
         "subsegments": [{"name": "DynamoDB", "id": new_entity_id(), "namespace": "aws",
                          "start_time": t + 0.001, "end_time": t + rng.uniform(0.002, 0.5),
                          "aws": {"operation": "GetItem", "table_name": "t"}},
                         {"name": services[1], "id": (call := new_entity_id()),
                          "start_time": t + 0.002, "end_time": t + 0.009, "namespace": "remote",
                          "http": {"request": {"url": f"http://{services[1]}/x"}}}]},
        {"name": services[1], "id": new_entity_id(), "trace_id": trace_id, "parent_id": call,
         "start_time": t + 0.003, "end_time": t + 0.008, "fault": fault},
    ]  # fmt: skip


def _summed(store: Store, start: float, end: float) -> Any:
    """The graph as the release before migration 23 read it: summed over the minutes."""
    graph = build_graph(
        store.stats("node", start, end).to_pylist(),
        store.stats("edge", start, end).to_pylist(),
        start,
        end,
    )
    return _shape(graph)


def _count(transport: ChdbTransport, db: str, table: str) -> int:
    return int(transport.query_arrow(f"SELECT count() FROM `{db}`.{table}").column(0)[0].as_py())


def _shape(graph: Any) -> Any:
    nodes = graph.nodes
    return [
        (n.name, n.type, n.root, n.inferred, n.start, n.end,
         None if n.statistics is None else (
             n.statistics.total, n.statistics.ok, n.statistics.errors, n.statistics.faults,
             n.statistics.throttles, round(n.statistics.response_time, 9),
             n.statistics.histogram),
         sorted((nodes[e.target].name, e.start, e.end, e.statistics.total,
                 round(e.statistics.response_time, 9), tuple(e.statistics.histogram))
                for e in n.edges))
        for n in sorted(nodes, key=lambda n: (n.name, n.type))
    ]  # fmt: skip


def test_a_store_written_before_migration_23_draws_the_same_graph_after_it(
    chdb_dir: Path,
) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    db = old_schema(transport, before=23)
    old = Store(transport, db)
    rng = random.Random(5)
    now = time.time() - 8 * 3600
    old_docs = [doc for k in range(300) for doc in _trace(rng, now + k * 61.7)]
    old.write(Assembler(old).assemble(old_docs))
    assert old.graph_stats(now, now + 6 * 3600)[0]  # read as before: from the minutes
    windows = [(now + rng.uniform(-300, 3600), rng.choice([59.0, 600.0, 3 * 3600.0, 6 * 3600.0]))
               for _ in range(8)]  # fmt: skip
    windows = [(a, a + length) for a, length in windows]
    before = [_shape(service_graph(old, a, b)) for a, b in windows]
    assert any(len(shape) >= 4 for shape in before)

    assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 23]
    store = Store(transport, db)
    for (a, b), shape in zip(windows, before, strict=True):
        assert _shape(service_graph(store, a, b)) == shape == _summed(store, a, b)

    # written after the migration: graph_stats alone (its minutes are what stats() reads;
    # the per-minute tables keep what was written before), the same sums (also merged)
    minutes = [_count(transport, db, t) for t in ("node_stats", "edge_stats")]
    new_docs = [doc for k in range(200) for doc in _trace(rng, now + 3 * 3600 + k * 17.3)]
    writer = Assembler(store)
    store.write(writer.assemble(new_docs[:150]))
    store.write(writer.assemble(new_docs[150:]))
    assert [_count(transport, db, t) for t in ("node_stats", "edge_stats")] == minutes
    late = (now + 3 * 3600, now + 3 * 3600 + 200 * 17.3 + 60)
    assert _shape(service_graph(store, *late)) == _summed(store, *late)
    assert {n[0] for n in _summed(store, *late)} >= {"api", "orders", "payments", "users"}
    for merged in (False, True):
        if merged:
            transport.execute(f"OPTIMIZE TABLE `{db}`.graph_stats FINAL")
        for a, b in windows:
            assert _shape(service_graph(store, a, b)) == _summed(store, a, b)
