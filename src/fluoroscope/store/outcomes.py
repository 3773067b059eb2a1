"""A batch's graph outcomes summed into ``node_stats``/``edge_stats`` rows, a batch at
a time: by the compiled :meth:`OutcomeRows.sums <fluoroscope.model.stats.OutcomeRows.sums>`
where :mod:`fluoroscope.model.stats` runs compiled (mypyc), else with Arrow compute
kernels (no interpreted loop per row). The same columns to the bit either way.

Measured (thread CPU per slice of the ingest benchmark's documents, a live worker's
``_SLICE`` at most 1,000; load ~3.5 on 2 cores): 100 documents (314 rows, 69 cells)
~1.41 ms by the kernels, ~0.29 ms compiled; 1,000 documents (3,112 rows) ~2.1 and ~1.1;
2,500 (7,724 rows) ~3.3 and ~2.2. The kernels' ~40 calls and two group-bys cost ~1.3 ms
whatever the rows; compiled, a row costs ~0.2 µs and the cells' conversion ~0.15 ms.
At 10,000 documents (~31,000 rows) ~8.1 and ~7.6: the rows, not the calls, decide.

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

The kernels sum node and edge rows together, in one pass of each: a batch's fixed
cost is the number of kernel calls (a few µs each, whatever the rows), not the rows,
and live batches are small (up to 1,000 documents, ~1,600 rows of each kind). The cells
are numbered nodes first, then edges, so each kind's cells are a slice of the sums.
Measured on one batch of 250 benchmark documents (395 node and 395 edge rows; thread
CPU, load average ~4 on 2 cores): ~2.55 ms for both kinds as two passes, with 35 calls
to find the histogram buckets, ~1.3 ms as one pass with 11, and each row's five counts
taken from a table by its low bits rather than masked out of them.

Pure; thread-safe for rows nobody appends to meanwhile; results owned by the caller.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from fluoroscope.model import stats
from fluoroscope.model.inference import ERROR, FAULT, THROTTLE
from fluoroscope.model.stats import OutcomeRows

__all__ = [
    "edge_cells",
    "graph_cells",
    "kernel_cells",
    "node_cells",
    "packed_array",
    "summed_cells",
]

_MAX_BUCKET_US: Final = 4_000_000_000  # as model.stats: UInt32 microseconds
_KEY_ROOM: Final = 1 << 62  # combined keys are numbered afresh before they pass this
_HIST: Final = pa.map_(pa.uint32(), pa.int64())
_SUMMED: Final = ("total", "ok", "errors", "throttles", "faults", "response_time")
_I64: Final = pa.int64()
_F64: Final = pa.float64()
_U32: Final = pa.uint32()
# each digit count's rounding to two significant digits (as model.stats._ROUNDING):
# below 100 µs the time itself (magnitude 1, nothing added), then 10 ** (digits - 2)
_MAGNITUDE: Final = pa.array([1, 1, 1, *(10 ** max(d - 2, 1) for d in range(3, 12))], _I64)
_HALF: Final = pa.array([0, 0, 0, *(10 ** max(d - 2, 1) // 2 for d in range(3, 12))], _I64)
_ZERO: Final = pa.scalar(0, _I64)
_ONE: Final = pa.scalar(1, _I64)
_ZERO_F: Final = pa.scalar(0.0, _F64)
_INF: Final = pa.scalar(float("inf"), _F64)
_NO_SUMS: Final = (None, None)


def _counts(low: int) -> tuple[int, ...]:
    """What an outcome row adds to its cell's counts (as ``model.stats._Cell.add``), by
    the row key's low four bits: retracted << 3 | ERROR/FAULT/THROTTLE bits."""
    weight = -1 if low & 8 else 1
    bits = low & 7
    throttle = bool(bits & THROTTLE)
    error = bool(bits & ERROR) and not throttle
    return (
        weight,
        weight * (bits == 0),
        weight * error,
        weight * throttle,
        weight * bool(bits & FAULT),
    )


