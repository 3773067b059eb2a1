"""The service graph's statistics at three resolutions, so a window reads a few rows.

``node_stats`` and ``edge_stats`` hold a row per node or edge and minute; summing 6 hours
of them (two statements, ~20k rows whose latency histograms the engine merges one entry
at a time) cost 30-65 ms. ``graph_stats`` holds the same sums per node and edge for
every minute, every 10 minutes and every hour (``step`` 60, 600, 3600; ``bucket`` the
step's start), nodes (``kind`` 0) and edges (``kind`` 1, ``name``/``type`` the caller,
``dst_*`` the callee) in one table with small granules. A window of whole minutes is
covered by whole hours, then whole 10 minutes, then minutes at its two ends
(:func:`cover`), so 6 hours read at most 5 + 10 + 18 rows per node and edge, in one
statement (:func:`graph_sql`); the sums are the same, exactly, as over the minutes.

Written by the store beside every insert into ``node_stats``/``edge_stats``
(:func:`rollup`: each row once per step, the engine's merges sum them), and filled from
those tables when migration 23 adds it.

``group_graph_stats`` does the same for tracked groups' per-minute statistics, one row
per group, node or edge and minute, nodes and edges in one table (migration 28): one
insert a round where ``group_node_stats`` and ``group_edge_stats`` took two
(:func:`group_rollup`, :func:`group_minutes_sql`). Pure functions; thread-safe.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "GRAPH_STEPS", "GROUP_TABLES", "backfill_sql", "cover", "graph_sql", "group_backfill_sql",
    "group_minutes_sql", "group_rollup", "minutes_sql", "rollup",
]  # fmt: skip

GRAPH_STEPS: Final = (60, 600, 3600)
"""The resolutions kept, in seconds; each divides the next."""

_STATS: Final = (
    "total", "ok", "errors", "throttles", "faults", "response_time", "first_start",
    "last_end", "histogram",
)  # fmt: skip
_SUMS: Final = (
    "sum(total) AS total, sum(ok) AS ok, sum(errors) AS errors, "
    "sum(throttles) AS throttles, sum(faults) AS faults, "
    "sum(response_time) AS response_time, min(first_start) AS first_start, "
    "max(last_end) AS last_end, sumMap(histogram) AS histogram"
)
_KEYS: Final = "kind, name, type, dst_name, dst_type"
GROUP_TABLES: Final = ("group_node_stats", "group_edge_stats")
"""The tables :func:`~fluoroscope.store.encode.encode_group_stats` names (written as such
only on a schema without ``group_graph_stats``)."""
_GROUP_COLUMNS: Final = (
    "group_key", "minute", "kind", "name", "type", "dst_name", "dst_type", "is_root",
    "inferred", *_STATS,
)  # fmt: skip


def cover(lo: int, hi: int) -> list[tuple[int, int, int]]:
    """``(step, first bucket, end)`` ranges, coarsest first, whose buckets together are
    exactly the minutes ``m`` with ``lo <= m < hi`` (``lo`` a multiple of 60; ``hi`` is
    rounded up to one). Empty for an empty window."""
    hi = -(-hi // 60) * 60
    out: list[tuple[int, int, int]] = []
    spans = [(lo, hi)]
    for step in reversed(GRAPH_STEPS):
        rest: list[tuple[int, int]] = []
        for a, b in spans:
            first = -(-a // step) * step
            last = b // step * step
            if last > first:
                out.append((step, first, last))
                rest += [(a, first), (last, b)]
            else:
                rest.append((a, b))
        spans = [(a, b) for a, b in rest if b > a]
    return out


def graph_sql(db: str, lo: int, hi: int) -> str:
    """The statement summing every node's and edge's statistics over the minutes
    ``lo <= m < hi`` (as :func:`cover`). Its rows: ``kind`` (0 a node, 1 an edge),
    ``name``, ``type``, ``dst_name``, ``dst_type`` (empty for a node), ``is_root``
    (max), ``inferred`` (min), then the statistics as ``Store.stats`` names them; those
    of a zero total are left out. ``db``: the quoted database name.

    The buckets are listed as ``(step, bucket)`` pairs, numbers written into the text
    (``int`` of the window's bounds, nothing else): measured on 1M spans, the engine
    selects them from the key in 2.3-3.5 ms where bound parameters in ranges joined
    by OR took 4-9 ms."""
    pairs = ", ".join(
        f"({int(step)}, {bucket})"
        for step, first, end in cover(int(lo), int(hi))
        for bucket in range(first, end, step)
    )
    where = f"(step, bucket) IN ({pairs})" if pairs else "0"
    return (
        f"SELECT {_KEYS}, max(is_root) AS is_root, min(inferred) AS inferred, {_SUMS} "
        f"FROM {db}.graph_stats WHERE {where} "
        f"GROUP BY {_KEYS} HAVING total != 0 ORDER BY {_KEYS}"
    )


def minutes_sql(db: str, kind: str) -> str:
    """A subquery of ``graph_stats``' per-minute rows of ``kind`` (``node`` or ``edge``)
    whose minute lies in ``[{lo}, {hi})`` (UInt32 parameters), named as ``node_stats``
    and ``edge_stats`` name theirs: ``minute``, the keys, then the statistics. The
    60-second step holds exactly those tables' sums (:func:`rollup`), so a read of the
    minutes reads it instead. ``db``: the quoted database name."""
    if kind == "node":
        keys = "name, type, is_root, inferred"
    else:
        keys = "name AS src_name, type AS src_type, dst_name, dst_type"
    return (
        f"(SELECT bucket AS minute, {keys}, {', '.join(_STATS)} FROM {db}.graph_stats "
        f"WHERE step = 60 AND kind = {int(kind != 'node')} "
        "AND bucket >= toDateTime({lo:UInt32}) AND bucket < toDateTime({hi:UInt32}))"
    )


def backfill_sql(kind: str) -> str:
    """The migration statement filling ``graph_stats`` from ``{kind}_stats`` (``node``
    or ``edge``) as written so far (``{db}`` left to format)."""
    if kind == "node":
        keys = "0, name, type, '', '', is_root, inferred"
        group = "name, type, is_root, inferred"
    else:
        keys = "1, src_name, src_type, dst_name, dst_type, 0, 0"
        group = "src_name, src_type, dst_name, dst_type"
    steps = ", ".join(str(step) for step in GRAPH_STEPS)
    return (
        "INSERT INTO {db}.graph_stats (step, bucket, kind, name, type, dst_name, dst_type, "
        f"is_root, inferred, {', '.join(_STATS)}) "
        "SELECT step, toDateTime(intDiv(toUInt32(minute), step) * step) AS b, "
        f"{keys}, {_SUMS} FROM {{db}}.{kind}_stats ARRAY JOIN [{steps}] AS step "
        f"GROUP BY step, b, {group}"
    )


def _graph_keys(table: pa.Table, kind: int) -> dict[str, pa.Array | pa.ChunkedArray]:
    """The key columns of ``graph_stats`` (and ``group_graph_stats``) for rows of a
    per-minute node (``kind`` 0) or edge (1) table: a node has no destination, an edge is
    neither a root nor inferred."""
    n = table.num_rows
    if kind == 0:
        return {
            "name": table.column("name"),
            "type": table.column("type"),
            "dst_name": pa.array([""] * n, pa.string()),
            "dst_type": pa.array([""] * n, pa.string()),
            "is_root": table.column("is_root"),
            "inferred": table.column("inferred"),
        }
    zero = pa.array([0] * n, pa.uint8())
    return {
        "name": table.column("src_name"),
        "type": table.column("src_type"),
        "dst_name": table.column("dst_name"),
        "dst_type": table.column("dst_type"),
        "is_root": zero,
        "inferred": zero,
    }


def rollup(tables: dict[str, pa.Table]) -> pa.Table | None:
    """The ``graph_stats`` rows for the ``node_stats`` and ``edge_stats`` rows in
    ``tables`` (by table name, as :func:`~fluoroscope.store.encode.encode_batch` makes
    them; other names ignored): each row once per step, under its bucket (nodes, then
    edges; each step's rows in a block, finest first). None when there are none.
    Vectorized (no per-row Python): a table per kind, its columns' chunks repeated once
    per step, where a table per kind and step took twice the time (a live round's 36
    node and 154 edge rows: 0.57 -> 0.32 ms)."""
    parts: list[pa.Table] = []
    steps = len(GRAPH_STEPS)
    for name, kind in (("node_stats", 0), ("edge_stats", 1)):
        table = tables.get(name)
        if table is None or table.num_rows == 0:
            continue
        n = table.num_rows
        step = pa.array([s for s in GRAPH_STEPS for _ in range(n)], pa.uint32())
        minute = _repeated(table.column("minute").cast(pa.uint32()), steps)
        columns = {
            "step": step,
            "bucket": pc.multiply(pc.divide(minute, step), step).cast(pa.uint32()),
            "kind": pa.array([kind] * (n * steps), pa.uint8()),
            **{k: _repeated(v, steps) for k, v in _graph_keys(table, kind).items()},
            **{stat: _repeated(table.column(stat), steps) for stat in _STATS},
        }
        parts.append(pa.table(columns))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


def _repeated(column: pa.Array | pa.ChunkedArray, times: int) -> pa.ChunkedArray:
    """``column``'s values ``times`` over, one after the other (its chunks, not copied)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    return pa.chunked_array(chunks * times, column.type)


def group_minutes_sql(db: str, kind: str) -> str:
    """A subquery of ``group_graph_stats``' rows of ``kind`` (``node`` or ``edge``) of
    the group ``{group_key}`` (a String parameter) whose minute lies in ``[{lo}, {hi})``
    (UInt32 parameters), named as ``group_node_stats`` and ``group_edge_stats`` name
    theirs: ``minute``, the keys, then the statistics (those tables' rows as written,
    summed the same). The conditions are the subquery's own, on the table's key.
    ``db``: the quoted database name."""
    if kind == "node":
        keys = "name, type, is_root, inferred"
    else:
        keys = "name AS src_name, type AS src_type, dst_name, dst_type"
    return (
        f"(SELECT minute, {keys}, {', '.join(_STATS)} FROM {db}.group_graph_stats "
        "WHERE group_key = {group_key:String} "
        "AND minute >= toDateTime({lo:UInt32}) AND minute < toDateTime({hi:UInt32}) "
        f"AND kind = {int(kind != 'node')})"
    )


def group_backfill_sql(kind: str) -> str:
    """The migration statement filling ``group_graph_stats`` from ``group_{kind}_stats``
    (``node`` or ``edge``) as written so far (``{db}`` left to format): its rows as they
    are, the engine's merges sum them."""
    if kind == "node":
        keys = "0, name, type, '', '', is_root, inferred"
    else:
        keys = "1, src_name, src_type, dst_name, dst_type, 0, 0"
    return (
        f"INSERT INTO {{db}}.group_graph_stats ({', '.join(_GROUP_COLUMNS)}) "
        f"SELECT group_key, minute, {keys}, {', '.join(_STATS)} FROM {{db}}.group_{kind}_stats"
    )


def group_rollup(tables: Iterable[tuple[str, pa.Table]]) -> pa.Table | None:
    """The ``group_graph_stats`` rows for the ``group_node_stats`` and
    ``group_edge_stats`` rows in ``tables`` ((table name, rows), as
    :func:`~fluoroscope.store.encode.encode_group_stats` makes them, a name any number
    of times; other names ignored), in one table. None when there are none. Vectorized."""
    parts: list[pa.Table] = []
    for name, table in tables:
        if name not in GROUP_TABLES or table.num_rows == 0:
            continue
        kind = GROUP_TABLES.index(name)
        n = table.num_rows
        keys = _graph_keys(table, kind)
        columns = {
            "group_key": table.column("group_key"),
            "minute": table.column("minute"),
            "kind": pa.array([kind] * n, pa.uint8()),
            **keys,
            **{stat: table.column(stat) for stat in _STATS},
        }
        parts.append(pa.table(columns))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)
