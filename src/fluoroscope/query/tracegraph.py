"""GetTraceGraph: the service graph of an explicit set of traces.

Each trace's stored entities are replayed through :class:`TraceState`, exactly the
logic ingest applies live, so a trace's graph always agrees with the service graph it
contributed to. Cost grows with the traces' size (a handful of traces per call), never
with the store. Blocking (one store call).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fluoroscope.model.graph import ServiceGraph
from fluoroscope.model.stats import StatsBatch
from fluoroscope.model.tracestate import TraceState
from fluoroscope.query.graph import build_graph
from fluoroscope.store.store import Store

__all__ = ["trace_graph"]


def _merge(
    rows: dict[tuple[Any, ...], dict[str, Any]], key: tuple[Any, ...], row: dict[str, Any]
) -> None:
    found = rows.get(key)
    if found is None:
        rows[key] = dict(row, histogram=list(row["histogram"]))
        return
    for name in ("total", "ok", "errors", "throttles", "faults", "response_time"):
        found[name] += row[name]
    found["first_start"] = min(found["first_start"], row["first_start"])
    found["last_end"] = max(found["last_end"], row["last_end"])
    found["is_root"] = found.get("is_root", 0) or row.get("is_root", 0)
    counts = dict(found["histogram"])
    for bucket, count in row["histogram"]:
        counts[bucket] = counts.get(bucket, 0) + count
    found["histogram"] = list(counts.items())


def _rows(columns: dict[str, list[object]]) -> list[dict[str, Any]]:
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def trace_graph(store: Store, trace_ids: Iterable[str]) -> ServiceGraph:
    """The graph of the given traces (unknown ids contribute nothing)."""
    stats = StatsBatch()
    start, end = float("inf"), 0.0
    for trace_id, entities in store.entities(trace_ids).items():
        state = TraceState(trace_id, 0)
        for entity in entities:
            state.apply(entity.document, entity.parent_id, entity.is_segment, stats)
        start = min(start, state.min_start)
        end = max(end, state.max_end)
    nodes: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in _rows(stats.node_columns()):
        _merge(nodes, (row["name"], row["type"]), row)
    edges: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in _rows(stats.edge_columns()):
        _merge(edges, (row["src_name"], row["src_type"], row["dst_name"], row["dst_type"]), row)
    if start == float("inf"):
        start = end = 0.0
    node_rows = [r for r in nodes.values() if r["total"]]
    edge_rows = [r for r in edges.values() if r["total"]]
    return build_graph(node_rows, edge_rows, start, max(end, start))