_COUNTS: Final = pa.record_batch(
    [
        *(pa.array(column, _I64) for column in zip(*map(_counts, range(16)), strict=True)),
        pa.array([low < 8 for low in range(16)]),
    ],
    names=[*_SUMMED[:-1], "positive"],
)
""":func:`_counts` of each low four bits, and whether its weight is positive: a row's
five counts in one ``take`` rather than five masks of its bits."""
_FLAGS: Final = pa.record_batch(
    [pa.array([0, 0, 1, 1], pa.uint8()), pa.array([0, 1, 0, 1], pa.uint8())],
    names=["is_root", "inferred"],
)
"""A node key's two low bits (root << 1 | inferred) as its two columns."""
_SUMS_COMPILED: Final = not stats.__file__.endswith(".py")
"""Whether :mod:`fluoroscope.model.stats` runs compiled (``__file__`` names the
extension): :meth:`OutcomeRows.sums` then adds the rows, else the kernels here do."""
_U8: Final = pa.uint8()
_STR: Final = pa.string()
_NODE_KEYS: Final = (_U32, _STR, _STR, _U8, _U8)
_EDGE_KEYS: Final = (_U32, _STR, _STR, _STR, _STR)
_I32: Final = pa.int32()
_PACKED: Final = (
    *((name, _I64, "q") for name in _SUMMED[:-1]),
    *((name, _F64, "d") for name in ("response_time", "first_start", "last_end")),
)
"""The sums of :meth:`OutcomeRows.sums`: name, type and ``array`` type code."""
_FIRST_64: Final = pa.array([0], _I64)
_FIRST_32: Final = pa.array([0], pa.int32())

Cells = dict[str, Any]


def node_cells(rows: OutcomeRows) -> Cells | None:
    """The ``node_stats`` columns (those :meth:`StatsBatch.node_columns` makes, as Arrow
    arrays) of ``rows``' node outcomes; None without any."""
    return graph_cells(rows)[0]


def edge_cells(rows: OutcomeRows) -> Cells | None:
    """The ``edge_stats`` columns of ``rows``' edge outcomes (see :func:`node_cells`)."""
    return graph_cells(rows)[1]


def graph_cells(rows: OutcomeRows) -> tuple[Cells | None, Cells | None]:
    """The ``node_stats`` and the ``edge_stats`` columns of ``rows`` (see
    :func:`node_cells`), each None without outcomes of its kind: summed by the compiled
    :meth:`OutcomeRows.sums` where :mod:`fluoroscope.model.stats` runs compiled, else
    by Arrow's kernels (:func:`kernel_cells`). The same columns to the bit."""
    if _SUMS_COMPILED:
        return summed_cells(rows)
    return kernel_cells(rows)


def summed_cells(rows: OutcomeRows) -> tuple[Cells | None, Cells | None]:
    """:func:`graph_cells` by :meth:`OutcomeRows.sums`: the cells' column lists (a few
    dozen cells a slice) converted to Arrow."""
    nodes, edges = rows.sums()
    return _arrays(nodes, _NODE_KEYS), _arrays(edges, _EDGE_KEYS)


def _arrays(lists: dict[str, list[Any]] | None, keys: tuple[pa.DataType, ...]) -> Cells | None:
    """One kind's cells of :meth:`OutcomeRows.sums` as Arrow arrays: the numbers packed
    by ``array`` into buffers Arrow takes as they are (~2.8 µs a column, where
    ``pa.array`` took ~5: two dozen columns a slice)."""
    if lists is None:
        return None
    names = list(lists)[: len(keys)]  # the kind's keys come first
    columns: Cells = {
        name: pa.array(lists[name], kind) for name, kind in zip(names, keys, strict=True)
    }
    for name, kind, code in _PACKED:
        columns[name] = packed_array(kind, code, lists[name])
    columns["histogram"] = pa.MapArray.from_arrays(
        packed_array(_I32, "i", lists["histogram_offsets"]),
        pa.array(lists["histogram_buckets"], _U32),
        packed_array(_I64, "q", lists["histogram_counts"]),
        type=_HIST,
    )
    return columns


def packed_array(kind: pa.DataType, code: str, values: Sequence[Any]) -> pa.Array:
    """``values`` as an Arrow array of ``kind`` (no nulls), by way of an ``array`` of
    type ``code``, as wide as ``kind`` (``B`` for UInt8 packed by ``bytes()``, which
    packs a list of small ints in C): Arrow takes the buffer as it is. ~3 µs a column
    where ``pa.array``, converting each item with its checks, took ~5 (4,000 UInt8
    items: ~0.43 -> ~0.04 ms); a slice's tables have dozens of numeric columns."""
    data = bytes(values) if code == "B" else array(code, values)
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(data)])


