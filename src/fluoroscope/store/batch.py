"""What one write carries, column by column, and what a trace reload returns.

Ingest fills a :class:`WriteBatch` in its worker thread and hands it to
:meth:`fluoroscope.store.store.Store.write`; after that the store owns it.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from fluoroscope.model.inference import NodeId
from fluoroscope.model.stats import Contribution, Outcome, OutcomeRows
from fluoroscope.model.summarycolumns import SummaryColumns
from fluoroscope.store.details import encode_details, encode_slim_details

if TYPE_CHECKING:
    from collections.abc import Callable

    from fluoroscope.model.summary import TraceSummary

__all__ = [
    "AFTER", "AFTER_SAME", "BEFORE", "COMPLETE_BIT", "IN_PROGRESS_FLAG", "BinaryColumn",
    "ContributionColumns", "SpanColumns",
    "StatsSource", "StoredTrace", "WriteBatch", "read_contributions",
]  # fmt: skip

COMPLETE_BIT: Final = 1 << 62
"""Set in a span row's version when the entity is complete, so it outranks in-progress
rows."""
IN_PROGRESS_FLAG: Final = 8
"""Set in a span row's flags (above the outcome bits) while the entity is in progress
(``store.tracestats`` reads it so)."""
_COMPLETE_BY_FLAGS: Final = pa.array(
    [0 if flags & IN_PROGRESS_FLAG else COMPLETE_BIT for flags in range(256)], pa.uint64()
)
"""What a row's version holds besides its number, by the row's flags."""

BEFORE: Final = 0
"""A contribution of the trace before the batch (sent only when it differs from after)."""
AFTER: Final = 1
"""A contribution of the trace after the batch, whose contributions before differ."""
AFTER_SAME: Final = 2
"""A contribution of the trace after the batch, which contributed the same before."""


class BinaryColumn:
    """A binary column appended into one buffer plus offsets, not kept as a bytes object
    per row: a batch's tens of thousands of documents, kept apart until the write, cost
    more in memory traffic than copying each into place (and pa.array() takes the
    buffers as they are, through ``__arrow_array__``)."""

    __slots__ = ("_data", "_offsets")

    def __init__(self) -> None:
        self._data = bytearray()
        self._offsets = array("i", [0])  # a batch stays far below 2 GiB (pipeline bound)

    def append(self, value: bytes) -> None:
        self._data += value
        self._offsets.append(len(self._data))

    def appender(self) -> tuple[bytearray, Callable[[int], None]]:
        """The buffer and its offsets' ``append``, for a caller appending many values in
        a loop: ``data += value; end(len(data))`` appends ``value`` as :meth:`append`
        does, without a call per value."""
        return self._data, self._offsets.append

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, index: int) -> bytes:
        if not -len(self) <= index < len(self):
            raise IndexError("BinaryColumn index out of range")
        index %= len(self)
        return bytes(self._data[self._offsets[index] : self._offsets[index + 1]])

    def __arrow_array__(self, type: Any = None) -> pa.Array:
        """The column as an Arrow binary array over its buffers (no copy); append no more."""
        return pa.Array.from_buffers(
            pa.binary(),
            len(self),
            [None, pa.py_buffer(self._offsets), pa.py_buffer(self._data)],
        )


@dataclass(slots=True)
class SpanColumns:
    """One list per column of the ``spans`` table (``doc``: a :class:`BinaryColumn`), all
    of equal length, but ``version``: rows are numbered from ``version_base`` (row ``i``
    is version ``version_base + i + 1``, and :data:`COMPLETE_BIT` if the row's ``flags``
    hold no :data:`IN_PROGRESS_FLAG`), so no number is kept per row (a boxed 64-bit
    integer each, converted one by one) and the column is made a batch at a time
    (:meth:`version_array`)."""

    ts: list[int] = field(default_factory=list)
    trace_id: list[str] = field(default_factory=list)
    id: list[str] = field(default_factory=list)
    parent_id: list[str] = field(default_factory=list)
    is_segment: list[int] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    origin: list[str] = field(default_factory=list)
    namespace: list[str] = field(default_factory=list)
    start_time: list[float] = field(default_factory=list)
    end_time: list[float] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    http_status: list[int] = field(default_factory=list)
    doc: BinaryColumn = field(default_factory=BinaryColumn)
    version_base: int = 0

    def __len__(self) -> int:
        return len(self.id)

    @property
    def version(self) -> list[int]:
        """Each row's version (for readers of a batch; the encoder takes
        :meth:`version_array`)."""
        base = self.version_base
        return [
            base + i + (0 if flags & IN_PROGRESS_FLAG else COMPLETE_BIT)
            for i, flags in enumerate(self.flags, 1)
        ]

    def version_array(self, flags: pa.Array) -> pa.Array:
        """The ``version`` column (UInt64) given the ``flags`` column as Arrow (UInt8)."""
        base = self.version_base
        numbers = array("Q", range(base + 1, base + len(self) + 1))
        number = pa.Array.from_buffers(pa.uint64(), len(numbers), [None, pa.py_buffer(numbers)])
        return pc.bit_wise_or(number, _COMPLETE_BY_FLAGS.take(flags))


_PHASE_SHIFT: Final = 4  # a row's key: the outcome's bits (ERROR/FAULT/THROTTLE) below
_EDGE: Final = 1 << 6
_ROOT: Final = 1 << 7
_INFERRED: Final = 1 << 8
_SRC_SHIFT: Final = 9
_DST_SHIFT: Final = 33
_NODE_MASK: Final = (1 << 24) - 1  # node numbers stay far below: a batch is bounded


@dataclass(slots=True)
class ContributionColumns:
    """Per trace a batch changed, what it contributes to the service-graph statistics
    before and after the batch (:meth:`TraceState.contributions`), for the statistics
    of each group the trace counts in; gathered only while groups are tracked.

    A row is its trace's number (in :attr:`traces`), a key and two times, as
    :class:`~fluoroscope.model.stats.OutcomeRows` keeps outcomes: the key packs the
    outcome's bits, the phase (``BEFORE``, ``AFTER`` or ``AFTER_SAME``) << 4, an edge,
    root and inferred flag (bits 6-8), the node's (or caller's) number << 9 and the
    callee's << 33 (numbers in :attr:`nodes`, in order of first appearance). Four
    appends a row where a list per column took twelve, and no string per row on the
    pipe: :meth:`arrays` gives the columns :func:`read_contributions` reads, strings as
    dictionaries."""

    traces: list[str] = field(default_factory=list)
    trace: list[int] = field(default_factory=list)
    key: list[int] = field(default_factory=list)
    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    nodes: dict[NodeId, int] = field(default_factory=dict)

    def add(self, trace_id: str, before: list[Contribution], after: list[Contribution]) -> None:
        """Record one changed trace's contributions before and after the batch."""
        number = len(self.traces)
        self.traces.append(trace_id)
        if before == after:
            self._extend(number, AFTER_SAME << _PHASE_SHIFT, after)
        else:
            self._extend(number, BEFORE << _PHASE_SHIFT, before)
            self._extend(number, AFTER << _PHASE_SHIFT, after)

    def _extend(self, number: int, phase: int, items: list[Contribution]) -> None:
        nodes = self.nodes
        trace, keys, starts, ends = self.trace, self.key, self.start, self.end
        for node, callee, (start, end, bits), root, inferred in items:
            src = nodes.get(node)
            if src is None:
                src = nodes[node] = len(nodes)
            key = phase | bits | src << _SRC_SHIFT
            if callee is not None:
                dst = nodes.get(callee)
                if dst is None:
                    dst = nodes[callee] = len(nodes)
                key |= _EDGE | dst << _DST_SHIFT
            if root:
                key |= _ROOT
            if inferred:
                key |= _INFERRED
            trace.append(number)
            keys.append(key)
            starts.append(start)
            ends.append(end)

    def __len__(self) -> int:
        return len(self.key)

    def arrays(self) -> dict[str, pa.Array]:
        """The columns of the ``contributions`` table (``CONTRIBUTION_SCHEMA``): its
        trace's id, the phase, the node (``src_*``) and, for an edge, the callee
        (``dst_*``, empty for a node), the flags, the outcome. Vectorized."""
        key = pa.array(self.key, pa.uint64())
        names = [node.name for node in self.nodes]
        types = [node.type for node in self.nodes]
        empty = len(names)  # the dictionaries' last entry: "" (a node's callee)
        name_values = pa.array([*names, ""], pa.string())
        type_values = pa.array([*types, ""], pa.string())

        def part(shift: int, mask: int) -> pa.Array:
            return pc.bit_wise_and(pc.shift_right(key, shift), mask)

        edge = part(6, 1).cast(pa.uint8())
        src = part(_SRC_SHIFT, _NODE_MASK).cast(pa.int32())
        dst = pc.if_else(
            pc.equal(edge, 1), part(_DST_SHIFT, _NODE_MASK).cast(pa.int32()), empty
        ).cast(pa.int32())
        text = pa.DictionaryArray.from_arrays
        return {
            "trace_id": text(pa.array(self.trace, pa.int32()), pa.array(self.traces, pa.string())),
            "phase": part(_PHASE_SHIFT, 3).cast(pa.uint8()),
            "src_name": text(src, name_values),
            "src_type": text(src, type_values),
            "dst_name": text(dst, name_values),
            "dst_type": text(dst, type_values),
            "is_edge": edge,
            "is_root": part(7, 1).cast(pa.uint8()),
            "inferred": part(8, 1).cast(pa.uint8()),
            "start": pa.array(self.start, pa.float64()),
            "end": pa.array(self.end, pa.float64()),
            "bits": part(0, 15).cast(pa.uint8()),
        }


