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

import base64
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa

from fluoroscope.model.errors import InvalidRequest, StoreError
from fluoroscope.model.ids import is_trace_id, trace_epoch
from fluoroscope.model.sampling import SamplingRule
from fluoroscope.model.summary import HttpSummary, TraceSummary
from fluoroscope.model.summarycolumns import (  # re-exported: filters compile against them
    ROOT_CAUSE_CATEGORIES as ROOT_CAUSE_CATEGORIES,
)
from fluoroscope.model.summarycolumns import (
    ROOT_CAUSE_LEVELS as ROOT_CAUSE_LEVELS,
)
from fluoroscope.store import critpath, slices
from fluoroscope.store.arrowstreams import ArrowStreams
from fluoroscope.store.batch import StoredTrace, WriteBatch
from fluoroscope.store.details import DETAILS_READ, RestoredParts
from fluoroscope.store.encode import CONTRIBUTIONS, encode_batch
from fluoroscope.store.graphstats import (
    GROUP_TABLES,
    graph_sql,
    group_minutes_sql,
    group_rollup,
    minutes_sql,
    rollup,
)
from fluoroscope.store.groups import GroupStore
from fluoroscope.store.groupstats import GroupStatsStore
from fluoroscope.store.schema import migrate
from fluoroscope.store.settings import SamplingRuleStore, SettingsStore
from fluoroscope.store.spandoc import restore_document
from fluoroscope.store.tracestats import FAST_ANALYZER, finish_rows, group_stats_sql
from fluoroscope.store.transport import ChdbTransport, Transport, open_transport
from fluoroscope.store.vocabulary import vocabulary_sql
from fluoroscope.store.whatif import replay_sql

__all__ = ["EntityRow", "Store", "SummaryPage"]

_WINDOW_SLACK: Final = 3600  # a trace's id epoch may precede or follow its first segment
_FEW_TRACES: Final = 5  # traces looked up by one thread (Store._entity_rows)
_MINUTE_TABLES: Final = frozenset({"node_stats", "edge_stats"})

_SUMMARY_READ: Final = (
    "trace_id, revision, start_time, duration, response_time, has_fault, has_error, "
    "has_throttle, is_partial, http_method, http_url, http_status, user_agent, client_ip, "
    + DETAILS_READ
)
_DETAILS_AT: Final = _SUMMARY_READ.split(", ").index("details")  # its column


@dataclass(frozen=True, slots=True)
class EntityRow:
    """One stored entity of a trace (its own document, children excluded)."""

    id: str
    parent_id: str
    is_segment: bool
    document: dict[str, Any]


@dataclass(slots=True)
class SummaryPage:
    """One page of summaries, newest first; ``next_token`` continues further back."""

    summaries: list[TraceSummary]
    next_token: str | None
    scanned: int


def _encode_token(start: float, trace_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([start, trace_id])).decode()


def _decode_token(token: str) -> tuple[float, str]:
    try:
        start, trace_id = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return float(start), str(trace_id)
    except Exception:
        raise InvalidRequest("NextToken is not a token this server issued") from None


