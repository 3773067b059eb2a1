"""A group's statistics kept at ingest equal the graph recomputed from its traces' spans.

Generated traces (see ``tests.tracegen``) go through the real ingest - the Assembler
gathering contributions, the tables encoded as the worker sends them,
:meth:`GroupStats.prepare` on the way into the real embedded store - while groups with
filters whose verdict changes as segments arrive (a fault, a slow segment, a service
turning up later) are tracked. The group's graph read from its own statistics must then
equal the graph the engine recomputes from the spans of the traces the filter selects,
also when the ingest cache drops and reloads traces and when the server restarts
between batches (a new GroupStats, which must read what each trace counted in from the
store).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.groups import Group
from fluoroscope.model.ids import new_trace_id
from fluoroscope.query.graph import filtered_graph
from fluoroscope.query.groups import GroupService
from fluoroscope.query.groupstats import GroupStats
from fluoroscope.query.timeseries import time_series
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.store import Store
from tests.tracegen import NOW, call_trace, fleet, graph_shape

FILTERS = (
    "fault",
    "error OR throttle",
    'service("billing")',
    "responsetime > 0.1",
    'service("worker") { fault } OR duration > 1',
    'edge("api", "billing")',
    'rootcause.fault.service { name = "billing" }',
    '!(http.status = 200) AND id(type: "AWS::EC2::Instance")',
)
WINDOW = (NOW - 60, NOW + 600)


def _open(chdb_dir: Path) -> Store:
    return Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")


def _tracker(store: Store) -> GroupStats:
    """Tracking that began an hour before the generated traces: their minutes are all
    read from the group statistics."""
    tracker = GroupStats(store, GroupService(store), clock=lambda: NOW - 3600)
    tracker.refresh()
    return tracker


def _ingest(store: Store, assembler: Assembler, tracker: GroupStats, *batches: list[Any]) -> None:
    """Assemble each batch of documents, then insert them as one round, as the server's
    hub does with the batches the worker sent while it was busy."""
    hub = _Hub(store, tracker)
    for docs in batches:
        tables = encode_batch(assembler.assemble(docs))  # a reload flushes what is pending
        hub.pending.append(tables)
    hub.flush()


def _create(store: Store, filters: list[str]) -> list[str]:
    groups = GroupService(store)
    names = [f"g{k}" for k in range(len(filters))]
    for name, text in zip(names, filters, strict=True):
        groups.create(name, text, False, False)
    return names


def _tracking(store: Store, text: str) -> tuple[list[str], GroupStats, Assembler]:
    """A group with filter ``text``, tracked, and an Assembler gathering contributions."""
    names = _create(store, [text])
    assembler = Assembler(store)
    assembler.track_contributions = True
    return names, _tracker(store), assembler


def _compare(store: Store, tracker: GroupStats, names: list[str]) -> None:
    groups = GroupService(store)
    for name in names:
        tracked = tracker.tracked(name)
        assert tracked is not None and tracked.split <= WINDOW[0]
        condition = groups.condition(groups.get(name).filter_expression or "")
        kept = filtered_graph(store, *WINDOW, condition, tracked)
        recomputed = filtered_graph(store, *WINDOW, condition)
        assert graph_shape(kept) == graph_shape(recomputed), name


@settings(max_examples=15)
@given(
    batches=fleet(),
    filters=st.lists(st.sampled_from(FILTERS), min_size=1, max_size=3, unique=True),
    restarts=st.lists(st.booleans(), min_size=4, max_size=4),
    cache=st.sampled_from([1, 3, 1000]),
    rounds=st.lists(st.integers(1, 3), min_size=4, max_size=4),
)
def test_group_statistics_equal_the_graph_recomputed_from_spans(
    chdb_dir: Path,
    batches: list[list[dict[str, Any]]],
    filters: list[str],
    restarts: list[bool],
    cache: int,
    rounds: list[int],
) -> None:
    store = _open(chdb_dir)
    try:
        names = _create(store, filters)
        hub = _Hub(store, _tracker(store))
        assembler = Assembler(hub, capacity=cache)
        assembler.track_contributions = True
        k = 0
        for size in rounds:  # some insert rounds take several batches
            if restarts[k % len(restarts)]:
                hub.flush()
                hub.tracker = _tracker(store)  # a restarted server remembers nothing
            for docs in batches[k : k + size]:
                # assemble first: reloading an evicted trace flushes the hub, which
                # replaces ``hub.pending`` (appending in one expression lost the batch)
                tables = encode_batch(assembler.assemble(docs))
                hub.pending.append(tables)
            hub.flush()
            k += size
        _compare(store, hub.tracker, names)
    finally:
        store._t.execute(f"DROP DATABASE {store._db}")
        store.close()


class _Hub:
    """The server's side as the ingest worker sees it: batches queue up and go in as one
    round; a reload of evicted traces is answered once every earlier batch is in."""

    def __init__(self, store: Store, tracker: GroupStats) -> None:
        self.store = store
        self.tracker = tracker
        self.pending: list[list[tuple[str, Any]]] = []

    def flush(self) -> None:
        for tables in self.tracker.prepare(self.pending):
            self.store.insert_tables(tables)
        self.pending = []

    def load_traces(self, trace_ids: Any) -> dict[str, Any]:
        self.flush()
        return self.store.load_traces(trace_ids)


def test_a_trace_that_starts_matching_late_counts_whole_and_once(store: Store) -> None:
    names, tracker, assembler = _tracking(store, 'service("billing") { fault }')
    trace_id = new_trace_id(NOW)
    root, callee = call_trace(trace_id, NOW + 5, fault=True)
    _ingest(store, assembler, tracker, [root])  # no fault yet: counted nowhere
    key = tracker.tracked(names[0])
    assert key is not None
    assert store.stats("node", *WINDOW, group_key=key.key).num_rows == 0
    _ingest(store, assembler, tracker, [callee])  # the fault arrives: the whole trace counts
    _ingest(store, assembler, tracker, [callee])  # re-sent: changes nothing
    nodes = {(r["name"], r["type"]): r for r in store.stats("node", *WINDOW, group_key=key.key)
             .to_pylist()}  # fmt: skip
    assert {n: r["total"] for n, r in nodes.items()} == {("api", ""): 1, ("billing", ""): 1}
    assert nodes[("billing", "")]["faults"] == 1
    edges = store.stats("edge", *WINDOW, group_key=key.key).to_pylist()
    assert sorted((e["src_name"], e["src_type"], e["dst_name"], e["total"]) for e in edges) == [
        ("api", "", "billing", 1),
        ("api", "client", "api", 1),
    ]
    _compare(store, tracker, names)


def test_a_trace_that_stops_matching_is_retracted(store: Store) -> None:
    names, tracker, assembler = _tracking(store, '!service("billing")')
    trace_id = new_trace_id(NOW)
    root, callee = call_trace(trace_id, NOW + 5, fault=False)
    _ingest(store, assembler, tracker, [root])  # no billing yet (an inferred node): matches
    key = tracker.tracked(names[0])
    assert key is not None
    assert store.stats("node", *WINDOW, group_key=key.key).num_rows > 0
    tracker = _tracker(store)  # restarted: what the trace counted in is read back
    _ingest(store, assembler, tracker, [callee])  # billing reports in: no longer matches
    assert store.stats("node", *WINDOW, group_key=key.key).num_rows == 0
    assert store.stats("edge", *WINDOW, group_key=key.key).num_rows == 0
    _compare(store, tracker, names)


def test_a_changed_filter_starts_afresh_and_reads_earlier_minutes_from_spans(
    store: Store,
) -> None:
    names = _create(store, ["ok"])
    clock = [NOW - 3600]
    groups = GroupService(store)
    tracker = GroupStats(store, groups, clock=lambda: clock[0])
    tracker.refresh()
    first = tracker.tracked(names[0])
    assembler = Assembler(store)
    assembler.track_contributions = True
    for k, at in enumerate((NOW, NOW + 40, NOW + 90)):  # minutes NOW and NOW + 60
        _ingest(store, assembler, tracker, call_trace(new_trace_id(NOW), at, fault=k != 1))
    clock[0] = NOW + 100  # the filter changes while the traces are there
    text = '!service("billing") { fault }'
    groups.update(names[0], None, text, None, None)
    tracker.refresh()
    second = tracker.tracked(names[0])
    assert first is not None and second is not None
    assert second.key != first.key and second.split == NOW + 180
    _ingest(store, assembler, tracker, call_trace(new_trace_id(NOW), NOW + 200, fault=False))
    condition = groups.condition(text)
    graph = filtered_graph(store, *WINDOW, condition, second)
    assert graph_shape(graph) == graph_shape(filtered_graph(store, *WINDOW, condition))
    api = next(n for n in graph.nodes if n.name == "api")
    assert api.statistics is not None and api.statistics.total == 2  # k=1 and the new one
    points = time_series(store, *WINDOW, 60, None, condition, second)
    assert [(p.timestamp, p.statistics.total) for p in points] == [
        (NOW, 1), (NOW + 180, 1)
    ]  # fmt: skip
    assert store.stats("node", *WINDOW, group_key=second.key).num_rows == 2  # the new trace


def test_no_groups_no_contributions_no_statistics(store: Store) -> None:
    tracker = _tracker(store)
    assembler = Assembler(store)
    batch = assembler.assemble(call_trace(new_trace_id(NOW), NOW, fault=True))
    tables = encode_batch(batch)
    assert [[name for name, _ in t] for t in tracker.prepare([tables])] == [
        [name for name, _ in tables]
    ]


def test_a_stored_filter_that_no_longer_compiles_is_skipped_not_fatal(store: Store) -> None:
    """A group stored by an older version whose filter this one rejects must not stop
    the server from starting; the other groups are still tracked."""
    names = _create(store, ["fault"])
    store.groups.put(Group("legacy", 'service("a") {'))  # as an older version stored it
    tracker = _tracker(store)
    assert tracker.tracked("legacy") is None
    assert tracker.tracked(names[0]) is not None


def test_a_group_referring_to_a_changed_group_starts_afresh(store: Store) -> None:
    groups = GroupService(store)
    groups.create("faults", "fault", False, False)
    groups.create("slow-faults", 'group.name = "faults" AND responsetime > 1', False, False)
    tracker = _tracker(store)
    before = tracker.tracked("slow-faults")
    groups.update("faults", None, "error", None, None)  # what slow-faults means changes too
    tracker.refresh()
    after = tracker.tracked("slow-faults")
    assert before is not None and after is not None
    assert after.key != before.key and after.condition != before.condition
    unchanged = _tracker(store).tracked("slow-faults")  # as a restarted server sees it
    assert unchanged is not None and unchanged.key == after.key
