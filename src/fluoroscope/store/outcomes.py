"""A batch's graph outcomes summed into ``node_stats``/``edge_stats`` rows with array
operations, a batch at a time.

Ingest records each outcome as a row (:class:`~fluoroscope.model.stats.OutcomeRows`:
a few list appends) instead of adding it to its cell in Python
(:class:`~fluoroscope.model.stats.StatsBatch`: a key tuple, a dict lookup and a cell
method per outcome). Here the rows become the very cells ``StatsBatch`` makes, to the
bit: the same minute (``int(start // 60) * 60``, numpy's float floor division being
Python's), histogram bucket (:func:`~fluoroscope.model.stats.histogram_bucket` in
integers) and counts, and the response-time sums added in row order (``numpy.bincount``
adds its weights one row after the other, as the cells did). Only the order of the
cells, and of a histogram's buckets, differs: the engine sorts both.

Measured (``benchmarks/ingest_cpu.py``): the engine summing these rows itself
(``Null`` tables and materialized views) cost 25-30 ms of engine CPU per insert
against ~10 ms for the summed rows, almost all of it fixed per insert (analysing and
compiling the view's query), so the sums are made here.

Pure; thread-safe for rows nobody appends to meanwhile; results owned by the caller.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from fluoroscope.model.inference import ERROR, FAULT, THROTTLE
from fluoroscope.model.stats import OutcomeRows

__all__ = ["edge_cells", "node_cells"]

_MAX_BUCKET_US: Final = 4_000_000_000  # as model.stats: UInt32 microseconds
_POWERS: Final = np.array([10**k for k in range(20)], dtype=np.uint64)
_KEY_ROOM: Final = 1 << 62  # combined keys are refactorized before they pass this
_HIST: Final = pa.map_(pa.uint32(), pa.int64())

_Ints = npt.NDArray[np.int64]


def node_cells(rows: OutcomeRows) -> dict[str, Any] | None:
    """The ``node_stats`` columns (those :meth:`StatsBatch.node_columns` makes, as Arrow
    arrays) of ``rows``' node outcomes; None without any."""
    if not rows.node_key:
        return None
    key = np.array(rows.node_key, dtype=np.int64)
    columns, first = _cells(key >> 4, key, rows.node_start, rows.node_end)
    names, types = _names(rows)
    at = pa.array(key[first] >> 6)
    columns["name"] = names.take(at)
    columns["type"] = types.take(at)
    columns["is_root"] = pa.array((key[first] >> 5 & 1).astype(np.uint8), pa.uint8())
    columns["inferred"] = pa.array((key[first] >> 4 & 1).astype(np.uint8), pa.uint8())
    return columns


def edge_cells(rows: OutcomeRows) -> dict[str, Any] | None:
    """The ``edge_stats`` columns of ``rows``' edge outcomes (see :func:`node_cells`)."""
    if not rows.edge_key:
        return None
    key = np.array(rows.edge_key, dtype=np.int64)
    columns, first = _cells(key >> 4, key, rows.edge_start, rows.edge_end)
    names, types = _names(rows)
    at_src, at_dst = pa.array(key[first] >> 32), pa.array(key[first] >> 4 & 0xFFFFFFF)
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


def _buckets(elapsed: npt.NDArray[np.float64]) -> _Ints:
    """:func:`~fluoroscope.model.stats.histogram_bucket` of each (non-negative) time."""
    us = (elapsed * 1_000_000 + 0.5).astype(np.int64)  # int(): truncation, as Python's
    digits = np.searchsorted(_POWERS, us.astype(np.uint64), side="right")
    magnitude = (10 ** np.maximum(digits - 2, 0)).astype(np.int64)
    rounded = (us + magnitude // 2) // magnitude * magnitude
    out = np.where(us < 100, us, rounded)
    return np.where(us >= _MAX_BUCKET_US, _MAX_BUCKET_US, out)


def _cells(
    key: _Ints, row_key: _Ints, starts: list[float], ends: list[float]
) -> tuple[dict[str, Any], _Ints]:
    """Sum outcome rows per (minute, ``key``) as ``model.stats._Cell.add`` sums them
    (``row_key``: the rows' keys as :class:`OutcomeRows` makes them, whose low bits are
    the outcome's and its weight's): the cells' minutes and sums, and each cell's first
    row (for its key's columns)."""
    start = np.array(starts, dtype=np.float64)
    end = np.array(ends, dtype=np.float64)
    bits = row_key & 7
    weight = np.where(row_key & 8, -1, 1)
    minute = np.floor_divide(start, 60.0).astype(np.int64) * 60

    minutes, minute_code = np.unique(minute, return_inverse=True)
    width = int(key.max()) + 1
    if len(minutes) >= _KEY_ROOM // width:  # never at real sizes: numbered afresh
        _, key = np.unique(key, return_inverse=True)
        width = int(key.max()) + 1
    _, first, cell = np.unique(minute_code * width + key, return_index=True, return_inverse=True)
    count = len(first)

    def summed(mask: npt.NDArray[np.bool_] | None = None) -> _Ints:
        w = weight if mask is None else np.where(mask, weight, 0)
        return np.bincount(cell, weights=w, minlength=count).astype(np.int64)

    elapsed = end - start
    elapsed = np.where(elapsed < 0.0, 0.0, elapsed)
    positive = weight > 0
    first_start = np.full(count, np.inf)
    np.minimum.at(first_start, cell[positive], start[positive])
    last_end = np.zeros(count)
    np.maximum.at(last_end, cell[positive], end[positive])

    # histogram: weights summed per (cell, bucket), zero counts left out
    pair = (cell.astype(np.int64) << 32) | _buckets(elapsed)
    pairs, pair_of = np.unique(pair, return_inverse=True)
    counts = np.bincount(pair_of, weights=weight, minlength=len(pairs)).astype(np.int64)
    kept = counts != 0
    pairs, counts = pairs[kept], counts[kept]
    offsets = np.searchsorted(pairs >> 32, np.arange(count + 1)).astype(np.int32)
    histogram = pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.array((pairs & 0xFFFFFFFF).astype(np.uint32), pa.uint32()),
        pa.array(counts, pa.int64()),
        type=_HIST,
    )
    columns: dict[str, Any] = {
        "minute": pa.array(minute[first].astype(np.uint32), pa.uint32()),
        "total": pa.array(summed(), pa.int64()),
        "ok": pa.array(summed(bits == 0), pa.int64()),
        "errors": pa.array(summed((bits & THROTTLE == 0) & (bits & ERROR != 0)), pa.int64()),
        "throttles": pa.array(summed(bits & THROTTLE != 0), pa.int64()),
        "faults": pa.array(summed(bits & FAULT != 0), pa.int64()),
        "response_time": pa.array(
            np.bincount(cell, weights=weight * elapsed, minlength=count), pa.float64()
        ),
        "first_start": pa.array(first_start, pa.float64()),
        "last_end": pa.array(last_end, pa.float64()),
        "histogram": histogram,
    }
    return columns, first
