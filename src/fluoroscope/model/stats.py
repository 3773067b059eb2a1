"""Per-minute service-graph statistics accumulated between two store writes.

An :class:`Outcome` is one completed request seen from one side (a node's own segment,
or a caller's subsegment for an edge). :class:`StatsBatch` sums outcomes per
(minute, node) and (minute, edge); a retraction adds the same outcome with weight -1,
which is how an inferred node disappears once the real downstream segment arrives.
Not thread-safe: one owner at a time.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from fluoroscope.model.inference import ERROR, FAULT, THROTTLE, NodeId

__all__ = [
    "CLIENT_TYPE",
    "CellStatsBatch",
    "Contribution",
    "Outcome",
    "StatsBatch",
    "histogram_bucket",
]

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


_Key = tuple[int, str, str, int | str, int | str]
"""(minute, then the node's name, type, root, inferred - or the edge's source name and
type, destination name and type)."""
_Row = tuple[int, float, float, int, int]
"""(key's number, start, end, bits, weight): one counted outcome."""


@dataclass(slots=True)
class StatsBatch:
    """Node and edge statistics gathered since the last write.

    Outcomes are recorded as rows while traces merge (one tuple each) and summed per
    minute and node or edge once per batch, when the columns are asked for
    (:meth:`node_columns`, :meth:`edge_columns`): the sums, minima, maxima and
    histogram buckets are array operations (numpy), the grouping one dict lookup per
    row. Sums add in the order the outcomes came, as :class:`_Cell` adds them, so the
    figures are the same to the bit (``nodes`` and ``edges`` replay the rows through
    cells, for tests and readers that want them so)."""

    node_rows: list[_Row] = field(default_factory=list)
    edge_rows: list[_Row] = field(default_factory=list)
    node_keys: dict[_Key, int] = field(default_factory=dict)  # key -> its number, in order
    edge_keys: dict[_Key, int] = field(default_factory=dict)

    def node(
        self, node: NodeId, outcome: Outcome, *, root: bool, inferred: bool = False, weight: int = 1
    ) -> None:
        """Count ``outcome`` for ``node`` (``root``: the node is a trace's entry point;
        ``inferred``: the node stands for a downstream call nobody instrumented)."""
        start, end, bits = outcome
        keys = self.node_keys
        key = (int(start // 60) * 60, node[0], node[1], int(root), int(inferred))
        self.node_rows.append((keys.setdefault(key, len(keys)), start, end, bits, weight))

    def edge(self, src: NodeId, dst: NodeId, outcome: Outcome, *, weight: int = 1) -> None:
        """Count ``outcome`` for the call from ``src`` to ``dst``."""
        start, end, bits = outcome
        keys = self.edge_keys
        key = (int(start // 60) * 60, src[0], src[1], dst[0], dst[1])
        self.edge_rows.append((keys.setdefault(key, len(keys)), start, end, bits, weight))

    def add(self, items: list[Contribution], weight: int = 1) -> None:
        """Count each contribution (``weight`` -1 retracts them)."""
        for node, callee, done, root, inferred in items:
            if callee is None:
                self.node(node, done, root=root, inferred=inferred, weight=weight)
            else:
                self.edge(node, callee, done, weight=weight)

    def __bool__(self) -> bool:
        return bool(self.node_rows or self.edge_rows)

    @property
    def nodes(self) -> dict[tuple[int, str, str, int, int], _Cell]:
        """The node rows summed per (minute, name, type, root, inferred), one cell each."""
        return _cells(self.node_keys, self.node_rows)  # type: ignore[return-value]

    @property
    def edges(self) -> dict[tuple[int, str, str, str, str], _Cell]:
        """The edge rows summed per (minute, source name and type, destination name and
        type), one cell each."""
        return _cells(self.edge_keys, self.edge_rows)  # type: ignore[return-value]

    def node_columns(self) -> dict[str, list[object]]:
        """Column lists for the ``node_stats`` table."""
        return _columns(self.node_keys, self.node_rows, _NODE_COLUMNS)

    def edge_columns(self) -> dict[str, list[object]]:
        """Column lists for the ``edge_stats`` table."""
        return _columns(self.edge_keys, self.edge_rows, _EDGE_COLUMNS)


def _cells(keys: dict[_Key, int], rows: list[_Row]) -> dict[_Key, _Cell]:
    cells = [_Cell() for _ in keys]
    for at, start, end, bits, weight in rows:
        cells[at].add(Outcome(start, end, bits), weight)
    return dict(zip(keys, cells, strict=True))


@dataclass(slots=True)
class CellStatsBatch(StatsBatch):
    """:class:`StatsBatch` as it was before issue 21: a cell per key, each outcome added
    to its cell as it comes (a method call and a histogram bucket per outcome, in
    Python). Kept as the reference the per-batch sums are checked and measured against
    (``tests/model/test_stats.py``, ``benchmarks/ingest_cpu.py``); same interface."""

    cell_nodes: dict[_Key, _Cell] = field(default_factory=dict)
    cell_edges: dict[_Key, _Cell] = field(default_factory=dict)

    def node(
        self, node: NodeId, outcome: Outcome, *, root: bool, inferred: bool = False, weight: int = 1
    ) -> None:
        key = (int(outcome[0] // 60) * 60, node[0], node[1], int(root), int(inferred))
        cell = self.cell_nodes.get(key)
        if cell is None:
            cell = self.cell_nodes[key] = _Cell()
        cell.add(outcome, weight)

    def edge(self, src: NodeId, dst: NodeId, outcome: Outcome, *, weight: int = 1) -> None:
        key = (int(outcome[0] // 60) * 60, src[0], src[1], dst[0], dst[1])
        cell = self.cell_edges.get(key)
        if cell is None:
            cell = self.cell_edges[key] = _Cell()
        cell.add(outcome, weight)

    def __bool__(self) -> bool:
        return bool(self.cell_nodes or self.cell_edges)

    @property
    def nodes(self) -> dict[tuple[int, str, str, int, int], _Cell]:
        return self.cell_nodes  # type: ignore[return-value]

    @property
    def edges(self) -> dict[tuple[int, str, str, str, str], _Cell]:
        return self.cell_edges  # type: ignore[return-value]

    def node_columns(self) -> dict[str, list[object]]:
        return _cell_columns(self.cell_nodes, _NODE_COLUMNS)

    def edge_columns(self) -> dict[str, list[object]]:
        return _cell_columns(self.cell_edges, _EDGE_COLUMNS)


def _cell_columns(cells: dict[_Key, _Cell], names: tuple[str, ...]) -> dict[str, list[object]]:
    cols: dict[str, list[object]] = {k: [] for k in names}
    for key, cell in cells.items():
        for name, value in zip(names[:5], key, strict=True):
            cols[name].append(value)
        cols["total"].append(cell.total)
        cols["ok"].append(cell.ok)
        cols["errors"].append(cell.errors)
        cols["throttles"].append(cell.throttles)
        cols["faults"].append(cell.faults)
        cols["response_time"].append(cell.response_time)
        cols["first_start"].append(cell.first_start)  # +inf for retraction-only cells
        cols["last_end"].append(cell.last_end)
        cols["histogram"].append([(k, v) for k, v in cell.histogram.items() if v])
    return cols


_BUCKET_POWERS: Final = np.array(_POWERS[:19], dtype=np.int64)  # past 10**18: not int64


def _buckets(elapsed: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """:func:`histogram_bucket` of each of ``elapsed`` (seconds, none negative)."""
    us = (elapsed * 1_000_000 + 0.5).astype(np.int64)  # int() truncates likewise
    capped = np.minimum(us, _MAX_BUCKET_US)
    digits = np.searchsorted(_BUCKET_POWERS, capped, side="right")
    magnitude = _BUCKET_POWERS[np.maximum(digits - 2, 0)]
    rounded = (capped + magnitude // 2) // magnitude * magnitude
    return np.where(us < 100, us, np.where(us >= _MAX_BUCKET_US, _MAX_BUCKET_US, rounded))


def _columns(
    keys: dict[_Key, int], rows: list[_Row], names: tuple[str, ...]
) -> dict[str, list[object]]:
    """``rows`` summed per key, as the columns ``names``: the keys (numbered in the
    order they first came), then the cell columns (as :class:`_Cell` sums them)."""
    cols: dict[str, list[Any]] = {k: [] for k in names}
    if not rows:
        return cols
    numbers, starts, ends, flags, weights = zip(*rows, strict=True)
    count = len(keys)
    group = np.array(numbers, dtype=np.int64)
    for name, values in zip(names[:5], zip(*keys, strict=True), strict=True):
        cols[name] = list(values)
    start = np.array(starts, dtype=np.float64)
    end = np.array(ends, dtype=np.float64)
    bits = np.array(flags, dtype=np.int64)
    weight = np.array(weights, dtype=np.int64)

    def total(where: npt.NDArray[np.bool_] | None = None) -> list[object]:
        w = weight if where is None else np.where(where, weight, 0)
        sums: list[object] = (
            np.bincount(group, weights=w, minlength=count).astype(np.int64).tolist()
        )
        return sums

    throttled = (bits & THROTTLE) != 0
    cols["total"] = total()
    cols["ok"] = total(bits == 0)
    cols["errors"] = total(~throttled & ((bits & ERROR) != 0))
    cols["throttles"] = total(throttled)
    cols["faults"] = total((bits & FAULT) != 0)
    elapsed = np.maximum(end - start, 0.0)
    # bincount adds each bin's weights in row order from 0.0, as _Cell.add does
    cols["response_time"] = np.bincount(group, weights=weight * elapsed, minlength=count).tolist()
    counted = weight > 0
    first = np.full(count, np.inf)
    np.minimum.at(first, group[counted], start[counted])
    last = np.zeros(count)
    np.maximum.at(last, group[counted], end[counted])
    cols["first_start"] = first.tolist()  # +inf for retraction-only cells: min() ignores it
    cols["last_end"] = last.tolist()
    # histograms: weights summed per (key, bucket), buckets in the order they first came
    span = _MAX_BUCKET_US + 1
    unique, seen_at, inverse = np.unique(
        group * span + _buckets(elapsed), return_index=True, return_inverse=True
    )
    summed = np.bincount(inverse, weights=weight).astype(np.int64)
    kept = summed != 0
    unique, seen_at, summed = unique[kept], seen_at[kept], summed[kept]
    owner = unique // span
    order = np.lexsort((seen_at, owner))  # by key, then by first appearance
    bounds = np.searchsorted(owner[order], np.arange(count + 1)).tolist()
    buckets = (unique % span)[order].tolist()
    sums = summed[order].tolist()
    histograms = [
        list(zip(buckets[lo:hi], sums[lo:hi], strict=True)) for lo, hi in itertools.pairwise(bounds)
    ]
    cols["histogram"] = histograms
    return cols


_CELL_COLUMNS: Final = (
    "total", "ok", "errors", "throttles", "faults", "response_time", "first_start", "last_end",
    "histogram",
)  # fmt: skip
_NODE_COLUMNS: Final = ("minute", "name", "type", "is_root", "inferred", *_CELL_COLUMNS)
_EDGE_COLUMNS: Final = ("minute", "src_name", "src_type", "dst_name", "dst_type", *_CELL_COLUMNS)
