"""Write batches as Arrow tables, one per store table they go to.

Pure and engine-free: an ingest worker encodes its batches, and the process owning the
store inserts them (:meth:`~fluoroscope.store.store.Store.insert_tables`). The schemas
here are the columns each insert names; the tables themselves are in
:mod:`fluoroscope.store.schema`. Thread-safe; results are owned by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from fluoroscope.model.summarycolumns import LIST_GROUPS, SCALAR_COLUMNS, SummaryColumns
from fluoroscope.store.batch import StatsSource, WriteBatch
from fluoroscope.store.details import encode_details
from fluoroscope.store.outcomes import graph_cells, packed_array

__all__ = ["CONTRIBUTIONS", "encode_batch", "encode_group_stats"]

CONTRIBUTIONS: Final = "contributions"
"""The name :func:`encode_batch` gives the batch's contributions
(:class:`~fluoroscope.store.batch.ContributionColumns`): no table of the store; whoever
keeps group statistics takes them out before the insert (:meth:`Store.insert_tables`
skips them)."""

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
_SPAN_COLUMNS: Final = tuple(n for n in _SPAN_SCHEMA.names if n not in ("flags", "version"))
"""The span columns ingest keeps as lists, converted as they are."""
_HIST = pa.map_(pa.uint32(), pa.int64())
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
_CONTRIBUTION_SCHEMA: Final = pa.schema(
    [
        ("trace_id", pa.dictionary(pa.int32(), pa.string())),
        ("phase", pa.uint8()),
        ("src_name", pa.dictionary(pa.int32(), pa.string())),
        ("src_type", pa.dictionary(pa.int32(), pa.string())),
        ("dst_name", pa.dictionary(pa.int32(), pa.string())),
        ("dst_type", pa.dictionary(pa.int32(), pa.string())),
        ("is_edge", pa.uint8()),
        ("is_root", pa.uint8()),
        ("inferred", pa.uint8()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("bits", pa.uint8()),
    ]
)
_STRINGS = pa.list_(pa.string())
_U8: Final = pa.uint8()
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
        # migration 5: root-cause items (see SummaryColumns.add_cause)
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


_I32: Final = pa.int32()
_CODES: Final = {pa.uint8(): "B", pa.int16(): "h", pa.uint16(): "H", pa.float64(): "d"}
"""The ``array`` type code of each numeric list type of the summaries (as wide: a C
short is 2 bytes, an int, ``i`` for Int32 offsets, 4, wherever CPython runs)."""
_LIST_VALUES: Final = {
    group: [
        (name, value_type, _CODES.get(value_type, ""))
        for name in names
        for value_type in (_SUMMARY_SCHEMA.field(name).type.value_type,)
    ]
    for group, names in LIST_GROUPS
}
"""Per group of list columns: each column's name, value type and ``array`` type code
("" for text, converted by ``pa.array``)."""
_NO_OFFSETS: Final = pa.array([0], _I32)


_SCALARS: Final = pa.struct([_SUMMARY_SCHEMA.field(name) for name in SCALAR_COLUMNS])
"""A summary row's scalars (:data:`SCALAR_COLUMNS`, a tuple per row) as one struct."""


