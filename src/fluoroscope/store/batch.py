"""What one write carries, column by column, and what a trace reload returns.

Ingest fills a :class:`WriteBatch` in its worker thread and hands it to
:meth:`fluoroscope.store.store.Store.write`; after that the store owns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import orjson

from fluoroscope.model.summarycolumns import SummaryColumns

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fluoroscope.model.summary import TraceSummary

__all__ = ["SpanColumns", "StatsSource", "StoredTrace", "WriteBatch"]


@dataclass(slots=True)
class SpanColumns:
    """One list per column of the ``spans`` table, all of equal length."""

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
    doc: list[bytes] = field(default_factory=list)

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
    summaries: SummaryColumns = field(default_factory=lambda: SummaryColumns(orjson.dumps))
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
