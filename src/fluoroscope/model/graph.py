"""Service-graph read models: nodes, edges and their statistics (reference §6).

Built by ``query`` from the per-minute statistics aggregated at ingest and rendered
into X-Ray's ``Service``/``Edge`` shapes by ``server``. Owned by the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["GraphEdge", "GraphNode", "ServiceGraph", "Statistics", "TimeSeriesPoint"]


@dataclass(slots=True)
class Statistics:
    """Counts over a window. ``errors`` excludes throttles (X-Ray's ``OtherCount``);
    ``response_time`` is the sum of seconds; ``histogram`` is ``[(seconds, count)]``
    sorted by seconds."""

    total: int = 0
    ok: int = 0
    errors: int = 0
    throttles: int = 0
    faults: int = 0
    response_time: float = 0.0
    histogram: list[tuple[float, int]] = field(default_factory=list)


@dataclass(slots=True)
class GraphEdge:
    """A call from one node to ``target`` (an index into :attr:`ServiceGraph.nodes`)."""

    target: int
    start: float
    end: float
    statistics: Statistics


@dataclass(slots=True)
class GraphNode:
    """A service (real, inferred, or the client) and the calls it makes."""

    name: str
    type: str
    start: float
    end: float
    root: bool = False
    inferred: bool = False
    client: bool = False
    statistics: Statistics | None = None
    edges: list[GraphEdge] = field(default_factory=list)


@dataclass(slots=True)
class ServiceGraph:
    """The nodes seen in ``[start, end]``; edges refer to nodes by index."""

    start: float
    end: float
    nodes: list[GraphNode] = field(default_factory=list)


@dataclass(slots=True)
class TimeSeriesPoint:
    """One time bucket: its start (epoch seconds) and whether ``statistics`` describe
    edges (calls) or nodes (services)."""

    timestamp: float
    edge: bool
    statistics: Statistics