def _summary_columns(rows: SummaryColumns) -> dict[str, Sequence[Any] | pa.Array]:
    """The ``traces`` table's columns as Arrow arrays: the scalar columns from the
    rows' tuples, each list column from the flat values and offsets ingest gathered (no
    list per row and cell)."""
    # the rows' scalar tuples converted at once, as a struct's fields, not transposed
    # into a list per column first (the 1,400 rows of 2,500 benchmark documents: ~2.1
    # -> ~1.7 ms; of 100 documents ~0.14 -> ~0.08)
    fields = pa.array(rows.scalars, type=_SCALARS).flatten()
    columns: dict[str, Sequence[Any] | pa.Array] = dict(zip(SCALAR_COLUMNS, fields, strict=True))
    details: Any = rows.details  # JSON texts, or dicts when the rows were not encoded
    if not rows.encoded:
        details = [encode_details(d) for d in details]
    columns["details"] = pa.array(details, type=pa.binary())
    flat: dict[str, tuple[pa.Array, pa.Array]] = {}  # name -> (offsets, values)
    last: list[int] | None = None
    offsets = _NO_OFFSETS
    for group, group_columns in _LIST_VALUES.items():
        ends = rows.offsets[group]
        if ends != last:  # groups of one item per service (or edge) share their offsets
            offsets = packed_array(_I32, "i", ends)
            last = ends
        for name, value_type, code in group_columns:
            column = rows.list_column(name)
            if code:
                values = packed_array(value_type, code, column)
            else:
                values = pa.array(column, type=value_type)
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
            column if isinstance(column, pa.Array) else pa.array(column, type=kind)
            for column, kind in ((columns[name], kind) for name, kind in _fields(schema))
        ],
        schema=schema,
    )


def _fields(schema: pa.Schema) -> tuple[tuple[str, pa.DataType], ...]:
    """``schema``'s fields' names and types, taken once per schema: iterating a schema
    makes a ``Field`` per field every time (~0.5 µs each: ~30 µs for the summaries'
    54 columns, ~60 µs of a slice's tables)."""
    found = _FIELDS.get(id(schema))
    if found is None or found[0] is not schema:
        found = _FIELDS[id(schema)] = (schema, tuple(zip(schema.names, schema.types, strict=True)))
    return found[1]


_FIELDS: Final[dict[int, tuple[pa.Schema, tuple[tuple[str, pa.DataType], ...]]]] = {}
""":func:`_fields` by the schema's identity (the schema kept beside: an identity is
only its object's while the object lives)."""


def encode_batch(batch: WriteBatch) -> list[tuple[str, pa.Table]]:
    """``batch`` as Arrow tables, each named by the table it goes to (no engine needed:
    the ingest worker encodes, the process owning the store inserts)."""
    tables: list[tuple[str, pa.Table]] = []
    spans = batch.spans
    if len(spans):
        columns: dict[str, Any] = {name: getattr(spans, name) for name in _SPAN_COLUMNS}
        columns["flags"] = flags = packed_array(_U8, "B", spans.flags)
        columns["is_segment"] = packed_array(_U8, "B", spans.is_segment)
        columns["version"] = spans.version_array(flags)  # (no list per row: see there)
        tables.append(("spans", _arrow(columns, _SPAN_SCHEMA)))
    if batch.summaries:
        tables.append(("traces", _arrow(_summary_columns(batch.summaries), _SUMMARY_SCHEMA)))
    if batch.stats:
        tables += _stat_tables(batch.stats)
    outcomes = batch.outcomes
    if outcomes:  # summed here, a batch at a time, into the same rows (both in one pass)
        nodes, edges = graph_cells(outcomes)
        for name, cells, schema in (
            ("node_stats", nodes, _NODE_SCHEMA),
            ("edge_stats", edges, _EDGE_SCHEMA),
        ):
            if cells is not None:
                tables.append((name, _arrow(cells, schema)))
    made = batch.contributions
    if made:  # not a table: what the group statistics are made from, then dropped
        tables.append((CONTRIBUTIONS, _arrow(made.arrays(), _CONTRIBUTION_SCHEMA)))
    return tables


def encode_group_stats(group_key: str, stats: StatsSource) -> list[tuple[str, pa.Table]]:
    """A tracked group's statistics (``stats``, keyed ``group_key``) as Arrow tables
    named by the tables they go to, like :func:`encode_batch`."""
    return [
        (
            name,
            table.add_column(0, "group_key", pa.array([group_key] * table.num_rows, pa.string())),
        )
        for name, table in _stat_tables(stats, "group_")
    ]


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
