"""Service-graph statistics per group, aggregated at ingest, and the graphs read from them.

A group's graph covers only the traces its filter selects, which the per-minute
statistics of every trace cannot tell apart. So, from the moment a group with a filter
exists (its tracking ``since``, persisted per name and compiled filter), the server keeps
statistics of its own for it, batch by batch as segments are stored:

1. while any group is tracked, the ingest worker sends with each batch, per trace the
   batch changed, what the trace contributes to the graph before and after the batch
   (``TraceState.contributions``);
2. :meth:`GroupStats.prepare` evaluates each tracked group's filter over the new summary
   rows of the batches an insert round takes, in one statement in the engine (the SQL GetTraceSummaries runs), retracts the
   contributions-before of each trace that counted in the group and adds the
   contributions-after of each trace that matches now - so a trace that starts or stops
   matching as its segments arrive is counted exactly once, as it stands;
3. each summary row records the groups it counted in (``traces.groups``), so the next
   change to that trace retracts exactly what was added, across restarts too.

A group's graph (:func:`group_rows`) reads minutes from :attr:`TrackedGroup.split` on
from these statistics - its cost depends on nodes, edges and minutes, not on spans -
and the minutes before it (before the group was tracked) from the spans of the traces
the filter selects, as for any filter. Both count the same way (``tracestats`` states
the rules), so the seam does not show.

Threads: :meth:`GroupStats.prepare` runs on the ingest hub thread, one batch at a time;
:meth:`GroupStats.refresh` and :meth:`GroupStats.tracked` on API threads; a lock guards
the set of tracked groups. Blocking (store calls).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from fluoroscope.model.errors import FluoroscopeError
from fluoroscope.model.stats import StatsBatch
from fluoroscope.query.compile import Condition
from fluoroscope.query.groups import GroupService
from fluoroscope.store.batch import read_contributions
from fluoroscope.store.encode import CONTRIBUTIONS, encode_group_stats
from fluoroscope.store.store import Store
from fluoroscope.store.tracestats import merge_row

__all__ = ["SETTLE_SECONDS", "GroupStats", "Tables", "TrackedGroup", "group_rows"]

log = logging.getLogger("fluoroscope.groups")

SETTLE_SECONDS: Final = 60
"""How long after a group's tracking begins its statistics are taken as complete: batches
assembled before the ingest worker heard of it carry no contributions."""
_NONE: Final[frozenset[str]] = frozenset()
_TEXT: Final = pa.string()
_MEMBERSHIPS: Final = 50_000  # traces whose counted groups are remembered here (~10 MB)


Tables = list[tuple[str, pa.Table]]
"""One ingest batch: (table name, rows) as ``encode_batch`` names them."""


@dataclass(frozen=True, slots=True)
class TrackedGroup:
    """A group whose statistics are kept since ``since`` under ``key``."""

    name: str
    key: str
    condition: Condition
    since: float

    @property
    def split(self) -> int:
        """The first minute (epoch seconds) read from the group's statistics."""
        return (int(self.since) // 60 + 1) * 60 + SETTLE_SECONDS


def fingerprint(condition: Condition) -> str:
    """A short stable digest of a compiled filter (its SQL and bound values)."""
    text = orjson.dumps([condition.sql, condition.params], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(text).hexdigest()[:16]


class GroupStats:
    """Keeps per-group statistics at ingest (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        groups: GroupService,
        *,
        clock: Callable[[], float] = time.time,
        memberships: int = _MEMBERSHIPS,
    ) -> None:
        self._store = store
        self._groups = groups
        self._clock = clock
        self._lock = threading.Lock()
        self._tracked: dict[str, TrackedGroup] = {}  # by group name
        self._counted: OrderedDict[str, frozenset[str]] = OrderedDict()  # trace id -> keys
        self._capacity = memberships
        self.on_change: Callable[[bool], None] = lambda tracking: None
        """Called with whether any group is tracked after each change of the set (the
        server tells the ingest worker to gather contributions or stop)."""

    def refresh(self) -> None:
        """Bring the tracked set in line with the groups as stored now: begin tracking
        new groups and changed filters (a group referring to a changed group changes
        too), end it for deleted groups and old filters."""
        with self._lock:
            wanted: dict[str, tuple[str, Condition]] = {}
            for group in self._groups.all():
                expression = group.filter_expression
                if not expression or not expression.strip():
                    continue
                try:
                    condition = self._groups.condition(expression)
                except FluoroscopeError as exc:  # stored by an older version, say
                    log.warning("group %r is not tracked: its filter fails: %s", group.name, exc)
                    continue
                wanted[group.name] = (fingerprint(condition), condition)
            records = self._store.group_stats.tracking()
            for (name, print_), _ in records.items():
                if wanted.get(name, ("",))[0] != print_:
                    self._store.group_stats.end(name, print_)
            tracked: dict[str, TrackedGroup] = {}
            for name, (print_, condition) in wanted.items():
                since = records.get((name, print_))
                if since is None:
                    since = self._clock()
                    self._store.group_stats.begin(name, print_, since)
                key = f"{name}/{print_}/{int(since * 1000)}"
                tracked[name] = TrackedGroup(name, key, condition, since)
            self._tracked = tracked
            self.on_change(bool(tracked))  # in order with the set: refreshes may race

    def tracked(self, name: str) -> TrackedGroup | None:
        """The group ``name`` if its statistics are kept."""
        with self._lock:
            return self._tracked.get(name)

    def prepare(self, batches: list[Tables]) -> list[Tables]:
        """One insert round's ingest batches (in order) as they are to be inserted: the
        contributions taken out, the summary rows marked with the groups they count in,
        each batch's group statistics appended. Never raises: on a failure it is logged
        and the batches go in without group statistics (their rows say so; what those
        batches changed is then missing from the groups' statistics, as a failed insert
        loses its rows)."""
        out = _without_contributions(batches)
        usable: list[tuple[int, pa.Table, pa.Table]] = []
        for index, tables in enumerate(batches):
            named = dict(tables)
            if CONTRIBUTIONS in named and "traces" in named:
                usable.append((index, named["traces"], named[CONTRIBUTIONS]))
        with self._lock:
            groups = list(self._tracked.values())
        if not usable or not groups:
            return out  # counted nowhere (their rows say so): consistent either way
        try:
            self._prepare(out, usable, groups)
        except FluoroscopeError as exc:
            log.warning("group statistics of %d batches were not kept: %s", len(usable), exc)
            return _without_contributions(batches)  # ``out`` may be half marked
        return out

    def _prepare(
        self,
        out: list[Tables],
        usable: list[tuple[int, pa.Table, pa.Table]],
        groups: Sequence[TrackedGroup],
    ) -> None:
        conditions = [g.condition.prefixed(f"g{i}_") for i, g in enumerate(groups)]
        every = pa.concat_tables([rows for _, rows, _ in usable])
        hits = self._store.group_stats.select(every, [(c.sql, c.params) for c in conditions])
        known = self._counted_before(every)
        keys: dict[int, frozenset[str]] = {0: _NONE}  # a mask of hits -> the groups' keys
        for mask in set(hits.values()):
            keys[mask] = frozenset(g.key for k, g in enumerate(groups) if mask >> k & 1)
        names = _SortedKeys()  # a set of keys -> the list the summary row records
        for index, rows, made in usable:
            trace_ids: list[str] = rows.column("trace_id").to_pylist()
            revisions: list[int] = rows.column("revision").to_pylist()
            now = {
                tid: keys[hits.get(pair, 0)]
                for tid, pair in zip(trace_ids, zip(trace_ids, revisions, strict=True), strict=True)
            }
            stats = {g.key: StatsBatch() for g in groups}
            counting = [tid for tid in trace_ids if now[tid] or known.get(tid)]
            if len(counting) < len(trace_ids):  # decode only what counts somewhere
                made = made.filter(pc.is_in(made.column("trace_id"), pa.array(counting, _TEXT)))
            for trace_id, (old, new) in read_contributions(made).items():
                was, is_ = known.get(trace_id, _NONE), now[trace_id]
                if was == is_ and old == new:
                    continue  # counted as it was: nothing changes
                for key in was:
                    if key in stats:
                        stats[key].add(old, weight=-1)
                for key in is_:
                    stats[key].add(new)
            known.update(now)
            column = pa.array([names[now[tid]] for tid in trace_ids], pa.list_(_TEXT))
            tables = out[index]
            tables[:] = [
                (name, t.append_column("groups", column) if name == "traces" else t)
                for name, t in tables
            ]
            for key, batch in stats.items():
                if batch:
                    tables.extend(encode_group_stats(key, batch))
        self._remember(known)

    def _counted_before(self, rows: pa.Table) -> dict[str, frozenset[str]]:
        """The groups each trace of ``rows`` (one insert round's summary rows) counted in
        before the round: remembered here, else read from its latest stored summary
        (a trace whose first revision is in the round has none)."""
        found: dict[str, frozenset[str]] = {}
        first: dict[str, tuple[int, int]] = {}  # trace id -> (revision, ts) of its first row
        counted = self._counted
        for ts, trace_id, revision in zip(
            rows.column("ts").to_pylist(),
            rows.column("trace_id").to_pylist(),
            rows.column("revision").to_pylist(),
            strict=True,
        ):
            known = counted.get(trace_id)
            if known is not None:
                found[trace_id] = known
            elif trace_id not in first or revision < first[trace_id][0]:
                first[trace_id] = (revision, ts)
        missing = [(ts, tid) for tid, (rev, ts) in first.items() if rev > 1]
        if missing:
            stored = self._store.group_stats.counted_in(missing)
            found.update((tid, frozenset(keys)) for tid, keys in stored.items())
        return found

    def _remember(self, known: dict[str, frozenset[str]]) -> None:
        counted = self._counted
        for trace_id, keys in known.items():
            counted[trace_id] = keys
            counted.move_to_end(trace_id)
        while len(counted) > self._capacity:
            counted.popitem(last=False)


class _SortedKeys(dict[frozenset[str], list[str]]):
    """Each set of group keys as a sorted list, made once per distinct set."""

    def __missing__(self, keys: frozenset[str]) -> list[str]:
        found = self[keys] = sorted(keys)
        return found


def _without_contributions(batches: list[Tables]) -> list[Tables]:
    """New lists of each batch's tables, less the contributions (never inserted)."""
    return [[(name, t) for name, t in tables if name != CONTRIBUTIONS] for tables in batches]


def group_rows(
    store: Store,
    start: float,
    end: float,
    condition: Condition,
    tracked: TrackedGroup | None,
    *,
    period: int | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Node and edge statistics rows (shaped like :meth:`Store.stats` rows) of the
    traces ``condition`` selects, calls that started in a minute in ``[start, end)``:
    from the group's own statistics from ``tracked.split`` on, recomputed from spans
    before it (all of it without ``tracked``)."""
    split = tracked.split if tracked is not None else None
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    if split is None or start < split:
        hi = end if split is None else min(end, split)
        found_nodes, found_edges = store.trace_stats(
            start, hi, condition.sql, condition.params, period=period
        )
        nodes += found_nodes
        edges += found_edges
    if tracked is not None and split is not None and end > split:
        found_nodes, found_edges = store.group_graph(
            max(start, split), end, tracked.key, period=period
        )
        nodes += found_nodes
        edges += found_edges
    return _merged(nodes, ("name", "type")), _merged(
        edges, ("src_name", "src_type", "dst_name", "dst_type")
    )


def _merged(rows: list[dict[str, Any]], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """``rows`` with those of the same node or edge (and bucket) added together."""
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        ident = (row.get("bucket"), *(row[n] for n in names))
        if ident in out:
            merge_row(out[ident], row)
        else:
            out[ident] = dict(row, histogram=sorted(row["histogram"]))
    return [row for row in out.values() if row["total"]]
