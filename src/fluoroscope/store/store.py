"""The store: writes batches, reads traces, summaries and graph statistics.

Contract (every method): blocking, so call it from a worker thread, never from the
event loop; safe to call from several threads at once (the engine serializes
statements); raises :class:`~fluoroscope.model.errors.StoreError` when the engine
fails. :meth:`Store.write` is idempotent on ``(trace_id, id)`` - re-sent entities
replace, never duplicate - and returning means the rows are on disk. Reads return new
objects owned by the caller, and collapse replaced rows (``FINAL``), so they never
show a superseded version.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa

from fluoroscope.model.errors import InvalidRequest, StoreError
from fluoroscope.model.summary import HttpSummary, TraceSummary
from fluoroscope.store.batch import StoredTrace, WriteBatch
from fluoroscope.store.groups import GroupStore
from fluoroscope.store.schema import migrate
from fluoroscope.store.tracestats import FAST_ANALYZER, finish_rows, group_stats_sql
from fluoroscope.store.transport import ChdbTransport, Transport, open_transport

__all__ = ["EntityRow", "Store", "SummaryPage", "encode_batch"]

_ANN_STRING, _ANN_NUMBER, _ANN_BOOL = 0, 1, 2
_WINDOW_SLACK: Final = 3600  # a trace's id epoch may precede or follow its first segment

_SPAN_SCHEMA: Final = pa.schema(
    [
        ("ts", pa.uint32()),
        ("trace_id", pa.string()),
        ("id", pa.string()),
        ("parent_id", pa.string()),
        ("is_segment", pa.uint8()),
        ("name", pa.string()),
        ("origin", pa.string()),
        ("namespace", pa.string()),
        ("start_time", pa.float64()),
        ("end_time", pa.float64()),
        ("flags", pa.uint8()),
        ("http_status", pa.uint16()),
        ("version", pa.uint64()),
        ("doc", pa.binary()),
    ]
)
_HIST = pa.map_(pa.uint32(), pa.int64())
_STAT_FIELDS: Final = [
    ("total", pa.int64()),
    ("ok", pa.int64()),
    ("errors", pa.int64()),
    ("throttles", pa.int64()),
    ("faults", pa.int64()),
    ("response_time", pa.float64()),
    ("first_start", pa.float64()),
    ("last_end", pa.float64()),
    ("histogram", _HIST),
]
_NODE_SCHEMA: Final = pa.schema(
    [
        ("minute", pa.uint32()),
        ("name", pa.string()),
        ("type", pa.string()),
        ("is_root", pa.uint8()),
        ("inferred", pa.uint8()),
        *_STAT_FIELDS,
    ]
)
_EDGE_SCHEMA: Final = pa.schema(
    [
        ("minute", pa.uint32()),
        ("src_name", pa.string()),
        ("src_type", pa.string()),
        ("dst_name", pa.string()),
        ("dst_type", pa.string()),
        *_STAT_FIELDS,
    ]
)
_STRINGS = pa.list_(pa.string())
_SUMMARY_SCHEMA: Final = pa.schema(
    [
        ("ts", pa.uint32()),
        ("trace_id", pa.string()),
        ("revision", pa.uint32()),
        ("start_time", pa.float64()),
        ("end_time", pa.float64()),
        ("duration", pa.float64()),
        ("response_time", pa.float64()),
        ("has_fault", pa.uint8()),
        ("has_error", pa.uint8()),
        ("has_throttle", pa.uint8()),
        ("is_partial", pa.uint8()),
        ("http_method", pa.string()),
        ("http_url", pa.string()),
        ("http_status", pa.uint16()),
        ("user_agent", pa.string()),
        ("client_ip", pa.string()),
        ("entry_name", pa.string()),
        ("entry_type", pa.string()),
        ("service_names", _STRINGS),
        ("service_types", _STRINGS),
        ("users", _STRINGS),
        ("resource_arns", _STRINGS),
        ("ann_keys", _STRINGS),
        ("ann_types", pa.list_(pa.uint8())),
        ("ann_strings", _STRINGS),
        ("ann_numbers", pa.list_(pa.float64())),
        ("segment_count", pa.uint32()),
        ("details", pa.binary()),
        # migration 2 (appended: inserts are positional)
        ("svc_bits", pa.list_(pa.uint8())),
        ("svc_root", pa.list_(pa.uint8())),
        ("svc_inferred", pa.list_(pa.uint8())),
        ("svc_min_rt", pa.list_(pa.float64())),
        ("svc_max_rt", pa.list_(pa.float64())),
        ("exc_types", _STRINGS),
        ("exc_messages", _STRINGS),
        ("exc_services", pa.list_(pa.int16())),
        ("instance_ids", _STRINGS),
        ("zones", _STRINGS),
        # migration 4 (edge indices are 1-based, as ClickHouse arrays)
        ("edge_src", pa.list_(pa.uint16())),
        ("edge_dst", pa.list_(pa.uint16())),
        ("edge_bits", pa.list_(pa.uint8())),
        ("edge_min_rt", pa.list_(pa.float64())),
        ("edge_max_rt", pa.list_(pa.float64())),
        # migration 5: root-cause items (see _cause_items)
        ("rc_cat", pa.list_(pa.uint8())),
        ("rc_level", pa.list_(pa.uint8())),
        ("rc_name", _STRINGS),
        ("rc_type", _STRINGS),
        ("rc_message", _STRINGS),
        ("rc_remote", pa.list_(pa.uint8())),
        ("rc_inferred", pa.list_(pa.uint8())),
        ("rc_coverage", pa.list_(pa.float64())),
    ]
)
ROOT_CAUSE_CATEGORIES: Final = ("fault", "error", "responsetime")
ROOT_CAUSE_LEVELS: Final = ("service", "entity", "exception")


_SUMMARY_COLUMNS: Final = tuple(_SUMMARY_SCHEMA.names)
_RC_COLUMNS: Final = (
    "rc_cat", "rc_level", "rc_name", "rc_type", "rc_message", "rc_remote", "rc_inferred",
    "rc_coverage",
)  # fmt: skip
_SUMMARY_SCALARS: Final = (
    "ts", "trace_id", "revision", "start_time", "end_time", "duration", "response_time",
    "has_fault", "has_error", "has_throttle", "is_partial", "http_method", "http_url",
    "http_status", "user_agent", "client_ip", "entry_name", "entry_type", "segment_count",
    "details",
)  # fmt: skip
_SUMMARY_READ: Final = (
    "trace_id, revision, start_time, duration, response_time, has_fault, has_error, "
    "has_throttle, is_partial, http_method, http_url, http_status, user_agent, client_ip, details"
)


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


def _summary_columns(rows: Sequence[tuple[int, TraceSummary]]) -> dict[str, Sequence[Any]]:
    """The ``traces`` table's columns: a list per scalar column, an Arrow array per list
    column. List columns are built from flat values and offsets (one offset per row and
    group of columns of equal lengths), not from a list per row and cell: this runs for
    every changed trace of every batch."""
    scalars: list[tuple[Any, ...]] = []
    svc_names: list[str] = []
    svc_types: list[str] = []
    svc_off = [0]
    users: list[str] = []
    users_off = [0]
    arns: list[str] = []
    arns_off = [0]
    ann_keys: list[str] = []
    ann_types: list[int] = []
    ann_strings: list[str] = []
    ann_numbers: list[float] = []
    ann_off = [0]
    f_bits: list[int] = []
    f_root: list[int] = []
    f_inferred: list[int] = []
    f_min: list[float] = []
    f_max: list[float] = []
    facts_off = [0]
    exc_types: list[str] = []
    exc_messages: list[str] = []
    exc_services: list[int] = []
    exc_off = [0]
    instances: list[str] = []
    instances_off = [0]
    zones: list[str] = []
    zones_off = [0]
    e_src: list[int] = []
    e_dst: list[int] = []
    e_bits: list[int] = []
    e_min: list[float] = []
    e_max: list[float] = []
    edges_off = [0]
    rc: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [])
    rc_off = [0]
    no_http = HttpSummary()
    dumps = orjson.dumps
    for ts, s in rows:
        http = s.http or no_http
        services = s.services
        entry = services[s.entry_point] if s.entry_point is not None else None
        scalars.append(
            (
                ts, s.id, s.revision, s.start_time, s.start_time + s.duration, s.duration,
                s.response_time if s.response_time is not None else -1.0,
                int(s.has_fault), int(s.has_error), int(s.has_throttle), int(s.is_partial),
                http.method, http.url, http.status, http.user_agent, http.client_ip,
                entry.name if entry else "", entry.type if entry else "",
                len(services), dumps(s.details()),
            )
        )  # fmt: skip
        for service in services:
            svc_names.append(service.name)
            svc_types.append(service.type)
        svc_off.append(len(svc_names))
        if s.users:
            users.extend([name for name, _ in s.users])
        users_off.append(len(users))
        arns.extend(s.resource_arns)
        arns_off.append(len(arns))
        for key, pairs in s.annotations.items():
            for value, _ in pairs:
                ann_keys.append(key)
                if isinstance(value, bool):
                    ann_types.append(_ANN_BOOL)
                    ann_strings.append("")
                    ann_numbers.append(float(value))
                elif isinstance(value, int | float):
                    ann_types.append(_ANN_NUMBER)
                    ann_strings.append("")
                    ann_numbers.append(float(value))
                else:
                    ann_types.append(_ANN_STRING)
                    ann_strings.append(str(value))
                    ann_numbers.append(0.0)
        ann_off.append(len(ann_keys))
        for f in s.facts:
            f_bits.append(f.bits)
            f_root.append(int(f.root))
            f_inferred.append(int(f.inferred))
            f_min.append(f.min_response_time)
            f_max.append(f.max_response_time)
        facts_off.append(len(f_bits))
        for kind, message, where in s.exceptions:
            exc_types.append(kind)
            exc_messages.append(message)
            exc_services.append(where)
        exc_off.append(len(exc_types))
        instances.extend(s.instance_ids)
        instances_off.append(len(instances))
        zones.extend(s.availability_zones)
        zones_off.append(len(zones))
        for edge in s.edges:
            e_src.append(edge.source + 1)
            e_dst.append(edge.dest + 1)
            e_bits.append(edge.bits)
            e_min.append(edge.min_response_time)
            e_max.append(edge.max_response_time)
        edges_off.append(len(e_src))
        if s.fault_root_causes or s.error_root_causes or s.response_time_root_causes:
            _cause_items(s, rc)
        rc_off.append(len(rc[0]))
    cols: dict[str, Sequence[Any]] = dict(
        zip(_SUMMARY_SCALARS, map(list, zip(*scalars, strict=True)), strict=True)
    )
    if not scalars:
        cols = {name: [] for name in _SUMMARY_SCALARS}
    for names, off, values in (
        (("service_names", "service_types"), svc_off, (svc_names, svc_types)),
        (("users",), users_off, (users,)),
        (("resource_arns",), arns_off, (arns,)),
        (("ann_keys", "ann_types", "ann_strings", "ann_numbers"), ann_off,
         (ann_keys, ann_types, ann_strings, ann_numbers)),
        (("svc_bits", "svc_root", "svc_inferred", "svc_min_rt", "svc_max_rt"), facts_off,
         (f_bits, f_root, f_inferred, f_min, f_max)),
        (("exc_types", "exc_messages", "exc_services"), exc_off,
         (exc_types, exc_messages, exc_services)),
        (("instance_ids",), instances_off, (instances,)),
        (("zones",), zones_off, (zones,)),
        (("edge_src", "edge_dst", "edge_bits", "edge_min_rt", "edge_max_rt"), edges_off,
         (e_src, e_dst, e_bits, e_min, e_max)),
        (_RC_COLUMNS, rc_off, rc),
    ):  # fmt: skip
        offsets = pa.array(off, type=pa.int32())
        for name, flat in zip(names, values, strict=True):
            value_type = _SUMMARY_SCHEMA.field(name).type.value_type
            cols[name] = pa.ListArray.from_arrays(offsets, pa.array(flat, type=value_type))
    return cols


def _cause_items(s: TraceSummary, out: tuple[list[Any], ...]) -> None:
    """Append the summary's root causes to ``out`` (one list per ``rc_*`` column), one
    item per service, path entity and exception: (category, level, name, type, message,
    remote, inferred, coverage)."""
    cat, level, name, type_, message, remote, inferred, coverage = out
    groups = (s.fault_root_causes, s.error_root_causes, s.response_time_root_causes)  # by category
    for category, causes in enumerate(groups):
        for cause in causes:
            service = s.services[cause.service]
            path = cause.path
            cause_inferred = int(cause.inferred)
            any_remote = 0
            for entity in path:
                if entity.remote:
                    any_remote = 1
                    break
            cat.append(category)
            level.append(0)
            name.append(service.name)
            type_.append(service.type)
            message.append("")
            remote.append(any_remote)
            inferred.append(cause_inferred)
            coverage.append((path[-1].coverage or 0.0) if path else 0.0)
            for entity in path:
                entity_remote = int(entity.remote)
                cat.append(category)
                level.append(1)
                name.append(entity.name)
                type_.append("")
                message.append("")
                remote.append(entity_remote)
                inferred.append(cause_inferred)
                coverage.append(entity.coverage or 0.0)
                for kind, text in entity.exceptions:
                    cat.append(category)
                    level.append(2)
                    name.append(kind)
                    type_.append("")
                    message.append(text)
                    remote.append(entity_remote)
                    inferred.append(0)
                    coverage.append(0.0)


def _arrow(columns: Mapping[str, Sequence[Any] | pa.Array], schema: pa.Schema) -> pa.Table:
    """``columns`` (every field of ``schema``; a list, or an Arrow array already of the
    field's type) as an Arrow table, converted one column at a time: ``pa.table(dict)``
    holds the GIL for the whole table (~0.1 s for 50k span rows), which starved the UDP
    loop; between two columns the loop thread gets its turn."""
    return pa.Table.from_arrays(
        [
            column if isinstance(column, pa.Array) else pa.array(column, type=f.type)
            for f, column in ((f, columns[f.name]) for f in schema)
        ],
        schema=schema,
    )


def encode_batch(batch: WriteBatch) -> list[tuple[str, pa.Table]]:
    """``batch`` as Arrow tables, each named by the table it goes to (no engine needed:
    the ingest worker encodes, the process owning the store inserts)."""
    tables: list[tuple[str, pa.Table]] = []
    spans = batch.spans
    if len(spans):
        tables.append(
            (
                "spans",
                _arrow({name: getattr(spans, name) for name in _SPAN_SCHEMA.names}, _SPAN_SCHEMA),
            )
        )
    if batch.summaries:
        tables.append(("traces", _arrow(_summary_columns(batch.summaries), _SUMMARY_SCHEMA)))
    stats = batch.stats
    if stats:
        nodes = stats.node_columns()
        if nodes["minute"]:
            tables.append(("node_stats", _arrow(nodes, _NODE_SCHEMA)))
        edges = stats.edge_columns()
        if edges["minute"]:
            tables.append(("edge_stats", _arrow(edges, _EDGE_SCHEMA)))
    return tables


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
    def embedded(self) -> bool:
        """True when the engine runs inside this process (chDB)."""
        return isinstance(self._t, ChdbTransport)

    def close(self) -> None:
        self._t.close()

    # -- writes ----------------------------------------------------------------------

    def write(self, batch: WriteBatch) -> None:
        """Store every row of ``batch``; returns when they are written."""
        self.insert_tables(encode_batch(batch))

    def insert_tables(self, tables: Sequence[tuple[str, pa.Table]]) -> None:
        """Append each (table name, rows) as :func:`encode_batch` made them, in order;
        returns when they are written."""
        for name, table in tables:
            self._t.insert_arrow(f"{self._db}.{name}", table)

    # -- reads -----------------------------------------------------------------------

    def max_trace_ts(self) -> int:
        """The latest trace epoch stored (0 for an empty store)."""
        table = self._t.query_arrow(f"SELECT toUInt32(max(ts)) FROM {self._db}.traces")
        value = table.column(0)[0].as_py() if table.num_rows else 0
        return int(value or 0)

    def entities(self, trace_ids: Iterable[str]) -> dict[str, list[EntityRow]]:
        """Every stored entity of each trace, by trace id; unknown ids are absent."""
        ids = sorted(set(trace_ids))
        if not ids:
            return {}
        table = self._t.query_arrow(
            f"SELECT trace_id, id, parent_id, is_segment, doc FROM {self._db}.spans FINAL "
            "WHERE trace_id IN {ids:Array(String)} ORDER BY trace_id, start_time, id",
            {"ids": ids},
        )
        found: dict[str, list[EntityRow]] = {}
        loads = orjson.loads
        for trace_id, eid, parent_id, is_segment, doc in zip(
            *(table.column(i).to_pylist() for i in range(5)), strict=True
        ):
            found.setdefault(trace_id, []).append(
                EntityRow(eid, parent_id, bool(is_segment), loads(doc))
            )
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
        store's own: ``lo hi start end limit last_start last_id``)."""
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
            clash = set(where_params or {}) & set(params)
            if clash:
                raise ValueError(f"filter parameters clash with the store's: {sorted(clash)}")
            conditions.append(f"({where_clause})")
            params.update(where_params or {})
        table = self._t.query_arrow(
            f"SELECT {_SUMMARY_READ} FROM {self._db}.traces FINAL WHERE {' AND '.join(conditions)} "
            "ORDER BY start_time DESC, trace_id DESC LIMIT {limit:UInt32}",
            params,
        )
        summaries = _read_summaries(table)
        next_token = None
        if len(summaries) > limit:
            summaries = summaries[:limit]
            last = summaries[-1]
            next_token = _encode_token(last.start_time, last.id)
        return SummaryPage(summaries, next_token, len(summaries))

    def stats(self, kind: str, start: float, end: float, *, period: int | None = None) -> pa.Table:
        """Per-minute node (``kind="node"``) or edge statistics whose minute lies in
        ``[start, end)``, summed per node or edge over the window - or, with ``period``
        (seconds, a multiple of 60), per node or edge and per ``bucket`` (epoch seconds,
        a multiple of ``period``). Histograms are ``[(bucket_us, count)]``."""
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
            f"FROM {self._db}.{table} "
            "WHERE minute >= toDateTime({lo:UInt32}) AND minute < toDateTime({hi:UInt32}) "
            f"GROUP BY {group} HAVING total != 0 ORDER BY {group}",
            params,
        )

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
        try:
            table = self._t.query_arrow(sql + FAST_ANALYZER, values)
        except StoreError as exc:
            if "enable_analyzer" not in str(exc):
                raise
            table = self._t.query_arrow(sql, values)  # an engine without that analyzer
        return finish_rows(table.to_pylist())


def _read_summaries(table: pa.Table) -> list[TraceSummary]:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    out: list[TraceSummary] = []
    loads = orjson.loads
    for (
        trace_id, revision, start, duration, response_time, fault, error, throttle, partial,
        method, url, status, agent, client_ip, details,
    ) in zip(*columns, strict=True):  # fmt: skip
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
        summary.restore_details(loads(details))
        out.append(summary)
    return out
