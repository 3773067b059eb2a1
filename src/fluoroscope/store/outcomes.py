"""A batch's graph outcomes summed into ``node_stats``/``edge_stats`` rows with Arrow
compute kernels, a batch at a time.

Ingest records each outcome as a row (:class:`~fluoroscope.model.stats.OutcomeRows`:
a few list appends) instead of adding it to its cell in Python
(:class:`~fluoroscope.model.stats.StatsBatch`: a key tuple, a dict lookup and a cell
method per outcome). Here the rows become the very cells ``StatsBatch`` makes, to the
bit: the same minute (``int(start // 60) * 60``: the float quotient's floor, see
:func:`_minutes`), histogram bucket
(:func:`~fluoroscope.model.stats.histogram_bucket` in integers) and counts, and the
response-time sums added in row order (Arrow's grouped sum adds a group's values one
row after the other, as the cells did, when it runs on one thread). Only the order of
the cells differs: sorted by minute and key here (the engine sorts them anyway); a
histogram's buckets come in ascending order.

No numpy: the ingest workers and the server, which sum here, keep it out of their
processes (:mod:`fluoroscope.ingest.keepout`: ~11 MB of RSS each, and OpenBLAS's
threads).

Measured (``benchmarks/ingest_cpu.py``): the engine summing these rows itself
(``Null`` tables and materialized views) cost 25-30 ms of engine CPU per insert
against ~10 ms for the summed rows, almost all of it fixed per insert (analysing and
compiling the view's query), so the sums are made here.

Pure; thread-safe for rows nobody appends to meanwhile; results owned by the caller.
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from fluoroscope.model.inference import ERROR, FAULT, THROTTLE
from fluoroscope.model.stats import OutcomeRows

__all__ = ["edge_cells", "node_cells"]

_MAX_BUCKET_US: Final = 4_000_000_000  # as model.stats: UInt32 microseconds
_KEY_ROOM: Final = 1 << 62  # combined keys are numbered afresh before they pass this
_HIST: Final = pa.map_(pa.uint32(), pa.int64())
_SUMMED: Final = ("total", "ok", "errors", "throttles", "faults", "response_time")


def node_cells(rows: OutcomeRows) -> dict[str, Any] | None:
    """The ``node_stats`` columns (those :meth:`StatsBatch.node_columns` makes, as Arrow
    arrays) of ``rows``' node outcomes; None without any."""
    if not rows.node_key:
        return None
    columns, key = _cells(rows.node_key, rows.node_start, rows.node_end)
    # key: number << 2 | root << 1 | inferred
    names, types = _names(rows)
    at = pc.shift_right(key, 2)
    columns["name"] = names.take(at)
    columns["type"] = types.take(at)
    columns["is_root"] = pc.cast(pc.bit_wise_and(pc.shift_right(key, 1), 1), pa.uint8())
    columns["inferred"] = pc.cast(pc.bit_wise_and(key, 1), pa.uint8())
    return columns


def edge_cells(rows: OutcomeRows) -> dict[str, Any] | None:
    """The ``edge_stats`` columns of ``rows``' edge outcomes (see :func:`node_cells`)."""
    if not rows.edge_key:
        return None
    columns, key = _cells(rows.edge_key, rows.edge_start, rows.edge_end)
    # key: src << 28 | dst
    names, types = _names(rows)
    at_src, at_dst = pc.shift_right(key, 28), pc.bit_wise_and(key, 0xFFFFFFF)
    columns["src_name"] = names.take(at_src)
    columns["src_type"] = types.take(at_src)
    columns["dst_name"] = names.take(at_dst)
    columns["dst_type"] = types.take(at_dst)
    return columns


def _names(rows: OutcomeRows) -> tuple[pa.Array, pa.Array]:
    """The numbered nodes' names and types, by number."""
    nodes = list(rows.nodes)
    return (
        pa.array([node[0] for node in nodes], pa.string()),
        pa.array([node[1] for node in nodes], pa.string()),
    )


def _buckets(elapsed: pa.Array) -> pa.Array:
    """:func:`~fluoroscope.model.stats.histogram_bucket` of each (non-negative) time."""
    us_float = pc.add(pc.multiply(elapsed, 1_000_000.0), 0.5)
    over = pc.greater_equal(us_float, float(_MAX_BUCKET_US))  # as int(us_float) >= the cap
    us = pc.cast(pc.if_else(over, 0.0, us_float), pa.int64(), safe=False)  # int(): truncated
    # two significant digits: magnitude 10 ** (digits - 2) for 100 <= us < 10 ** 10
    exponent = pc.cast(pc.greater_equal(us, 1_000), pa.int64())
    for power in range(4, 10):
        exponent = pc.add(exponent, pc.cast(pc.greater_equal(us, 10**power), pa.int64()))
    magnitude = pc.power(10, pc.add(exponent, 1))
    half = pc.divide(magnitude, 2)
    rounded = pc.multiply(pc.divide(pc.add(us, half), magnitude), magnitude)
    return pc.if_else(over, _MAX_BUCKET_US, pc.if_else(pc.less(us, 100), us, rounded))


def _minutes(start: pa.Array) -> pa.Array:
    """``int(start // 60)`` of each start: the floor of the float quotient is Python's
    float floor division here. A quotient just below a whole number ``n`` lies at least
    ``ulp(start) / 60`` below it (``n * 60`` is a whole number, so a multiple of
    ``ulp(start)`` for starts below 2**53), more than half the quotient's own ulp (which
    is at most ``ulp(start) / 32``), so it never rounds up to ``n``."""
    return pc.cast(pc.floor(pc.divide(start, 60.0)), pa.int64())


