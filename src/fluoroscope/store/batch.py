"""What one write carries, column by column, and what a trace reload returns.

Ingest fills a :class:`WriteBatch` in its worker thread and hands it to
:meth:`fluoroscope.store.store.Store.write`; after that the store owns it.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Protocol

import orjson
import pyarrow as pa

from fluoroscope.model.inference import NodeId
from fluoroscope.model.stats import Contribution, Outcome, OutcomeRows
from fluoroscope.model.summarycolumns import SummaryColumns

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from fluoroscope.model.summary import TraceSummary

__all__ = [
    "AFTER", "AFTER_SAME", "BEFORE", "BinaryColumn", "ContributionColumns", "SpanColumns",
    "StatsSource", "StoredTrace", "WriteBatch", "read_contributions",
]  # fmt: skip

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
    of equal length."""

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
    version: list[int] = field(default_factory=list)
    doc: BinaryColumn = field(default_factory=BinaryColumn)

    def __len__(self) -> int:
        return len(self.id)


@dataclass(slots=True)
class ContributionColumns:
    """Per trace a batch changed, what it contributes to the service-graph statistics
    before and after the batch (:meth:`TraceState.contributions`), for the statistics
    of each group the trace counts in; gathered only while groups are tracked."""

    trace_id: list[str] = field(default_factory=list)
    phase: list[int] = field(default_factory=list)  # BEFORE, AFTER or AFTER_SAME
    src_name: list[str] = field(default_factory=list)
    src_type: list[str] = field(default_factory=list)
    dst_name: list[str] = field(default_factory=list)  # "" for a node
    dst_type: list[str] = field(default_factory=list)
    is_edge: list[int] = field(default_factory=list)
    is_root: list[int] = field(default_factory=list)
    inferred: list[int] = field(default_factory=list)
    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    bits: list[int] = field(default_factory=list)

    def add(self, trace_id: str, before: list[Contribution], after: list[Contribution]) -> None:
        """Record one changed trace's contributions before and after the batch."""
        if before == after:
            self._extend(trace_id, AFTER_SAME, after)
        else:
            self._extend(trace_id, BEFORE, before)
            self._extend(trace_id, AFTER, after)

    def _extend(self, trace_id: str, phase: int, items: list[Contribution]) -> None:
        for node, callee, (start, end, bits), root, inferred in items:
            self.trace_id.append(trace_id)
            self.phase.append(phase)
            self.src_name.append(node.name)
            self.src_type.append(node.type)
            self.dst_name.append(callee.name if callee is not None else "")
            self.dst_type.append(callee.type if callee is not None else "")
            self.is_edge.append(0 if callee is None else 1)
            self.is_root.append(int(root))
            self.inferred.append(int(inferred))
            self.start.append(start)
            self.end.append(end)
            self.bits.append(bits)

    def __len__(self) -> int:
        return len(self.trace_id)


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


_CONTRIBUTION_COLUMNS: Final = tuple(ContributionColumns.__dataclass_fields__)


class StatsSource(Protocol):
    """Per-minute node and edge statistics as column lists (see ``model.stats``)."""

    def __bool__(self) -> bool: ...

    def node_columns(self) -> dict[str, list[object]]: ...

    def edge_columns(self) -> dict[str, list[object]]: ...


@dataclass(slots=True)
class WriteBatch:
    """Rows for every table, gathered since the last write."""

    spans: SpanColumns = field(default_factory=SpanColumns)
    # a row per trace; details encoded as each row ends (see SummaryColumns)
    summaries: SummaryColumns = field(
        default_factory=lambda: SummaryColumns(orjson.dumps, BinaryColumn())
    )
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
    entities: list[tuple[Mapping[str, Any], str, bool]]
