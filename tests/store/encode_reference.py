"""``store/encode.py`` and ``store/outcomes.py`` as they were at commit 2ef8a59, before
their per-batch fixed costs were cut: the reference ``test_encode_unchanged.py`` holds
today's encoder to, table for table and bit for bit. Frozen: never edited to follow the
encoder (a change of what is stored changes the test, on purpose, not this copy).
Drop it with the test once the comparison has served (issue 21)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from fluoroscope.model.inference import ERROR, FAULT, THROTTLE
from fluoroscope.model.stats import OutcomeRows
from fluoroscope.model.summarycolumns import LIST_GROUPS, SCALAR_COLUMNS, SummaryColumns
from fluoroscope.store.batch import StatsSource, WriteBatch

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


_SPAN_SCHEMA: Final = pa.schema(
    [
        ("ts", pa.uint32()),
        ("trace_id", pa.string()),
        ("id", pa.string()),
        ("parent_id", pa.string()),
        ("is_segment", pa.uint8()),
        ("name", pa.string()),
        ("origin", pa.string()),
        ("namespace", pa.string()),
        ("start_time", pa.float64()),
        ("end_time", pa.float64()),
        ("flags", pa.uint8()),
        ("http_status", pa.uint16()),
        ("version", pa.uint64()),
        ("doc", pa.binary()),
    ]
)
_STAT_FIELDS: Final = [
    ("total", pa.int64()),
    ("ok", pa.int64()),
    ("errors", pa.int64()),
    ("throttles", pa.int64()),
    ("faults", pa.int64()),
    ("response_time", pa.float64()),
    ("first_start", pa.float64()),
    ("last_end", pa.float64()),
    ("histogram", _HIST),
]
_NODE_SCHEMA: Final = pa.schema(
    [
        ("minute", pa.uint32()),
        ("name", pa.string()),
        ("type", pa.string()),
        ("is_root", pa.uint8()),
        ("inferred", pa.uint8()),
        *_STAT_FIELDS,
    ]
)
_EDGE_SCHEMA: Final = pa.schema(
    [
        ("minute", pa.uint32()),
        ("src_name", pa.string()),
        ("src_type", pa.string()),
        ("dst_name", pa.string()),
        ("dst_type", pa.string()),
        *_STAT_FIELDS,
    ]
)
_STRINGS = pa.list_(pa.string())
_SAME_AS_SLOWEST: Final = {"svc_min_rt": "svc_max_rt", "edge_min_rt": "edge_max_rt"}
"""A quickest response time equal to the slowest (a service or an edge seen once in its
trace: ~96 % of them) is stored as NaN, which the column compresses to almost nothing,
and read as the slowest (:mod:`fluoroscope.query.compile`). Measured on 1M spans, one
merged part: svc_min_rt 2.20 -> 0.20 and edge_min_rt 1.88 -> 0.19 bytes per span.
Response times are finite (ingest validates them), so NaN is never a real value; rows
written before (migration 24) hold the value itself, which reads the same."""
_SUMMARY_SCHEMA: Final = pa.schema(
    [
        ("ts", pa.uint32()),
        ("trace_id", pa.string()),
        ("revision", pa.uint32()),
        ("start_time", pa.float64()),
        ("end_time", pa.float64()),
        ("duration", pa.float64()),
        ("response_time", pa.float64()),
        ("has_fault", pa.uint8()),
        ("has_error", pa.uint8()),
        ("has_throttle", pa.uint8()),
        ("is_partial", pa.uint8()),
        ("http_method", pa.string()),
        ("http_url", pa.string()),
        ("http_status", pa.uint16()),
        ("user_agent", pa.string()),
        ("client_ip", pa.string()),
        ("entry_name", pa.string()),
        ("entry_type", pa.string()),
        ("service_names", _STRINGS),
        ("service_types", _STRINGS),
        ("users", _STRINGS),
        ("resource_arns", _STRINGS),
        ("ann_keys", _STRINGS),
        ("ann_types", pa.list_(pa.uint8())),
        ("ann_strings", _STRINGS),
        ("ann_numbers", pa.list_(pa.float64())),
        ("segment_count", pa.uint32()),
        ("details", pa.binary()),
        # migration 2 (appended: inserts are positional)
        ("svc_bits", pa.list_(pa.uint8())),
        ("svc_root", pa.list_(pa.uint8())),
        ("svc_inferred", pa.list_(pa.uint8())),
        ("svc_min_rt", pa.list_(pa.float64())),
        ("svc_max_rt", pa.list_(pa.float64())),
        ("exc_types", _STRINGS),
        ("exc_messages", _STRINGS),
        ("exc_services", pa.list_(pa.int16())),
        ("instance_ids", _STRINGS),
        ("zones", _STRINGS),
        # migration 4 (edge indices are 1-based, as ClickHouse arrays)
        ("edge_src", pa.list_(pa.uint16())),
        ("edge_dst", pa.list_(pa.uint16())),
        ("edge_bits", pa.list_(pa.uint8())),
        ("edge_min_rt", pa.list_(pa.float64())),
        ("edge_max_rt", pa.list_(pa.float64())),
        # migration 5: root-cause items (see _cause_items)
        ("rc_cat", pa.list_(pa.uint8())),
        ("rc_level", pa.list_(pa.uint8())),
        ("rc_name", _STRINGS),
        ("rc_type", _STRINGS),
        ("rc_message", _STRINGS),
        ("rc_remote", pa.list_(pa.uint8())),
        ("rc_inferred", pa.list_(pa.uint8())),
        ("rc_coverage", pa.list_(pa.float64())),
        # migration 6 (aligned with service_names)
        ("service_accounts", _STRINGS),
    ]
)


def _summary_columns(rows: SummaryColumns) -> dict[str, Sequence[Any] | pa.Array]:
    """The ``traces`` table's columns: a list per scalar column, an Arrow array per list
    column (from the flat values and offsets ingest gathered: no list per row and cell)."""
    scalars = rows.scalars
    columns: dict[str, Sequence[Any] | pa.Array] = {
        name: list(values)
        for name, values in zip(SCALAR_COLUMNS, zip(*scalars, strict=True), strict=True)
    }
    if not scalars:
        columns = {name: [] for name in SCALAR_COLUMNS}
    details: Any = rows.details  # JSON texts, or dicts when the rows were not encoded
    if not rows.encoded:
        details = [orjson.dumps(d) for d in details]
    columns["details"] = pa.array(details, type=pa.binary())
    flat: dict[str, tuple[pa.Array, pa.Array]] = {}  # name -> (offsets, values)
    for group, names in LIST_GROUPS:
        offsets = pa.array(rows.offsets[group], type=pa.int32())
        for name in names:
            value_type = _SUMMARY_SCHEMA.field(name).type.value_type
            values = pa.array(rows.list_column(name), type=value_type)
            flat[name] = (offsets, values)
            columns[name] = pa.ListArray.from_arrays(offsets, values)
    for quickest, slowest in _SAME_AS_SLOWEST.items():
        offsets, values = flat[quickest]
        same = pc.equal(values, flat[slowest][1])
        stored = pc.if_else(same, pa.scalar(float("nan")), values)
        columns[quickest] = pa.ListArray.from_arrays(offsets, stored)
    return columns


def _arrow(columns: Mapping[str, Sequence[Any] | pa.Array], schema: pa.Schema) -> pa.Table:
    """``columns`` (every field of ``schema``; a list, or an Arrow array already of the
    field's type) as an Arrow table, converted one column at a time: ``pa.table(dict)``
    holds the GIL for the whole table (~0.1 s for 50k span rows), which starved the UDP
    loop; between two columns the loop thread gets its turn."""
    return pa.Table.from_arrays(
        [
            column if isinstance(column, pa.Array) else pa.array(column, type=f.type)
            for f, column in ((f, columns[f.name]) for f in schema)
        ],
        schema=schema,
    )


def encode_batch(batch: WriteBatch) -> list[tuple[str, pa.Table]]:
    """``batch`` as Arrow tables, each named by the table it goes to (no engine needed:
    the ingest worker encodes, the process owning the store inserts)."""
    tables: list[tuple[str, pa.Table]] = []
    spans = batch.spans
    if len(spans):
        tables.append(
            (
                "spans",
                _arrow({name: getattr(spans, name) for name in _SPAN_SCHEMA.names}, _SPAN_SCHEMA),
            )
        )
    if batch.summaries:
        tables.append(("traces", _arrow(_summary_columns(batch.summaries), _SUMMARY_SCHEMA)))
    if batch.stats:
        tables += _stat_tables(batch.stats)
    outcomes = batch.outcomes
    if outcomes:  # summed here, a batch at a time, into the same rows
        for name, cells, schema in (
            ("node_stats", node_cells(outcomes), _NODE_SCHEMA),
            ("edge_stats", edge_cells(outcomes), _EDGE_SCHEMA),
        ):
            if cells is not None:
                tables.append((name, _arrow(cells, schema)))
    # (contributions left out: their encoding changed on purpose since, with their
    # columns - tests/ingest/test_contributions.py carries them through the pipe)
    return tables


def _stat_tables(stats: StatsSource, prefix: str = "") -> list[tuple[str, pa.Table]]:
    """``stats``' node and edge rows as Arrow tables for ``{prefix}node_stats`` and
    ``{prefix}edge_stats``; a kind without rows is left out."""
    tables: list[tuple[str, pa.Table]] = []
    for kind, columns, schema in (
        ("node", stats.node_columns(), _NODE_SCHEMA),
        ("edge", stats.edge_columns(), _EDGE_SCHEMA),
    ):
        if columns["minute"]:
            tables.append((f"{prefix}{kind}_stats", _arrow(columns, schema)))
    return tables


# -- the comparison (not part of the frozen copy) --


def _bits(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """``column`` as one array whose floats are their bits (lists of floats too)."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_floating(array.type):
        return array.view(pa.int64())
    if pa.types.is_list(array.type) and pa.types.is_floating(array.type.value_type):
        lengths = pc.cumulative_sum(array.value_lengths().fill_null(0))
        offsets = pa.concat_arrays([pa.array([0], pa.int32()), lengths.cast(pa.int32())])
        return pa.ListArray.from_arrays(offsets, array.flatten().view(pa.int64()))
    return array


def same_tables(made: list[tuple[str, pa.Table]], expected: list[tuple[str, pa.Table]]) -> None:
    """``made`` are ``expected``: the same tables, names and schemas, every column equal
    with floats compared by their bits (a NaN equals itself, -0.0 differs from 0.0)."""
    assert [name for name, _ in made] == [name for name, _ in expected]
    for (name, got), (_, want) in zip(made, expected, strict=True):
        assert got.schema.equals(want.schema, check_metadata=True), name
        assert got.num_rows == want.num_rows, name
        for field in want.schema:
            assert _bits(got.column(field.name)).equals(_bits(want.column(field.name))), (
                f"{name}.{field.name}"
            )