def read_contributions(
    table: pa.Table,
) -> dict[str, tuple[list[Contribution], list[Contribution]]]:
    """A ``contributions`` table (the columns of :class:`ContributionColumns`) back as
    ``{trace_id: (before, after)}``."""
    out: dict[str, tuple[list[Contribution], list[Contribution]]] = {}
    columns = [table.column(name).to_pylist() for name in _CONTRIBUTION_COLUMNS]
    nodes: dict[tuple[str, str], NodeId] = {}  # a few distinct nodes, many rows
    for trace_id, phase, sn, st, dn, dt, edge, root, inferred, start, end, bits in zip(
        *columns, strict=True
    ):
        found = out.get(trace_id)
        before, after = found if found is not None else out.setdefault(trace_id, ([], []))
        node = nodes.get((sn, st))
        if node is None:
            node = nodes[(sn, st)] = NodeId(sn, st)
        callee = None
        if edge:
            callee = nodes.get((dn, dt))
            if callee is None:
                callee = nodes[(dn, dt)] = NodeId(dn, dt)
        item: Contribution = (node, callee, Outcome(start, end, bits), bool(root), bool(inferred))
        if phase == BEFORE:
            before.append(item)
        else:
            after.append(item)
            if phase == AFTER_SAME:
                before.append(item)
    return out


