"""What the store's parts share: the transport and database they run on, and what the
engine and the schema offer, each asked of the engine once.

Contract: :class:`StoreBase` is the base of :class:`~fluoroscope.store.store.Store` and
of the reads it is made of (:class:`~fluoroscope.store.summaryreads.SummaryReads`,
:class:`~fluoroscope.store.statsreads.StatsReads`), not used alone; its methods keep the
store's contract (:mod:`fluoroscope.store.store`: blocking, safe from several threads,
:class:`~fluoroscope.model.errors.StoreError` when the engine fails). What the engine or
the schema offers is asked once and kept for the object's life (two threads asking at
once may both ask the engine, and get the same answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import pyarrow as pa

from fluoroscope.model.errors import StoreError
from fluoroscope.store.tracestats import FAST_ANALYZER
from fluoroscope.store.transport import Transport

__all__ = ["StoreBase"]

_WINDOW_SLACK: Final = 3600  # a trace's id epoch may precede or follow its first segment


class StoreBase:
    """The transport, the database, and what the engine and the schema offer (see the
    module docstring)."""

    def __init__(self, transport: Transport, database: str) -> None:
        self._t = transport
        self.database = database
        self._db = f"`{database}`"
        self._old_analyzer = True  # until the engine says it has no such setting
        self._rollup: bool | None = None  # graph_stats exists (asked once)
        self._group_graph: bool | None = None  # group_graph_stats exists (asked once)

    def _query_old_analyzer(
        self, sql: str, params: Mapping[str, Any], settings: str = ""
    ) -> pa.Table:
        """``sql`` planned by the engine's previous query analyzer, which plans the
        statements sent here much faster; an engine without that setting (a ClickHouse
        server before 24.3) runs it as is, and is not asked again. ``settings``: more
        ``name = value`` settings for the statement, comma-separated."""
        if self._old_analyzer:
            try:
                return self._t.query_arrow(
                    sql + FAST_ANALYZER + (f", {settings}" if settings else ""), params
                )
            except StoreError as exc:
                if "enable_analyzer" not in str(exc):
                    raise
                self._old_analyzer = False
        return self._t.query_arrow(sql + (f" SETTINGS {settings}" if settings else ""), params)

    def _has_rollup(self) -> bool:
        """Whether the schema has ``graph_stats`` (migration 23), asked once: a store
        opened by :meth:`~fluoroscope.store.store.Store.open` always has it; one made on
        a database an older release laid out (not migrated) writes and reads the graph
        as that release did."""
        if self._rollup is None:
            self._rollup = self._has_table("graph_stats")
        return self._rollup

    def _has_group_graph(self) -> bool:
        """Whether the schema has ``group_graph_stats`` (migration 28), asked once, as
        :meth:`_has_rollup` asks for ``graph_stats``."""
        if self._group_graph is None:
            self._group_graph = self._has_table("group_graph_stats")
        return self._group_graph

    def _has_table(self, name: str) -> bool:
        found = self._t.query_arrow(
            "SELECT count() FROM system.tables WHERE database = {db:String} "
            "AND name = {name:String}",
            {"db": self.database, "name": name},
        )
        return bool(found.column(0)[0].as_py())