def kernel_cells(rows: OutcomeRows) -> tuple[Cells | None, Cells | None]:
    """:func:`graph_cells` by Arrow's compute kernels, both kinds in one pass (where
    the stats module runs as Python: no interpreted loop per row)."""
    nodes, edges = len(rows.node_key), len(rows.edge_key)
    if not nodes and not edges:
        return _NO_SUMS
    # node keys: number << 2 | root << 1 | inferred; edge keys: src << 28 | dst
    sums, key, minute, split = _cells(
        rows.node_key + rows.edge_key, rows.node_start + rows.edge_start,
        rows.node_end + rows.edge_end, nodes,
    )  # fmt: skip
    names, types = _names(rows)
    made: list[Cells | None] = [None, None]
    for kind, lo, hi in ((0, 0, split), (1, split, len(key))):
        if lo == hi:
            continue
        columns = {name: column.slice(lo, hi - lo) for name, column in sums.items()}
        columns["minute"] = minute[kind]
        if hi < len(key):  # the nodes' cells before the edges': their own buffers (an
            # IPC stream pads a slice's buffer with the bytes after it, which would
            # make it differ from summed_cells' in those bytes)
            columns = {name: pa.concat_arrays([column]) for name, column in columns.items()}
        part = key.slice(lo, hi - lo)
        if kind == 0:
            at = pc.shift_right(part, 2)
            columns["name"] = names.take(at)
            columns["type"] = types.take(at)
            flags = _FLAGS.take(pc.bit_wise_and(part, 3))
            columns["is_root"] = flags.column("is_root")
            columns["inferred"] = flags.column("inferred")
        else:
            at_src, at_dst = pc.shift_right(part, 28), pc.bit_wise_and(part, 0xFFFFFFF)
            columns["src_name"] = names.take(at_src)
            columns["src_type"] = types.take(at_src)
            columns["dst_name"] = names.take(at_dst)
            columns["dst_type"] = types.take(at_dst)
        made[kind] = columns
    return made[0], made[1]


def _names(rows: OutcomeRows) -> tuple[pa.Array, pa.Array]:
    """The numbered nodes' names and types, by number."""
    nodes = list(rows.nodes)
    return (
        pa.array([node[0] for node in nodes], pa.string()),
        pa.array([node[1] for node in nodes], pa.string()),
    )


def _buckets(elapsed: pa.Array) -> pa.Array:
    """:func:`~fluoroscope.model.stats.histogram_bucket` of each (non-negative) time.

    ``int(seconds * 1e6 + 0.5)``, capped at the largest bucket (which rounds to itself:
    as the cap of ``histogram_bucket``), rounded to two significant digits by its number
    of digits (the length of its decimal text: 2 calls where comparing with each power
    of ten took 20)."""
    us_float = pc.add(pc.multiply(elapsed, 1_000_000.0), 0.5)
    capped = pc.min_element_wise(us_float, float(_MAX_BUCKET_US))
    us = pc.cast(capped, _I64, safe=False)  # int(): truncated
    digits = pc.utf8_length(pc.cast(us, pa.string()))
    magnitude = _MAGNITUDE.take(digits)
    return pc.multiply(pc.divide(pc.add(us, _HALF.take(digits)), magnitude), magnitude)


def _minutes(start: pa.Array) -> pa.Array:
    """``int(start // 60)`` of each start: the floor of the float quotient is Python's
    float floor division here. A quotient just below a whole number ``n`` lies at least
    ``ulp(start) / 60`` below it (``n * 60`` is a whole number, so a multiple of
    ``ulp(start)`` for starts below 2**53), more than half the quotient's own ulp (which
    is at most ``ulp(start) / 32``), so it never rounds up to ``n``."""
    return pc.cast(pc.floor(pc.divide(start, 60.0)), _I64)