class Store:
    """The ClickHouse-engine store (see the module docstring for the contract)."""

    def __init__(self, transport: Transport, database: str) -> None:
        self._t = transport
        self.database = database
        self._db = f"`{database}`"
        self.groups = GroupStore(transport, self._db)
        self.group_stats = GroupStatsStore(transport, self._db)
        self.sampling_rules = SamplingRuleStore(transport, self._db)
        self.settings = SettingsStore(transport, self._db)
        self._old_analyzer = True  # until the engine says it has no such setting
        self._rollup: bool | None = None  # graph_stats exists (asked once)
        self._group_graph: bool | None = None  # group_graph_stats exists (asked once)

    def _query_old_analyzer(
        self, sql: str, params: Mapping[str, Any], settings: str = ""
    ) -> pa.Table:
        """``sql`` planned by the engine's previous query analyzer, which plans the
        statements sent here much faster; an engine without that setting (a ClickHouse
        server before 24.3) runs it as is, and is not asked again. ``settings``: more
        ``name = value`` settings for the statement, comma-separated."""
        if self._old_analyzer:
            try:
                return self._t.query_arrow(
                    sql + FAST_ANALYZER + (f", {settings}" if settings else ""), params
                )
            except StoreError as exc:
                if "enable_analyzer" not in str(exc):
                    raise
                self._old_analyzer = False
        return self._t.query_arrow(sql + (f" SETTINGS {settings}" if settings else ""), params)

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

    def _has_rollup(self) -> bool:
        """Whether the schema has ``graph_stats`` (migration 23), asked once: a store
        opened by :meth:`open` always has it; one made on a database an older release
        laid out (not migrated) writes and reads the graph as that release did."""
        if self._rollup is None:
            self._rollup = self._has_table("graph_stats")
        return self._rollup

    def _has_group_graph(self) -> bool:
        """Whether the schema has ``group_graph_stats`` (migration 28), asked once, as
        :meth:`_has_rollup` asks for ``graph_stats``."""
        if self._group_graph is None:
            self._group_graph = self._has_table("group_graph_stats")
        return self._group_graph

    def _has_table(self, name: str) -> bool:
        found = self._t.query_arrow(
            "SELECT count() FROM system.tables WHERE database = {db:String} "
            "AND name = {name:String}",
            {"db": self.database, "name": name},
        )
        return bool(found.column(0)[0].as_py())

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

    def summaries(
        self,
        start: float,
        end: float,
        *,
        by_trace_id: bool = False,
        limit: int = 100,
        token: str | None = None,
        where_clause: str | None = None,
        where_params: Mapping[str, Any] | None = None,
    ) -> SummaryPage:
        """Trace summaries whose start (or, ``by_trace_id``, whose id epoch) lies in
        ``[start, end]``, newest first, ``limit`` per page. ``where_clause`` is an extra SQL
        condition over the ``traces`` columns whose values are all bound through
        ``where_params`` (``{name:Type}`` placeholders whose names must differ from the
        store's own: ``lo hi start end limit last_start last_id floor cut``)."""
        params: dict[str, Any] = {
            "lo": max(int(start) - _WINDOW_SLACK, 0),
            "hi": int(end) + _WINDOW_SLACK,
            "start": float(start),
            "end": float(end),
            "limit": int(limit) + 1,
        }
        conditions = ["ts >= {lo:UInt32}", "ts <= {hi:UInt32}"]
        if by_trace_id:
            params["lo"], params["hi"] = int(start), int(end)
        else:
            conditions.append("start_time >= {start:Float64} AND start_time <= {end:Float64}")
        if token:
            last_start, last_id = _decode_token(token)
            params["last_start"], params["last_id"] = last_start, last_id
            conditions.append("(start_time, trace_id) < ({last_start:Float64}, {last_id:String})")
        if where_clause:
            clash = set(where_params or {}) & (set(params) | {"floor", "cut"})
            if clash:
                raise ValueError(f"filter parameters clash with the store's: {sorted(clash)}")
            conditions.append(f"({where_clause})")
            params.update(where_params or {})
        if by_trace_id:
            table = self._summary_slice(conditions, params)
        else:
            top = min(float(end), params["last_start"]) if token else float(end)
            table = self._sliced(conditions, params, float(start), top, bool(where_clause))
        summaries = _read_summaries(table)
        next_token = None
        if len(summaries) > limit:
            summaries = summaries[:limit]
            last = summaries[-1]
            next_token = _encode_token(last.start_time, last.id)
        return SummaryPage(summaries, next_token, len(summaries))

    def _summary_slice(self, conditions: list[str], params: dict[str, Any]) -> pa.Table:
        return self._t.query_arrow(
            f"SELECT {_SUMMARY_READ} FROM {self._db}.traces FINAL WHERE {' AND '.join(conditions)} "
            "ORDER BY start_time DESC, trace_id DESC LIMIT {limit:UInt32}",
            params,
        )

    def _sliced(
        self,
        conditions: list[str],
        params: dict[str, Any],
        start: float,
        top: float,
        filtered: bool,
    ) -> pa.Table:
        """The page read in slices of ``[start, top]`` from the top, until they hold it
        (:mod:`fluoroscope.store.slices`): the rows one statement over the window gives."""
        wanted = int(params["limit"])
        tables: list[pa.Table] = []
        found = 0
        cut: float | None = None  # the floor of the slice above (the same float: no gap)
        floor = top - slices.first_width(top - start, filtered)
        while True:
            extra, bounds = [], {**params, "limit": wanted - found}
            if floor > start:
                extra.append("start_time >= {floor:Float64}")
                bounds["floor"] = floor
            if cut is not None:
                extra.append("start_time < {cut:Float64}")
                bounds["cut"] = cut
            table = self._summary_slice(conditions + extra, bounds)
            tables.append(table)
            found += table.num_rows
            if found >= wanted or floor <= start:
                break
            cut = floor
            floor = cut - slices.next_width(top - cut, found, wanted)
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

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

    def stats(
        self,
        kind: str,
        start: float,
        end: float,
        *,
        period: int | None = None,
        group_key: str | None = None,
    ) -> pa.Table:
        """Per-minute node (``kind="node"``) or edge statistics whose minute lies in
        ``[start, end)``, summed per node or edge over the window - or, with ``period``
        (seconds, a multiple of 60), per node or edge and per ``bucket`` (epoch seconds,
        a multiple of ``period``). Histograms are ``[(bucket_us, count)]``. Of every
        trace, or with ``group_key`` of the traces a tracked group counted
        (:func:`encode_group_stats`)."""
        if kind == "node":
            keys = "name, type, max(is_root) AS is_root, min(inferred) AS inferred"
            group = "name, type"
            table = "node_stats"
        elif kind == "edge":
            keys = "src_name, src_type, dst_name, dst_type"
            group = keys
            table = "edge_stats"
        else:
            raise ValueError(f"unknown statistics kind {kind!r}")
        params: dict[str, Any] = {"lo": int(start) // 60 * 60, "hi": int(end)}
        where = ""
        source = f"{self._db}.{table}"
        if group_key is not None:
            params["group_key"] = group_key
            if self._has_group_graph():  # filled from group_{table} by migration 28
                source = group_minutes_sql(self._db, kind)  # of the group alone
            else:
                source = f"{self._db}.group_{table}"
                where = "group_key = {group_key:String} AND "
        elif self._has_rollup():  # the minutes are graph_stats' (insert_tables)
            source = minutes_sql(self._db, kind)
        if period is not None:
            if period < 60 or period % 60:
                raise ValueError("period must be a positive multiple of 60 seconds")
            keys = (
                f"intDiv(toUInt32(minute), {{period:UInt32}}) * {{period:UInt32}} AS bucket, {keys}"
            )
            group = f"bucket, {group}"
            params["period"] = period
        return self._t.query_arrow(
            f"SELECT {keys}, sum(total) AS total, sum(ok) AS ok, sum(errors) AS errors, "
            "sum(throttles) AS throttles, sum(faults) AS faults, "
            "sum(response_time) AS response_time, min(first_start) AS first_start, "
            "max(last_end) AS last_end, "
            "sumMap(histogram) AS histogram "
            f"FROM {source} "
            f"WHERE {where}minute >= toDateTime({{lo:UInt32}}) AND minute < toDateTime({{hi:UInt32}}) "
            f"GROUP BY {group} HAVING total != 0 ORDER BY {group}",
            params,
        )

    def group_graph(
        self, start: float, end: float, group_key: str, *, period: int | None = None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """A tracked group's node and edge statistics rows - as :meth:`stats` gives them
        for each kind with ``group_key``, the same sums - in one statement over
        ``group_graph_stats`` (migration 28), where reading the two kinds apart took two
        (measured on a 300k-span store, one merged part: 5.5-6 ms each); in two on a
        schema without it."""
        if not self._has_group_graph():
            return (
                self.stats("node", start, end, period=period, group_key=group_key).to_pylist(),
                self.stats("edge", start, end, period=period, group_key=group_key).to_pylist(),
            )
        params: dict[str, Any] = {"lo": int(start) // 60 * 60, "hi": int(end), "g": group_key}
        keys = "kind, name, type, dst_name, dst_type"
        bucket = ""
        if period is not None:
            if period < 60 or period % 60:
                raise ValueError("period must be a positive multiple of 60 seconds")
            bucket = "intDiv(toUInt32(minute), {period:UInt32}) * {period:UInt32} AS bucket, "
            keys = f"bucket, {keys}"
            params["period"] = period
        rows = self._t.query_arrow(
            f"SELECT {bucket}kind, name, type, dst_name, dst_type, max(is_root) AS is_root, "
            "min(inferred) AS inferred, sum(total) AS total, sum(ok) AS ok, "
            "sum(errors) AS errors, sum(throttles) AS throttles, sum(faults) AS faults, "
            "sum(response_time) AS response_time, min(first_start) AS first_start, "
            "max(last_end) AS last_end, sumMap(histogram) AS histogram "
            f"FROM {self._db}.group_graph_stats WHERE group_key = {{g:String}} "
            "AND minute >= toDateTime({lo:UInt32}) AND minute < toDateTime({hi:UInt32}) "
            f"GROUP BY {keys} HAVING total != 0 ORDER BY {keys}",
            params,
        ).to_pylist()
        nodes: list[dict[str, Any]] = []
        edges: list[dict[str, Any]] = []
        for row in rows:
            _file_by_kind(row, nodes, edges)
        return nodes, edges

    def graph_stats(
        self, start: float, end: float
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every node's and every edge's statistics summed over the minutes in
        ``[start, end)`` - rows (nodes, edges) as :meth:`stats` gives them for each kind,
        in the same order, with the same sums - in one statement over ``graph_stats``
        (:mod:`fluoroscope.store.graphstats`), whose cost depends on the nodes and edges,
        not on the minutes or the spans."""
        if not self._has_rollup():
            return (
                self.stats("node", start, end).to_pylist(),
                self.stats("edge", start, end).to_pylist(),
            )
        table = self._query_old_analyzer(graph_sql(self._db, int(start) // 60 * 60, int(end)), {})
        columns = {name: table.column(name).to_pylist() for name in table.column_names[:-1]}
        histogram = table.column("histogram").combine_chunks()
        offsets = histogram.offsets.to_pylist()
        buckets = histogram.keys.to_pylist()
        counts = histogram.items.to_pylist()
        nodes: list[dict[str, Any]] = []
        edges: list[dict[str, Any]] = []
        for i in range(table.num_rows):
            row = {name: values[i] for name, values in columns.items()}
            first, last = offsets[i], offsets[i + 1]
            row["histogram"] = list(zip(buckets[first:last], counts[first:last], strict=True))
            _file_by_kind(row, nodes, edges)
        return nodes, edges

    def trace_stats(
        self,
        start: float,
        end: float,
        where_clause: str,
        where_params: Mapping[str, Any],
        *,
        period: int | None = None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Node and edge statistics like :meth:`stats` (rows as dicts: nodes, edges) but
        only over the traces for which ``where_clause`` holds - an SQL condition over
        the ``traces`` columns, values bound through ``where_params`` (names other than
        ``lo hi tlo thi start end period``) - recomputed in the engine from their stored
        spans (``fluoroscope.store.tracestats`` states the rules).
        Counts the calls that started in a minute in ``[start, end)``."""
        params: dict[str, Any] = {
            "lo": int(start) // 60 * 60,
            "hi": int(end),
            "tlo": max(int(start) // 60 * 60 - _WINDOW_SLACK, 0),
            "thi": int(end) + _WINDOW_SLACK,
            # traces that can hold such calls (a superset: the minute test is exact)
            "start": float(int(start) // 60 * 60),
            "end": float(int(end) + 60),
        }
        if period is not None:
            if period < 60 or period % 60:
                raise ValueError("period must be a positive multiple of 60 seconds")
            params["period"] = period
        clash = set(where_params) & set(params)
        if clash:
            raise ValueError(f"filter parameters clash with the store's: {sorted(clash)}")
        sql = group_stats_sql(self._db, where_clause, by_period=period is not None)
        values = {**params, **where_params}
        return finish_rows(self._query_old_analyzer(sql, values).to_pylist())

    def count_traces(
        self, start: float, end: float, where_clause: str, where_params: Mapping[str, Any]
    ) -> int:
        """How many traces started in ``[start, end]`` and meet ``where_clause`` (over
        the ``traces`` columns; parameter names other than ``tlo thi start end``)."""
        table = self._t.query_arrow(
            f"SELECT count() AS n FROM {self._db}.traces FINAL "
            "WHERE ts >= toDateTime({tlo:UInt32}) AND ts <= toDateTime({thi:UInt32}) "
            "AND start_time >= {start:Float64} AND start_time <= {end:Float64} "
            f"AND ({where_clause})",
            _window_params(start, end, where_params),
        )
        return int(table.column(0)[0].as_py())

    def critical_path_stats(
        self,
        start: float,
        end: float,
        where_clause: str,
        where_params: Mapping[str, Any],
        *,
        slowest: float = 0.0,
        max_entities: int = 2000,
        entries: bool = False,
    ) -> list[dict[str, Any]]:
        """The critical path of the traces started in ``[start, end]`` meeting
        ``where_clause``, computed in the engine (:mod:`fluoroscope.store.critpath`):
        per entry key over the set (only the traces at or above the ``slowest``
        duration quantile when above 0), or with ``entries`` every trace's path entries."""
        params = _window_params(start, end, where_params)
        params.update(slowest=float(slowest), max_entities=int(max_entities))
        name = uuid.uuid4().hex
        scratch, children, path, traces = (
            f"{self._db}.`critpath_{name}{part}`" for part in ("", "_children", "_path", "_traces")
        )
        try:
            self._t.execute(
                f"CREATE TABLE {scratch} ENGINE = Memory AS "
                + critpath.entities_sql(self._db, where_clause),
                params,
            )
            self._t.execute(
                f"CREATE TABLE {children} ENGINE = Join(ALL, INNER, pg) AS "
                + critpath.children_sql(scratch)
            )
            self._t.execute(
                f"CREATE TABLE {path} ENGINE = Memory AS " + critpath.walk_sql(scratch, children),
                params,
            )
            if entries:
                sql = critpath.entries_sql(scratch, path)
            else:
                self._t.execute(
                    f"CREATE TABLE {traces} ENGINE = Memory AS "
                    + critpath.traces_sql(scratch, path),
                    params,
                )
                sql = critpath.aggregate_sql(traces)
            rows: list[dict[str, Any]] = self._t.query_arrow(sql, params).to_pylist()
        finally:
            for table in (scratch, children, path, traces):
                self._t.execute(f"DROP TABLE IF EXISTS {table}")
        return rows


def _file_by_kind(
    row: dict[str, Any], nodes: list[dict[str, Any]], edges: list[dict[str, Any]]
) -> None:
    """Append a row of ``graph_stats`` or ``group_graph_stats`` (its ``kind`` 0 a node,
    1 an edge) to ``nodes`` or ``edges`` named as the per-minute tables name theirs."""
    if row.pop("kind") == 0:
        del row["dst_name"], row["dst_type"]
        nodes.append(row)
    else:
        del row["is_root"], row["inferred"]
        row["src_name"] = row.pop("name")
        row["src_type"] = row.pop("type")
        edges.append(row)


def _window_params(start: float, end: float, where_params: Mapping[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "tlo": max(int(start) - _WINDOW_SLACK, 0),
        "thi": int(end) + _WINDOW_SLACK,
        "start": float(start),
        "end": float(end),
    }
    clash = set(where_params) & (set(params) | {"slowest", "max_entities"})
    if clash:
        raise ValueError(f"filter parameters clash with the store's: {sorted(clash)}")
    params.update(where_params)
    return params


def _read_summaries(table: pa.Table) -> list[TraceSummary]:
    columns = [table.column(i).to_pylist() for i in range(_DETAILS_AT + 1)]
    restored: RestoredParts | None = None
    out: list[TraceSummary] = []
    loads = orjson.loads
    for row, (
        trace_id, revision, start, duration, response_time, fault, error, throttle, partial,
        method, url, status, agent, client_ip, details,
    ) in enumerate(zip(*columns, strict=True)):  # fmt: skip
        http = None
        if method or url or status:
            http = HttpSummary(url, status, method, agent, client_ip)
        summary = TraceSummary(
            id=trace_id,
            start_time=start,
            duration=duration,
            response_time=response_time if response_time >= 0 else None,
            has_fault=bool(fault),
            has_error=bool(error),
            has_throttle=bool(throttle),
            is_partial=bool(partial),
            http=http,
            revision=revision,
        )
        parts = loads(details)
        summary.restore_details(parts)
        if "s" not in parts:  # written without what the columns hold (store.details)
            if restored is None:
                restored = RestoredParts(table, _DETAILS_AT + 1)
            restored.restore(summary, row)
        out.append(summary)
    return out