_CONTRIBUTION_COLUMNS: Final = (
    "trace_id", "phase", "src_name", "src_type", "dst_name", "dst_type", "is_edge", "is_root",
    "inferred", "start", "end", "bits",
)  # fmt: skip


class StatsSource(Protocol):
    """Per-minute node and edge statistics as column lists (see ``model.stats``)."""

    def __bool__(self) -> bool: ...

    def node_columns(self) -> dict[str, list[object]]: ...

    def edge_columns(self) -> dict[str, list[object]]: ...


_STORE_ENCODER: Final = encode_details


def _summary_columns() -> SummaryColumns:
    """A batch's summary rows: details encoded by :func:`encode_details` as each row
    ends, and made slim by ingest (only what it keeps: ``encode_slim_details``) - unless
    ``encode_details`` was replaced here (a test writing the layout before)."""
    encode = encode_details
    slim = encode_slim_details if encode is _STORE_ENCODER else None
    return SummaryColumns(encode, BinaryColumn(), slim)


@dataclass(slots=True)
class WriteBatch:
    """Rows for every table, gathered since the last write."""

    spans: SpanColumns = field(default_factory=SpanColumns)
    # a row per trace; details encoded as each row ends (see SummaryColumns), without
    # what the row's columns hold (store.details)
    summaries: SummaryColumns = field(default_factory=_summary_columns)
    stats: StatsSource | None = None  # summed in Python: rows of node_stats / edge_stats
    outcomes: OutcomeRows | None = None  # or the outcomes, summed as encoded (store.outcomes)
    contributions: ContributionColumns | None = None  # while groups are tracked
    documents: int = 0  # how many documents the rows came from (for counting)

    def add_summary(self, ts: int, summary: TraceSummary) -> None:
        """Queue ``summary`` (stored under the trace's epoch ``ts``); ingest appends its
        summaries to ``summaries`` directly."""
        self.summaries.add(ts, summary)

    def __len__(self) -> int:
        return len(self.spans)


class StoredTrace(NamedTuple):
    """A trace as stored: its epoch, latest summary revision and entities (children
    excluded), each with its parent id and whether it is a segment."""

    ts: int
    revision: int
    entities: list[tuple[dict[str, Any], str, bool]]