def _cells(
    row_keys: list[int], starts: list[float], ends: list[float], nodes: int
) -> tuple[dict[str, pa.Array], pa.Array, tuple[pa.Array, pa.Array], int]:
    """Sum outcome rows per (kind, minute, ``row_key >> 4``) as ``model.stats._Cell.add``
    sums them (``row_keys``: the keys :class:`OutcomeRows` makes, whose low four bits
    are the outcome's and its weight's; the first ``nodes`` rows are node rows, the
    others edge rows). Returns the cells' sums, their keys, each kind's cells' minutes
    (as stored) and where the edge cells begin: the cells are ordered by kind, minute
    and key."""
    row_key = pa.array(row_keys, _I64)
    start = pa.array(starts, _F64)
    end = pa.array(ends, _F64)
    # each row's counts, by its low four bits (the outcome's and its weight's)
    counts = _COUNTS.take(pc.bit_wise_and(row_key, 15))
    weight = counts.column("total")
    key = pc.shift_right(row_key, 4)

    # one integer per (kind, minute, key), ordered as the triple: minute - first minute
    # (the edges' after every node's: plus the minutes' count), then key
    minute = _minutes(start)
    span = pc.min_max(minute)
    low, high = span["min"].as_py(), span["max"].as_py()
    minutes = high - low + 1
    slots = minutes * (2 if 0 < nodes < len(row_keys) else 1)
    width = pc.max(key).as_py() + 1
    labels = None
    if slots >= _KEY_ROOM // width:  # never at real sizes: keys numbered afresh
        labels = pc.unique(key).sort()  # ascending, so the order stays the pair's
        key = pc.cast(pc.index_in(key, value_set=labels), _I64)
        width = len(labels)
    slot = pc.subtract(minute, low)
    if 0 < nodes < len(row_keys):
        slot = pa.concat_arrays([slot.slice(0, nodes), pc.add(slot.slice(nodes), minutes)])
    cell = pc.add(pc.multiply(slot, width), key)

    elapsed = pc.max_element_wise(pc.subtract(end, start), _ZERO_F)  # never negative
    positive = counts.column("positive")
    rows = pa.table(
        {
            "cell": cell,
            **{name: counts.column(name) for name in _SUMMED[:-1]},
            "response_time": pc.multiply(weight, elapsed),
            "first_start": pc.if_else(positive, start, _INF),
            "last_end": pc.if_else(positive, end, _ZERO_F),
        }
    )
    # use_threads=False: one thread adds each group's rows in row order
    summed = (
        rows.group_by("cell", use_threads=False)
        .aggregate(
            [(name, "sum") for name in _SUMMED] + [("first_start", "min"), ("last_end", "max")]
        )
        .sort_by("cell")
        .combine_chunks()
    )
    cells = summed.column("cell").chunk(0)
    sums = {name: summed.column(f"{name}_sum").chunk(0) for name in _SUMMED}
    sums["first_start"] = summed.column("first_start_min").chunk(0)
    sums["last_end"] = pc.max_element_wise(summed.column("last_end_max").chunk(0), _ZERO_F)
    sums["histogram"] = _histograms(cell, _buckets(elapsed), weight)

    at_slot = pc.divide(cells, width)  # integer division: both are non-negative
    cell_key = pc.subtract(cells, pc.multiply(at_slot, width))
    if labels is not None:
        cell_key = labels.take(cell_key)
    stamp = pc.multiply(pc.add(at_slot, low), 60)
    if nodes == len(row_keys):
        split = len(cells)
    elif not nodes:
        split = 0
    else:  # the edges' cells begin at the first slot past the nodes' minutes
        split = pc.index(pc.greater_equal(at_slot, minutes), True).as_py()
        edges = pc.subtract(stamp.slice(split), minutes * 60)
        stamp = pa.concat_arrays([stamp.slice(0, split), edges])
    stamp = pc.cast(stamp, _U32)
    by_kind = (stamp.slice(0, split), stamp.slice(split))
    return sums, cell_key, by_kind, split


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
    begins = pc.add(pc.cast(pc.indices_nonzero(changed), _I64), _ONE)
    offsets = pa.concat_arrays([_FIRST_64, begins, pa.array([size], _I64)])
    # without the zero counts: a cell's entries begin after the kept ones before it
    kept = pc.not_equal(counts, _ZERO)
    before = pa.concat_arrays([_FIRST_32, pc.cumulative_sum(pc.cast(kept, pa.int32()))])
    return pa.MapArray.from_arrays(
        before.take(offsets),
        pc.cast(pairs.column("bucket").chunk(0).filter(kept), pa.uint32()),
        counts.filter(kept),
        type=_HIST,
    )
