"""GetTimeSeriesServiceStatistics: statistics per time bucket for selected nodes or edges.

Read from the per-minute statistics aggregated at ingest (never from spans) - or, for
a group with a filter, from that group's statistics kept at ingest, and recomputed
from the spans of the traces it selects for minutes before they began
(:func:`~fluoroscope.query.groupstats.group_rows`). The selector is the parsed ``EntitySelectorExpression``:
``service(...)`` / ``id(...)`` select nodes, ``edge(a, b)`` an edge, ``OR`` takes their
union; without a selector the series is of requests entering the system (the client
edges). Bodies (``{ fault }``), ``AND``/``!`` and ``id(account.id: ...)`` are refused: a
bucket's statistics cannot be split by them exactly (statistics carry no account id).
Blocking (one store call).
"""

from __future__ import annotations

from typing import Any

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.model.graph import Statistics, TimeSeriesPoint
from fluoroscope.query.compile import Condition
from fluoroscope.query.filter import ast
from fluoroscope.query.graph import statistics_from_row
from fluoroscope.query.groupstats import TrackedGroup, group_rows
from fluoroscope.store.store import Store

__all__ = ["time_series"]


def _ref_matches(ref: ast.ServiceRef, name: str, type_: str) -> bool:
    if ref.account_id is not None:
        raise InvalidRequest(
            "id(account.id: ...) cannot select statistics: they are kept per name and type, "
            "without account ids; use it in a FilterExpression"
        )
    if ref.name is not None and ref.name != name:
        return False
    return ref.type is None or ref.type.lower() == type_.lower()


def _selectors(node: ast.Expr) -> list[ast.Service | ast.Edge]:
    match node:
        case ast.Or(items=items):
            return [s for item in items for s in _selectors(item)]
        case ast.Service(body=None) | ast.Edge(body=None):
            return [node]
    raise InvalidRequest(
        f"the entity selector at position {node.start} must be service(...), id(...) or "
        "edge(...), or several joined by OR, without { } bodies"
    )


def _add(total: Statistics, row: dict[str, Any]) -> None:
    part = statistics_from_row(row)
    total.total += part.total
    total.ok += part.ok
    total.errors += part.errors
    total.throttles += part.throttles
    total.faults += part.faults
    total.response_time += part.response_time
    merged = dict(total.histogram)
    for value, count in part.histogram:
        merged[value] = merged.get(value, 0) + count
    total.histogram = sorted(merged.items())


def time_series(
    store: Store,
    start: float,
    end: float,
    period: int,
    selector: ast.Expr | None,
    condition: Condition | None = None,
    tracked: TrackedGroup | None = None,
) -> list[TimeSeriesPoint]:
    """Statistics per ``period``-second bucket in ``[start, end)``, oldest first; with
    ``condition`` (a compiled filter: a group's), of the traces it selects only
    (``tracked``: that group, read as :func:`~fluoroscope.query.groupstats.group_rows`
    says)."""
    chosen = _selectors(selector) if selector is not None else None
    edge_mode = chosen is None or all(isinstance(s, ast.Edge) for s in chosen)
    if chosen is not None and not edge_mode and any(isinstance(s, ast.Edge) for s in chosen):
        raise InvalidRequest("an entity selector cannot mix service(...) and edge(...)")
    if condition is None:
        rows = store.stats("edge" if edge_mode else "node", start, end, period=period).to_pylist()
    else:
        nodes, edges = group_rows(store, start, end, condition, tracked, period=period)
        rows = edges if edge_mode else nodes
    buckets: dict[int, Statistics] = {}
    for row in rows:
        if chosen is None:
            keep = row["src_type"] == "client"
        elif edge_mode:
            keep = any(
                isinstance(s, ast.Edge)
                and _ref_matches(s.source, row["src_name"], row["src_type"])
                and _ref_matches(s.dest, row["dst_name"], row["dst_type"])
                for s in chosen
            )
        else:
            keep = any(
                isinstance(s, ast.Service)
                and (s.ref is None or _ref_matches(s.ref, row["name"], row["type"]))
                for s in chosen
            )
        if keep:
            _add(buckets.setdefault(int(row["bucket"]), Statistics()), row)
    return [TimeSeriesPoint(float(b), edge_mode, buckets[b]) for b in sorted(buckets)]
