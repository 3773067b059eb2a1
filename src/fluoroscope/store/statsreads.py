"""The store's statistics over a window of time: per-minute node and edge statistics
summed (of every trace, or of a tracked group), the service graph's in one statement
(``graph_stats``, ``group_graph_stats``: :mod:`fluoroscope.store.graphstats`), and over
the traces a filter selects: their graph recomputed from their spans
(:mod:`fluoroscope.store.tracestats`), their count, and their critical path
(:mod:`fluoroscope.store.critpath`).

Contract: :class:`StatsReads` is a part of :class:`~fluoroscope.store.store.Store` (over
:class:`~fluoroscope.store.storebase.StoreBase`), not used alone, and keeps the store's
contract (:mod:`fluoroscope.store.store`). A filter's parameters must not reuse the
names the store binds (each method names them); a clash raises ``ValueError``, as does
a ``period`` that is not a positive multiple of 60 seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from fluoroscope.store import critpath
from fluoroscope.store.graphstats import graph_sql, group_minutes_sql, minutes_sql
from fluoroscope.store.storebase import _WINDOW_SLACK, StoreBase
from fluoroscope.store.tracestats import finish_rows, group_stats_sql

__all__ = ["StatsReads"]


class StatsReads(StoreBase):
    """The store's statistics reads (see the module docstring)."""

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
