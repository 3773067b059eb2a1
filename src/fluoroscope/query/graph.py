"""The service graph over a time window, read from statistics aggregated at ingest.

Its cost depends on the number of nodes, edges and minutes in the window, never on the
number of spans. Pure assembly over :meth:`Store.stats` rows; blocking (store call).

A graph restricted to the traces a filter selects cannot be read from those statistics,
which sum every trace. A group's graph reads the statistics kept for that group at ingest
(:mod:`fluoroscope.query.groupstats`) from when they began; for any other filter, and
for a group's minutes before that, :func:`filtered_graph` has the engine recompute the
same statistics from the stored spans of the selected traces
(:meth:`Store.trace_stats`), whose cost grows with the spans of those traces.
"""

from __future__ import annotations

from typing import Any

from fluoroscope.model.graph import GraphEdge, GraphNode, ServiceGraph, Statistics
from fluoroscope.query.compile import Condition
from fluoroscope.query.groupstats import TrackedGroup, group_rows
from fluoroscope.store.store import Store

__all__ = ["build_graph", "filtered_graph", "service_graph", "statistics_from_row"]

_CLIENT = "client"


def statistics_from_row(row: dict[str, Any]) -> Statistics:
    """Statistics from one row of :meth:`Store.stats` (histogram keys are microseconds)."""
    histogram = [(bucket / 1_000_000, count) for bucket, count in row["histogram"] if count > 0]
    histogram.sort()  # the engine's are sorted already: a linear pass
    return Statistics(
        total=int(row["total"]),
        ok=int(row["ok"]),
        errors=int(row["errors"]),
        throttles=int(row["throttles"]),
        faults=int(row["faults"]),
        response_time=float(row["response_time"]),
        histogram=histogram,
    )


def _bounds(row: dict[str, Any], start: float, end: float) -> tuple[float, float]:
    first = row["first_start"]
    last = row["last_end"]
    first = first if first != float("inf") and first > 0 else start
    last = last if last > 0 else end
    return float(first), float(last)


def service_graph(store: Store, start: float, end: float) -> ServiceGraph:
    """Nodes and edges with statistics for calls that started in ``[start, end]``
    (one statement: :meth:`Store.graph_stats`)."""
    nodes, edges = store.graph_stats(start, end)
    return build_graph(nodes, edges, start, end)


def filtered_graph(
    store: Store,
    start: float,
    end: float,
    condition: Condition,
    tracked: TrackedGroup | None = None,
) -> ServiceGraph:
    """The graph of only the traces ``condition`` selects (a compiled filter expression),
    over calls that started in ``[start, end]``, with the same statistics, counted the
    same way, as :func:`service_graph`. With ``tracked`` (the condition's group, whose
    statistics are kept at ingest) minutes from its split on are read from those
    statistics; the rest is recomputed from each call's own span."""
    nodes, edges = group_rows(store, start, end, condition, tracked)
    return build_graph(nodes, edges, start, end)


def build_graph(
    node_rows: list[dict[str, Any]], edge_rows: list[dict[str, Any]], start: float, end: float
) -> ServiceGraph:
    """A graph from statistics rows shaped like :meth:`Store.stats` output."""
    graph = ServiceGraph(start, end)
    index: dict[tuple[str, str], int] = {}

    def node(name: str, type_: str, first: float, last: float) -> GraphNode:
        key = (name, type_)
        found = index.get(key)
        if found is None:
            found = index[key] = len(graph.nodes)
            graph.nodes.append(
                GraphNode(name=name, type=type_, start=first, end=last, client=type_ == _CLIENT)
            )
        target = graph.nodes[found]
        target.start = min(target.start, first)
        target.end = max(target.end, last)
        return target

    for row in node_rows:
        first, last = _bounds(row, start, end)
        target = node(row["name"], row["type"], first, last)
        target.root = bool(row["is_root"])
        target.inferred = bool(row["inferred"])
        target.statistics = statistics_from_row(row)
    for row in edge_rows:
        first, last = _bounds(row, start, end)
        source = node(row["src_name"], row["src_type"], first, last)
        node(row["dst_name"], row["dst_type"], first, last)
        source.edges.append(
            GraphEdge(
                index[(row["dst_name"], row["dst_type"])], first, last, statistics_from_row(row)
            )
        )
    return graph
