"""Per-minute service-graph statistics accumulated between two store writes.

An :class:`Outcome` is one completed request seen from one side (a node's own segment,
or a caller's subsegment for an edge). A :class:`StatsSink` receives them:

* :class:`StatsBatch` sums outcomes per (minute, node) and (minute, edge) in Python (the
  ``node_stats``/``edge_stats`` rows themselves: group statistics, a trace's own graph,
  and ingest before migration 24);
* :class:`OutcomeRows` only records them, a row of numbers each, column by column: the
  store sums them a batch at a time into the same rows (``fluoroscope.store.outcomes``:
  by :meth:`OutcomeRows.sums`, compiled, or else with array operations), which costs
  ingest a fraction of the cell work.

A retraction adds the same outcome with weight -1, which is how an inferred node
disappears once the real downstream segment arrives. Not thread-safe: one owner at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from fluoroscope.model.inference import ERROR, FAULT, THROTTLE, NodeId

__all__ = [
    "CLIENT_TYPE", "Contribution", "Outcome", "OutcomeRows", "StatsBatch", "StatsSink",
    "histogram_bucket",
]  # fmt: skip

CLIENT_TYPE: Final = "client"
_MAX_BUCKET_US: Final = 4_000_000_000  # UInt32 microseconds: a little over an hour


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
    # rounded by 10 ** (digits - 2), digits = len(str(us)): found by comparing, which
    # compiled is native integer arithmetic (bisect_right, a Python call per outcome,
    # cost the compiled OutcomeRows.sums a third of its time)
    magnitude = 10
    while us >= magnitude * 100:
        magnitude *= 10
    return (us + magnitude // 2) // magnitude * magnitude


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

    def sums(self) -> tuple[dict[str, list[object]] | None, dict[str, list[object]] | None]:
        """The rows summed into the cells :class:`StatsBatch` makes of the same outcomes:
        the ``node_stats`` and the ``edge_stats`` columns (each None without rows of its
        kind), by :meth:`_Cell.count` as ``StatsBatch`` adds them, row after row. The
        cells are ordered by minute, then by key (a node's number, root and inferred; an
        edge's caller's and callee's numbers); ``histogram`` is left out, its entries
        (buckets ascending, zero counts left out) are flat in ``histogram_buckets`` and
        ``histogram_counts``, a cell's from ``histogram_offsets[i]`` to ``[i + 1]``.

        Compiled (mypyc), a row costs a dict lookup and a native cell's update (~0.2
        µs): cheaper than Arrow's kernels for a slice's few thousand rows, whose ~40
        calls and two group-bys cost ~1.4 ms whatever the rows (``store.outcomes``)."""
        names = [node[0] for node in self.nodes]  # by number
        types = [node[1] for node in self.nodes]
        nodes = edges = None
        if self.node_key:
            summed = _sum_rows(self.node_key, self.node_start, self.node_end)
            nodes = _cell_lists(summed, names, types, False)
        if self.edge_key:
            summed = _sum_rows(self.edge_key, self.edge_start, self.edge_end, len(names))
            edges = _cell_lists(summed, names, types, True)
        return nodes, edges


def _sum_rows(
    keys: list[int], starts: list[float], ends: list[float], nodes: int = 0
) -> dict[int, dict[int, _Cell]]:
    """Rows of :class:`OutcomeRows` (one kind's) summed per minute and key: a node
    row's ``key >> 4``; an edge row's (given the ``nodes`` numbered) ``src * nodes +
    dst``, ordered as ``(src, dst)`` and small (a dict lookup by a key above 256 boxes
    it anew: ~30 % of an edge row's cost with ``src << 28 | dst``). The minute is
    ``floor(start / 60)``: Python's ``start // 60`` (see ``store.outcomes._minutes``),
    as the Arrow kernels compute it."""
    by_minute: dict[int, dict[int, _Cell]] = {}
    cells: dict[int, _Cell] = {}
    current = 0
    for at in range(len(keys)):
        start = starts[at]
        minute = math.floor(start / 60.0)
        if minute != current or not at:  # consecutive rows mostly share their minute
            current = minute
            found = by_minute.get(minute)
            if found is None:
                found = by_minute[minute] = {}
            cells = found
        row = keys[at]
        key = (row >> 32) * nodes + (row >> 4 & 0xFFFFFFF) if nodes else row >> 4
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = _Cell()
        cell.count(start, ends[at], row & 7, -1 if row & 8 else 1)
    return by_minute


def _cell_lists(
    by_minute: dict[int, dict[int, _Cell]], names: list[str], types: list[str], edges: bool
) -> dict[str, list[object]]:
    """The cells of :func:`_sum_rows` as :meth:`OutcomeRows.sums` gives them."""
    minutes: list[object] = []
    first_name: list[object] = []
    first_type: list[object] = []
    second: list[object] = []  # the callee's name, or root
    third: list[object] = []  # the callee's type, or inferred
    total: list[object] = []
    ok: list[object] = []
    errors: list[object] = []
    throttles: list[object] = []
    faults: list[object] = []
    response_time: list[object] = []
    first_start: list[object] = []
    last_end: list[object] = []
    offsets: list[object] = [0]
    buckets: list[object] = []
    counts: list[object] = []
    kept = 0
    for minute in sorted(by_minute):
        cells = by_minute[minute]
        stamp = minute * 60
        for key in sorted(cells):
            cell = cells[key]
            minutes.append(stamp)
            if edges:
                src, dst = divmod(key, len(names))
                first_name.append(names[src])
                first_type.append(types[src])
                second.append(names[dst])
                third.append(types[dst])
            else:
                number = key >> 2
                first_name.append(names[number])
                first_type.append(types[number])
                second.append(key >> 1 & 1)
                third.append(key & 1)
            total.append(cell.total)
            ok.append(cell.ok)
            errors.append(cell.errors)
            throttles.append(cell.throttles)
            faults.append(cell.faults)
            response_time.append(cell.response_time)
            first_start.append(cell.first_start)
            last_end.append(cell.last_end)
            histogram = cell.histogram
            for bucket in sorted(histogram):
                count = histogram[bucket]
                if count:
                    buckets.append(bucket)
                    counts.append(count)
                    kept += 1
            offsets.append(kept)
    keys = _EDGE_COLUMNS[:5] if edges else _NODE_COLUMNS[:5]
    return {
        keys[0]: minutes,
        keys[1]: first_name,
        keys[2]: first_type,
        keys[3]: second,
        keys[4]: third,
        "total": total,
        "ok": ok,
        "errors": errors,
        "throttles": throttles,
        "faults": faults,
        "response_time": response_time,
        "first_start": first_start,
        "last_end": last_end,
        "histogram_offsets": offsets,
        "histogram_buckets": buckets,
        "histogram_counts": counts,
    }


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
        self.count(start, end, bits, weight)

    def count(self, start: float, end: float, bits: int, weight: int) -> None:
        """Add one outcome (``start``, ``end``, ``bits``) with ``weight`` (1 or -1)."""
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
