"""Per-minute service-graph statistics accumulated between two store writes.

An :class:`Outcome` is one completed request seen from one side (a node's own segment,
or a caller's subsegment for an edge). A :class:`StatsSink` receives them:

* :class:`StatsBatch` sums outcomes per (minute, node) and (minute, edge) in Python (the
  ``node_stats``/``edge_stats`` rows themselves: group statistics, a trace's own graph,
  and ingest before migration 24);
* :class:`OutcomeRows` only records them, a row of numbers each, column by column: the
  store sums them a batch at a time into the same rows with array operations
  (``fluoroscope.store.outcomes``), which costs ingest a fraction of the cell work.

A retraction adds the same outcome with weight -1, which is how an inferred node
disappears once the real downstream segment arrives. Not thread-safe: one owner at a time.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from fluoroscope.model.inference import ERROR, FAULT, THROTTLE, NodeId

__all__ = [
    "CLIENT_TYPE", "Contribution", "Outcome", "OutcomeRows", "StatsBatch", "StatsSink",
    "histogram_bucket",
]  # fmt: skip

CLIENT_TYPE: Final = "client"
_MAX_BUCKET_US: Final = 4_000_000_000  # UInt32 microseconds: a little over an hour
_POWERS: Final[tuple[int, ...]] = tuple(10**k for k in range(20))
_ROUNDING: Final[tuple[tuple[int, int], ...]] = tuple(
    (10**k // 2, 10**k) for k in range(20)
)  # (half, magnitude) per power of ten


def histogram_bucket(seconds: float) -> int:
    """The histogram key (microseconds) for a duration: two significant digits.

    So 0.0123 s -> 12000 µs and 1.234 s -> 1200000 µs: about 90 buckets per decade,
    fine enough for percentiles and bounded in count.
    """
    us = int(seconds * 1_000_000 + 0.5)
    if us < 100:
        return max(us, 0)
    if us >= _MAX_BUCKET_US:
        return _MAX_BUCKET_US  # rounding to two digits never brings it back below
    # digits - 2, where digits = len(str(us)) = the number of powers of ten <= us
    half, magnitude = _ROUNDING[bisect_right(_POWERS, us) - 2]
    return (us + half) // magnitude * magnitude


class Outcome(NamedTuple):
    """One completed request: when it started and ended, and its ERROR/FAULT/THROTTLE bits."""

    start: float
    end: float
    bits: int

    @property
    def minute(self) -> int:
        return int(self.start // 60) * 60


Contribution = tuple[NodeId, NodeId | None, Outcome, bool, bool]
"""(node or caller, callee or None for a node, outcome, root, inferred): one outcome a
trace adds to the statistics (``TraceState.contributions``)."""


class StatsSink:
    """Where :class:`~fluoroscope.model.tracestate.TraceState` hands the outcomes an
    entity completes (called in the state owner's thread; never raises).

    A base class, not a Protocol: compiled by mypyc, a call through a protocol is a
    Python method call (a lookup by name, its arguments boxed and parsed), through a
    base class a C call by the class's method table (``TraceState.apply`` makes one
    or two an entity). A sink derives from it (compiled: only in a compiled module)."""

    __slots__ = ()

    def node(
        self, node: NodeId, outcome: Outcome, root: bool, inferred: bool = False, weight: int = 1
    ) -> None:
        """Count ``outcome`` for ``node`` (``root``: the node is a trace's entry point;
        ``inferred``: the node stands for a downstream call nobody instrumented). Its
        flags may be passed by position: a call with keywords costs a compiled caller
        (mypyc) a slower argument parse, once per entity."""
        raise NotImplementedError

    def edge(self, src: NodeId, dst: NodeId, outcome: Outcome, *, weight: int = 1) -> None:
        """Count ``outcome`` for the call from ``src`` to ``dst``."""
        raise NotImplementedError


class OutcomeRows(StatsSink):
    """Outcomes as rows for the store to sum a batch at a time into the cells
    :class:`StatsBatch` would make (``store.outcomes``): in the same order, so the sums
    are its sums. Each node is numbered once per batch (:attr:`nodes`), and a row is
    three numbers: a key, the start and the end. A node row's key is ``number << 6 |
    root << 5 | inferred << 4 | retracted << 3 | bits``, an edge row's ``src << 32 | dst
    << 4 | retracted << 3 | bits`` (``retracted``: weight -1; numbers stay below 2**28,
    as a batch holds far fewer entities). Not thread-safe: one owner at a time."""

    __slots__ = (
        "edge_end",
        "edge_key",
        "edge_start",
        "node_end",
        "node_key",
        "node_start",
        "nodes",
    )

    def __init__(self) -> None:
        self.nodes: dict[NodeId, int] = {}
        """Every node the rows name, numbered in order of first appearance."""
        self.node_key: list[int] = []
        self.node_start: list[float] = []
        self.node_end: list[float] = []
        self.edge_key: list[int] = []
        self.edge_start: list[float] = []
        self.edge_end: list[float] = []

    def node(
        self, node: NodeId, outcome: Outcome, root: bool, inferred: bool = False, weight: int = 1
    ) -> None:
        """Record ``outcome`` for ``node`` (see :meth:`StatsSink.node`; ``weight`` is 1 or
        -1)."""
        nodes = self.nodes
        number = nodes.get(node)
        if number is None:
            number = nodes[node] = len(nodes)
        start, end, bits = outcome
        self.node_key.append(
            number << 6
            | (32 if root else 0)
            | (16 if inferred else 0)
            | (8 if weight < 0 else 0)
            | bits
        )
        self.node_start.append(start)
        self.node_end.append(end)

    def edge(self, src: NodeId, dst: NodeId, outcome: Outcome, *, weight: int = 1) -> None:
        """Record ``outcome`` for the call from ``src`` to ``dst`` (``weight`` 1 or -1)."""
        nodes = self.nodes
        source = nodes.get(src)
        if source is None:
            source = nodes[src] = len(nodes)
        dest = nodes.get(dst)
        if dest is None:
            dest = nodes[dst] = len(nodes)
        start, end, bits = outcome
        self.edge_key.append(source << 32 | dest << 4 | (8 if weight < 0 else 0) | bits)
        self.edge_start.append(start)
        self.edge_end.append(end)

    def __bool__(self) -> bool:
        return bool(self.node_key or self.edge_key)


@dataclass(slots=True)
class _Cell:
    total: int = 0
    ok: int = 0
    errors: int = 0
    throttles: int = 0
    faults: int = 0
    response_time: float = 0.0
    first_start: float = float("inf")
    last_end: float = 0.0
    histogram: dict[int, int] = field(default_factory=dict)

    def add(self, outcome: Outcome, weight: int) -> None:
        start, end, bits = outcome
        elapsed = end - start
        if elapsed < 0.0:
            elapsed = 0.0
        self.total += weight
        if bits:
            if bits & FAULT:
                self.faults += weight
            if bits & THROTTLE:
                self.throttles += weight
            elif bits & ERROR:
                self.errors += weight
        else:
            self.ok += weight
        self.response_time += weight * elapsed
        if weight > 0:
            if start < self.first_start:
                self.first_start = start
            if end > self.last_end:
                self.last_end = end
        bucket = histogram_bucket(elapsed)
        histogram = self.histogram
        histogram[bucket] = histogram.get(bucket, 0) + weight


@dataclass(slots=True)
class StatsBatch(StatsSink):
    """Node and edge statistics gathered since the last write."""

    nodes: dict[tuple[int, str, str, int, int], _Cell] = field(default_factory=dict)
    edges: dict[tuple[int, str, str, str, str], _Cell] = field(default_factory=dict)

    def node(
        self, node: NodeId, outcome: Outcome, root: bool, inferred: bool = False, weight: int = 1
    ) -> None:
        """Count ``outcome`` for ``node`` (``root``: the node is a trace's entry point;
        ``inferred``: the node stands for a downstream call nobody instrumented)."""
        key = (int(outcome[0] // 60) * 60, node[0], node[1], int(root), int(inferred))
        cell = self.nodes.get(key)
        if cell is None:
            cell = self.nodes[key] = _Cell()
        cell.add(outcome, weight)

    def edge(self, src: NodeId, dst: NodeId, outcome: Outcome, *, weight: int = 1) -> None:
        """Count ``outcome`` for the call from ``src`` to ``dst``."""
        key = (int(outcome[0] // 60) * 60, src[0], src[1], dst[0], dst[1])
        cell = self.edges.get(key)
        if cell is None:
            cell = self.edges[key] = _Cell()
        cell.add(outcome, weight)

    def add(self, items: list[Contribution], weight: int = 1) -> None:
        """Count each contribution (``weight`` -1 retracts them)."""
        for node, callee, done, root, inferred in items:
            if callee is None:
                self.node(node, done, root=root, inferred=inferred, weight=weight)
            else:
                self.edge(node, callee, done, weight=weight)

    def __bool__(self) -> bool:
        return bool(self.nodes or self.edges)

    def node_columns(self) -> dict[str, list[object]]:
        """Column lists for the ``node_stats`` table."""
        cols: dict[str, list[object]] = {k: [] for k in _NODE_COLUMNS}
        for (minute, name, type_, root, inferred), cell in self.nodes.items():
            cols["minute"].append(minute)
            cols["name"].append(name)
            cols["type"].append(type_)
            cols["is_root"].append(root)
            cols["inferred"].append(inferred)
            _cell_columns(cols, cell)
        return cols

    def edge_columns(self) -> dict[str, list[object]]:
        """Column lists for the ``edge_stats`` table."""
        cols: dict[str, list[object]] = {k: [] for k in _EDGE_COLUMNS}
        for (minute, sname, stype, dname, dtype), cell in self.edges.items():
            cols["minute"].append(minute)
            cols["src_name"].append(sname)
            cols["src_type"].append(stype)
            cols["dst_name"].append(dname)
            cols["dst_type"].append(dtype)
            _cell_columns(cols, cell)
        return cols


_CELL_COLUMNS: Final = (
    "total", "ok", "errors", "throttles", "faults", "response_time", "first_start", "last_end",
    "histogram",
)  # fmt: skip
_NODE_COLUMNS: Final = ("minute", "name", "type", "is_root", "inferred", *_CELL_COLUMNS)
_EDGE_COLUMNS: Final = ("minute", "src_name", "src_type", "dst_name", "dst_type", *_CELL_COLUMNS)


def _cell_columns(cols: dict[str, list[object]], cell: _Cell) -> None:
    cols["total"].append(cell.total)
    cols["ok"].append(cell.ok)
    cols["errors"].append(cell.errors)
    cols["throttles"].append(cell.throttles)
    cols["faults"].append(cell.faults)
    cols["response_time"].append(cell.response_time)
    cols["first_start"].append(cell.first_start)  # +inf for retraction-only cells: min() ignores it
    cols["last_end"].append(cell.last_end)
    cols["histogram"].append([(k, v) for k, v in cell.histogram.items() if v])
