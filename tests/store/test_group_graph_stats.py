"""Migration 28: tracked groups' node and edge statistics in one table.

A round's group statistics (every tracked group's nodes and edges) go into
``group_graph_stats`` in one insert; a group's graph read from them equals the graph
recomputed from its traces' spans. A store written before the migration keeps its
groups' graphs exactly through it (the migration fills the new table from the two old
ones, which are written no more), and a store an older release laid out, not migrated,
keeps writing and reading the two old tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_trace_id
from fluoroscope.query.graph import filtered_graph
from fluoroscope.query.groups import GroupService
from fluoroscope.query.groupstats import GroupStats
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.schema import MIGRATIONS, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport, Transport
from tests.support import old_schema
from tests.tracegen import NOW, call_trace, graph_shape

FILTERS = {"billing": 'service("billing")', "billing-faults": 'service("billing") { fault }',
           "all": "ok OR !ok"}  # fmt: skip
WINDOW = (NOW - 60, NOW + 600)
_OLD = ("group_node_stats", "group_edge_stats")


def _tracker(store: Store) -> GroupStats:
    tracker = GroupStats(store, GroupService(store), clock=lambda: NOW - 3600)
    tracker.refresh()
    return tracker


def _round(store: Store, assembler: Assembler, *batches: list[dict[str, Any]]) -> None:
    """The batches as one insert round, their group statistics kept and the tables of a
    name put together as the server's hub does (a new tracker: what each trace counted
    in is read back from the store)."""
    tables = [encode_batch(assembler.assemble(docs)) for docs in batches]
    by_name: dict[str, list[pa.Table]] = {}
    for prepared in _tracker(store).prepare(tables):
        for name, table in prepared:
            by_name.setdefault(name, []).append(table)
    store.insert_tables([(name, pa.concat_tables(parts)) for name, parts in by_name.items()])


def _graphs(store: Store) -> dict[str, Any]:
    """Each group's graph, read from its kept statistics, checked against the graph
    recomputed from the spans of the traces its filter selects."""
    tracker = _tracker(store)
    groups = GroupService(store)
    shapes: dict[str, Any] = {}
    for name, text in FILTERS.items():
        tracked = tracker.tracked(name)
        assert tracked is not None and tracked.split <= WINDOW[0]
        condition = groups.condition(text)
        kept = graph_shape(filtered_graph(store, *WINDOW, condition, tracked))
        assert kept == graph_shape(filtered_graph(store, *WINDOW, condition)), name
        shapes[name] = kept
    return shapes


def _count(transport: Transport, db: str, table: str) -> int:
    found = transport.query_arrow(f"SELECT count() FROM `{db}`.{table}")
    return int(found.column(0)[0].as_py())


def _traces(start: float, faults: list[bool]) -> list[list[dict[str, Any]]]:
    return [
        call_trace(new_trace_id(start), start + 7 * k, fault=fault)
        for k, fault in enumerate(faults)
    ]


def test_a_rounds_group_statistics_go_into_one_table_in_one_insert(store: Store) -> None:
    groups = GroupService(store)
    for name, text in FILTERS.items():
        groups.create(name, text, False, False)
    assembler = Assembler(store)
    assembler.track_contributions = True
    first, second = _traces(NOW + 5, [True, False, True]), _traces(NOW + 95, [False, True])
    _round(store, assembler, [d for t in first for d in t], [d for t in second for d in t])
    transport, db = store.transport, store.database
    parts = transport.query_arrow(
        "SELECT count() AS parts, uniqExact(partition) AS partitions FROM system.parts "
        "WHERE database = {db:String} AND table = 'group_graph_stats' AND active",
        {"db": db},
    ).to_pylist()
    assert parts[0]["parts"] == parts[0]["partitions"] >= 1  # one insert
    rows = transport.query_arrow(
        f"SELECT uniqExact(group_key) AS groups, groupUniqArray(kind) AS kinds "
        f"FROM `{db}`.group_graph_stats"
    ).to_pylist()
    assert rows[0]["groups"] == len(FILTERS) and sorted(rows[0]["kinds"]) == [0, 1]
    assert [_count(transport, db, t) for t in _OLD] == [0, 0]  # written no more
    shapes = _graphs(store)
    assert shapes["billing-faults"] != shapes["all"]
    # a trace that starts matching only when billing's segment arrives (an inferred
    # node until then) is counted as it stands, also after merges
    late = call_trace(new_trace_id(NOW + 200), NOW + 200, fault=True)
    _round(store, assembler, late[:1])
    _round(store, assembler, late[1:])
    _graphs(store)
    transport.execute(f"OPTIMIZE TABLE `{db}`.group_graph_stats FINAL")
    _graphs(store)


def test_a_store_written_before_migration_28_keeps_its_groups_graphs(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    db = old_schema(transport, before=28)
    old = Store(transport, db)
    groups = GroupService(old)
    for name, text in FILTERS.items():
        groups.create(name, text, False, False)
    assembler = Assembler(old)
    assembler.track_contributions = True
    for k, faults in enumerate(([True, False], [False, True, True], [True])):
        _round(old, assembler, *([d for d in t] for t in _traces(NOW + 5 + 60 * k, faults)))
    half = call_trace(new_trace_id(NOW + 300), NOW + 300, fault=True)
    _round(old, assembler, half[:1])  # its other half arrives after the migration
    written = [_count(transport, db, t) for t in _OLD]
    assert all(written)  # an older release's layout: written as it wrote them
    before = _graphs(old)
    assert before["billing"] and before["billing-faults"] != before["all"]

    assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 28]
    store = Store(transport, db)
    assert _graphs(store) == before  # filled from the two tables
    _round(store, assembler, half[1:])
    _round(store, assembler, *(t for t in _traces(NOW + 400, [False, True])))
    assert [_count(transport, db, t) for t in _OLD] == written  # written no more
    after = _graphs(store)
    assert after != before
    transport.execute(f"OPTIMIZE TABLE `{db}`.group_graph_stats FINAL")
    assert _graphs(store) == after
