"""The store: writes batches, reads traces, summaries and graph statistics.

Contract (every method): blocking, so call it from a worker thread, never from the
event loop; safe to call from several threads at once (the engine serializes
statements); raises :class:`~fluoroscope.model.errors.StoreError` when the engine
fails. :meth:`Store.write` is idempotent on ``(trace_id, id)`` - re-sent entities
replace, never duplicate - and returning means the rows are on disk. Reads return new
objects owned by the caller, and collapse replaced rows (``FINAL``, or by ``version``
for a trace's entities), so they never show a superseded version.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa

from fluoroscope.model.ids import is_trace_id, trace_epoch
from fluoroscope.model.sampling import SamplingRule
from fluoroscope.model.summarycolumns import (  # re-exported: filters compile against them
    ROOT_CAUSE_CATEGORIES as ROOT_CAUSE_CATEGORIES,
)
from fluoroscope.model.summarycolumns import (
    ROOT_CAUSE_LEVELS as ROOT_CAUSE_LEVELS,
)
from fluoroscope.store.arrowstreams import ArrowStreams
from fluoroscope.store.batch import StoredTrace, WriteBatch
from fluoroscope.store.encode import CONTRIBUTIONS, encode_batch
from fluoroscope.store.graphstats import GROUP_TABLES, group_rollup, rollup
from fluoroscope.store.groups import GroupStore
from fluoroscope.store.groupstats import GroupStatsStore
from fluoroscope.store.schema import migrate
from fluoroscope.store.settings import SamplingRuleStore, SettingsStore
from fluoroscope.store.spandoc import restore_document
from fluoroscope.store.statsreads import StatsReads
from fluoroscope.store.summaryreads import SummaryPage, SummaryReads
from fluoroscope.store.transport import ChdbTransport, Transport, open_transport
from fluoroscope.store.vocabulary import vocabulary_sql
from fluoroscope.store.whatif import replay_sql

__all__ = ["EntityRow", "Store", "SummaryPage"]

_FEW_TRACES: Final = 5  # traces looked up by one thread (Store._entity_rows)
_MINUTE_TABLES: Final = frozenset({"node_stats", "edge_stats"})


@dataclass(frozen=True, slots=True)
class EntityRow:
    """One stored entity of a trace (its own document, children excluded)."""

    id: str
    parent_id: str
    is_segment: bool
    document: dict[str, Any]


class Store(SummaryReads, StatsReads):
    """The ClickHouse-engine store (see the module docstring for the contract): its
    writes and trace reads here, its summary reads in
    :class:`~fluoroscope.store.summaryreads.SummaryReads`, its statistics reads in
    :class:`~fluoroscope.store.statsreads.StatsReads`, and what they share in
    :class:`~fluoroscope.store.storebase.StoreBase`."""

    def __init__(self, transport: Transport, database: str) -> None:
        super().__init__(transport, database)
        self.groups = GroupStore(transport, self._db)
        self.group_stats = GroupStatsStore(transport, self._db)
        self.sampling_rules = SamplingRuleStore(transport, self._db)
        self.settings = SettingsStore(transport, self._db)

    @classmethod
    def open(
        cls, store_url: str, data_dir: Path, retention_days: int, database: str | None = None
    ) -> Store:
        """Open the transport named by ``store_url`` and bring the schema up to date."""
        transport, default_db = open_transport(store_url, data_dir)
        db = database or default_db
        migrate(transport, db, retention_days)
        return cls(transport, db)

    @property
    def transport(self) -> Transport:
        """The transport this store runs its statements on (for the log store beside it)."""
        return self._t

    @property
    def embedded(self) -> bool:
        """True when the engine runs inside this process (chDB)."""
        return isinstance(self._t, ChdbTransport)

    def release_memory(self) -> None:
        """Return memory the embedded engine freed to the OS (nothing for a ClickHouse
        server, whose memory is its own). Blocking, brief; any thread."""
        if isinstance(self._t, ChdbTransport):
            self._t.release_memory()

    def close(self) -> None:
        self._t.close()

    # -- writes ----------------------------------------------------------------------

    def write(
        self, batch: WriteBatch, tables: Sequence[tuple[str, pa.Table]] | None = None
    ) -> None:
        """Store every row of ``batch``; returns when they are written. ``tables``:
        ``encode_batch(batch)``, when the caller made it already."""
        self.insert_tables(encode_batch(batch) if tables is None else tables)

    def insert_tables(self, tables: Sequence[tuple[str, pa.Table | ArrowStreams]]) -> None:
        """Append each (table name, rows) as :func:`encode_batch` made them (a table, or
        its Arrow IPC stream undecoded: :mod:`~fluoroscope.store.arrowstreams`), in order,
        then the ``graph_stats`` rows of their node and edge statistics
        (:func:`~fluoroscope.store.graphstats.rollup`); returns when they are written
        (:data:`CONTRIBUTIONS` is no table: skipped).

        The per-minute ``node_stats``/``edge_stats`` rows go only into ``graph_stats``
        (whose 60-second step holds the same sums, read by :meth:`stats`): each insert
        statement costs the engine a fixed ~5-7 ms of CPU however few its rows (measured
        with a live round's 18 node and 77 edge rows), two of a round's five. A store on
        a schema an older release laid out without ``graph_stats`` writes them as before.
        Likewise tracked groups' ``group_node_stats``/``group_edge_stats`` rows go into
        ``group_graph_stats`` in one insert (:func:`~fluoroscope.store.graphstats.group_rollup`),
        or as they are on a schema without it (before migration 28)."""
        stats: dict[str, pa.Table] = {}
        grouped: list[tuple[str, pa.Table]] = []
        rollup_only = self._has_rollup()
        group_graph = self._has_group_graph()
        for name, rows in tables:
            if name in _MINUTE_TABLES:
                stats[name] = rows if isinstance(rows, pa.Table) else rows.table()
                if rollup_only:
                    continue
            elif name in GROUP_TABLES and group_graph:
                grouped.append((name, rows if isinstance(rows, pa.Table) else rows.table()))
                continue
            if name != CONTRIBUTIONS:
                self._t.insert_arrow(f"{self._db}.{name}", rows)
        rolled = rollup(stats) if stats and rollup_only else None
        if rolled is not None:
            self._t.insert_arrow(f"{self._db}.graph_stats", rolled)
        rolled = group_rollup(grouped)
        if rolled is not None:
            self._t.insert_arrow(f"{self._db}.group_graph_stats", rolled)

    # -- reads -----------------------------------------------------------------------

    def max_trace_ts(self) -> int:
        """The latest trace epoch stored (0 for an empty store)."""
        table = self._t.query_arrow(f"SELECT toUInt32(max(ts)) FROM {self._db}.traces")
        value = table.column(0)[0].as_py() if table.num_rows else 0
        return int(value or 0)

    def entities(self, trace_ids: Iterable[str]) -> dict[str, list[EntityRow]]:
        """Every stored entity of each trace, by trace id; unknown ids are absent.

        All rows of a trace are stored under one ``ts``: its id's epoch, unless ingest
        found that epoch implausible (outside retention, or over a day ahead) and used
        its first start instead. So X-Ray ids are first looked up under their epochs,
        letting the engine skip every part whose ``ts`` range misses them (measured with
        60 unmerged parts: 8.4 ms -> 5.0 ms per trace), and only ids not found that way
        are looked up in every part. Every version of an entity has its trace's ``ts``,
        so the newest is among the rows read; one limit: a trace whose documents arrived
        both before and after its epoch became plausible (an id stamped over a day ahead
        of this server's clock, with a restart in between) is stored under two ``ts`` and
        read from the epoch's rows only."""
        ids = sorted(set(trace_ids))
        if not ids:
            return {}
        epochs = sorted({trace_epoch(i) for i in ids if is_trace_id(i)})
        found = self._entity_rows(ids, epochs) if epochs else {}
        rest = [i for i in ids if i not in found]
        if rest:
            found.update(self._entity_rows(rest, None))
        return found

    def _entity_rows(self, ids: list[str], epochs: list[int] | None) -> dict[str, list[EntityRow]]:
        """The entities of ``ids`` stored under ``epochs`` (or under any ``ts``), each
        trace's ordered by start time then id.

        Replaced versions are dropped here, not by ``FINAL``: a trace has tens of rows,
        and the plain read is an index lookup with nothing to merge (it also lets the
        engine skip parts by ``ts`` without being told to). Measured on 10M spans:
        p50 3.53 -> 3.18 ms with the old query planner, which plans such point reads
        faster than the new one. Each column costs the engine a decompressed block
        here, so the columns read beside ``doc`` are kept in small blocks (migrations 8,
        22 and 24). The document is stored without the fields the columns read hold
        (:mod:`fluoroscope.store.spandoc`) and restored from them; only the newest version
        of each entity is parsed."""
        # ts stays in WHERE: moved to PREWHERE (the default), it was read for every
        # granule of the parts its range selects, before the trace id narrowed them to
        # one (measured on 300k spans in 3 parts: 14.7 ms per trace against 4.3 ms).
        settings = "optimize_move_to_prewhere = 0"
        # One trace (the usual lookup): its id is known, so its column is not read, and
        # it is compared, not looked up in a set. A read of a granule or two per trace
        # runs in one thread, reading the files directly (not through the read thread
        # pool): for a few traces too, as BatchGetTraces asks (up to 5): 6.0 -> 5.5 ms of
        # CPU per 5 traces, no slower (benchmarks/trace_lookup.py: 8 parts of 375k spans
        # as ingest leaves them). For 50 the pool's threads answer sooner for the same
        # CPU; a reload of evicted traces (thousands) is waited for by ingest.
        single = len(ids) == 1 and (epochs is None or len(epochs) == 1)
        if len(ids) <= _FEW_TRACES:
            settings += ", max_threads = 1, local_filesystem_read_method = 'pread'"
        selected = "id, parent_id, is_segment, start_time, end_time, version, doc"
        params: dict[str, Any]
        if single:
            sql = f"SELECT {selected} FROM {self._db}.spans WHERE trace_id = {{id:String}}"
            params = {"id": ids[0]}
            if epochs is not None:
                params["epoch"] = epochs[0]
                sql += " AND ts = toDateTime({epoch:UInt32})"
        else:
            sql = (
                f"SELECT trace_id, {selected} FROM {self._db}.spans "
                "WHERE trace_id IN {ids:Array(String)}"
            )
            params = {"ids": ids}
            if epochs is not None:
                params["epochs"] = epochs
                sql += " AND ts IN {epochs:Array(DateTime)}"
        table = self._query_old_analyzer(sql, params, settings)
        columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
        if single:
            columns.insert(0, ids * table.num_rows)
        newest: dict[tuple[str, str], tuple[int, str, bool, bytes, float, float]] = {}
        for trace_id, eid, parent_id, is_segment, start, end, version, doc in zip(
            *columns, strict=True
        ):
            key = (trace_id, eid)
            seen = newest.get(key)
            if seen is None or version > seen[0]:
                newest[key] = (version, parent_id, bool(is_segment), doc, start, end)
        rows: list[tuple[str, str, dict[str, Any], str, bool]] = []
        loads = orjson.loads
        for (trace_id, eid), (_, parent_id, is_segment, doc, start, end) in newest.items():
            document = restore_document(
                loads(doc), eid, trace_id, parent_id, is_segment, start, end
            )
            rows.append((trace_id, eid, document, parent_id, is_segment))
        rows.sort(key=lambda row: (row[0], row[2]["start_time"], row[1]))
        found: dict[str, list[EntityRow]] = {}
        for trace_id, eid, document, parent_id, is_segment in rows:
            found.setdefault(trace_id, []).append(EntityRow(eid, parent_id, is_segment, document))
        return found

    def load_traces(self, trace_ids: Iterable[str]) -> dict[str, StoredTrace]:
        """What ingest needs to rebuild the state of traces it no longer caches."""
        ids = sorted(set(trace_ids))
        rows = self.entities(ids)
        if not rows:
            return {}
        table = self._t.query_arrow(
            f"SELECT trace_id, toUInt32(max(ts)), max(revision) FROM {self._db}.traces "
            "WHERE trace_id IN {ids:Array(String)} GROUP BY trace_id",
            {"ids": sorted(rows)},
        )
        meta = {
            tid: (ts, rev)
            for tid, ts, rev in zip(*(table.column(i).to_pylist() for i in range(3)), strict=True)
        }
        out: dict[str, StoredTrace] = {}
        for trace_id, entities in rows.items():
            ts, revision = meta.get(trace_id, (0, 0))
            if not ts:
                ts = int(min(float(e.document["start_time"]) for e in entities))
            out[trace_id] = StoredTrace(
                ts, revision, [(e.document, e.parent_id, e.is_segment) for e in entities]
            )
        return out

    def vocabulary(self, start: float, end: float) -> list[dict[str, Any]]:
        """Service names and annotation keys (with values) of the traces stored in
        ``[start, end]``, most frequent first (see :mod:`fluoroscope.store.vocabulary`)."""
        sql, params = vocabulary_sql(self._db, int(start), int(end) + 1)
        rows: list[dict[str, Any]] = self._t.query_arrow(sql, params).to_pylist()
        return rows

    def replay_sampling(
        self, rules: Sequence[SamplingRule], start: float, end: float, period: int
    ) -> list[tuple[int, float, int, float]]:
        """The traces whose start lies in ``[start, end)`` replayed against ``rules``
        (tried in the order given, the last one the catch-all; see
        :mod:`fluoroscope.store.whatif`): ``(rule index, bucket start, matched, kept)``
        per rule and ``period``-second bucket that holds traces."""
        sql, params = replay_sql(self._db, rules, start, end, period)
        rows = self._t.query_arrow(sql, params).to_pylist()
        return [(r["rule"], r["bucket"], r["matched"], r["kept"]) for r in rows]