def _cells(
    row_keys: list[int], starts: list[float], ends: list[float]
) -> tuple[dict[str, Any], pa.Array]:
    """Sum outcome rows per (minute, ``row_key >> 4``) as ``model.stats._Cell.add`` sums
    them (``row_keys``: the keys :class:`OutcomeRows` makes, whose low four bits are the
    outcome's and its weight's): the cells' minutes and sums, and each cell's key."""
    row_key = pa.array(row_keys, pa.int64())
    start = pa.array(starts, pa.float64())
    end = pa.array(ends, pa.float64())
    bits = pc.bit_wise_and(row_key, 7)
    weight = pc.if_else(pc.not_equal(pc.bit_wise_and(row_key, 8), 0), -1, 1)
    key = pc.shift_right(row_key, 4)

    # one integer per (minute, key), ordered as the pair: minute - first minute, then key
    minute = _minutes(start)
    span = pc.min_max(minute)
    low, high = span["min"].as_py(), span["max"].as_py()
    width = pc.max(key).as_py() + 1
    labels = None
    if high - low + 1 >= _KEY_ROOM // width:  # never at real sizes: keys numbered afresh
        labels = pc.unique(key).sort()  # ascending, so the order stays the pair's
        key = pc.cast(pc.index_in(key, value_set=labels), pa.int64())
        width = len(labels)
    cell = pc.add(pc.multiply(pc.subtract(minute, low), width), key)

    def weighted(mask: pa.Array) -> pa.Array:
        return pc.if_else(mask, weight, 0)

    elapsed = pc.subtract(end, start)
    elapsed = pc.if_else(pc.less(elapsed, 0.0), 0.0, elapsed)
    positive = pc.greater(weight, 0)
    bits_throttle = pc.not_equal(pc.bit_wise_and(bits, THROTTLE), 0)
    rows = pa.table(
        {
            "cell": cell,
            "total": weight,
            "ok": weighted(pc.equal(bits, 0)),
            "errors": weighted(
                pc.and_(pc.invert(bits_throttle), pc.not_equal(pc.bit_wise_and(bits, ERROR), 0))
            ),
            "throttles": weighted(bits_throttle),
            "faults": weighted(pc.not_equal(pc.bit_wise_and(bits, FAULT), 0)),
            "response_time": pc.multiply(weight, elapsed),
            "first_start": pc.if_else(positive, start, float("inf")),
            "last_end": pc.if_else(positive, end, 0.0),
        }
    )
    # use_threads=False: one thread adds each group's rows in row order
    sums = (
        rows.group_by("cell", use_threads=False)
        .aggregate(
            [(name, "sum") for name in _SUMMED] + [("first_start", "min"), ("last_end", "max")]
        )
        .sort_by("cell")
        .combine_chunks()
    )
    cells = sums.column("cell").chunk(0)
    columns: dict[str, Any] = {name: sums.column(f"{name}_sum").chunk(0) for name in _SUMMED}
    columns["first_start"] = sums.column("first_start_min").chunk(0)
    columns["last_end"] = pc.max_element_wise(sums.column("last_end_max").chunk(0), 0.0)
    columns["histogram"] = _histograms(cell, _buckets(elapsed), weight)

    at_minute = pc.divide(cells, width)  # integer division: both are non-negative
    columns["minute"] = pc.cast(pc.multiply(pc.add(at_minute, low), 60), pa.uint32())
    cell_key = pc.subtract(cells, pc.multiply(at_minute, width))
    if labels is not None:
        cell_key = labels.take(cell_key)
    return columns, cell_key


def _histograms(cell: pa.Array, bucket: pa.Array, weight: pa.Array) -> pa.Array:
    """Each cell's histogram, the cells ascending (``cell``, ``bucket`` and ``weight``:
    each row's): weights summed per bucket, buckets ascending, zero counts left out."""
    pairs = (
        pa.table({"cell": cell, "bucket": bucket, "weight": weight})
        .group_by(["cell", "bucket"], use_threads=False)
        .aggregate([("weight", "sum")])
        .sort_by([("cell", "ascending"), ("bucket", "ascending")])
        .combine_chunks()
    )
    pair_cell = pairs.column("cell").chunk(0)
    counts = pairs.column("weight_sum").chunk(0)
    # every cell has a pair: a cell's pairs begin where the cell changes
    size = len(pair_cell)
    changed = pc.not_equal(pair_cell.slice(1), pair_cell.slice(0, size - 1))
    begins = pc.add(pc.cast(pc.indices_nonzero(changed), pa.int64()), 1)
    offsets = pa.concat_arrays([pa.array([0], pa.int64()), begins, pa.array([size], pa.int64())])
    # without the zero counts: a cell's entries begin after the kept ones before it
    kept = pc.not_equal(counts, 0)
    before = pa.concat_arrays(
        [pa.array([0], pa.int32()), pc.cumulative_sum(pc.cast(kept, pa.int32()))]
    )
    return pa.MapArray.from_arrays(
        before.take(offsets),
        pc.cast(pairs.column("bucket").chunk(0).filter(kept), pa.uint32()),
        counts.filter(kept),
        type=_HIST,
    )
