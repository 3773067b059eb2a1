"""What one write carries, column by column, and what a trace reload returns.

Ingest fills a :class:`WriteBatch` in its worker thread and hands it to
:meth:`fluoroscope.store.store.Store.write`; after that the store owns it.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import orjson
import pyarrow as pa

from fluoroscope.model.summarycolumns import SummaryColumns

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fluoroscope.model.summary import TraceSummary

__all__ = ["BinaryColumn", "SpanColumns", "StatsSource", "StoredTrace", "WriteBatch"]


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
    stats: StatsSource | None = None
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
