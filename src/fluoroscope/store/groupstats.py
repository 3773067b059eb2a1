"""What per-group statistics need from the engine: which groups are tracked since when,
which new summary rows a group's filter selects, and which groups a stored trace counted in.

Contract: blocking; :meth:`GroupStatsStore.select` is for one thread at a time (it
stages rows in one scratch table), the rest is thread-safe (the engine serializes
statements). The statistics themselves are read through
:meth:`fluoroscope.store.store.Store.stats` (``group_key``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import pyarrow as pa

from fluoroscope.store.transport import Transport

__all__ = ["GroupStatsStore"]

_STAGING: Final = "traces_staging"


class GroupStatsStore:
    """Tracking records, filter evaluation over new summary rows, stored memberships."""

    def __init__(self, transport: Transport, db: str) -> None:
        self._t = transport
        self._db = db
        self._staged = False

    def tracking(self) -> dict[tuple[str, str], float]:
        """``{(group name, filter fingerprint): since}`` of every group whose statistics
        are kept (since ``since``, epoch seconds) and were never interrupted."""
        rows = self._t.query_arrow(
            f"SELECT name, fingerprint, since FROM {self._db}.group_tracking FINAL WHERE active = 1"
        ).to_pylist()
        return {(r["name"], r["fingerprint"]): float(r["since"]) for r in rows}

    def begin(self, name: str, fingerprint: str, since: float) -> None:
        """Record that statistics for group ``name`` with this filter are kept from ``since``."""
        self._record(name, fingerprint, since, active=True)

    def end(self, name: str, fingerprint: str) -> None:
        """Record that they are no longer kept (a later :meth:`begin` starts afresh)."""
        self._record(name, fingerprint, 0.0, active=False)

    def _record(self, name: str, fingerprint: str, since: float, *, active: bool) -> None:
        self._t.execute(
            f"INSERT INTO {self._db}.group_tracking (name, fingerprint, since, active, version) "
            "VALUES ({name:String}, {fp:String}, {since:Float64}, {active:UInt8}, {v:UInt64})",
            {"name": name, "fp": fingerprint, "since": since, "active": int(active),
             "v": time.time_ns()},
        )  # fmt: skip

    def select(
        self, rows: pa.Table, conditions: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> dict[tuple[str, int], list[bool]]:
        """For each ``traces`` row in ``rows`` (Arrow, the columns the store writes),
        whether each condition (SQL over ``traces`` columns, its parameters) holds:
        ``{(trace_id, revision): [bool per condition]}``."""
        staging = f"{self._db}.{_STAGING}"
        if not self._staged:  # the layout of traces as migrated now, once per process
            self._t.execute(f"DROP TABLE IF EXISTS {staging}")
            self._t.execute(f"CREATE TABLE {staging} AS {self._db}.traces ENGINE = Memory")
            self._staged = True
        params: dict[str, Any] = {}
        tests = []
        for sql, bound in conditions:
            tests.append(f"toUInt8(({sql}))")
            params.update(bound)
        # Only the columns the conditions name are staged (the others, the details JSON
        # among them, would be most of the bytes); the rest read as their defaults.
        text = " ".join(tests)
        wanted = [
            name
            for name in rows.column_names
            if name in ("trace_id", "revision") or re.search(rf"\b{re.escape(name)}\b", text)
        ]
        self._t.execute(f"TRUNCATE TABLE {staging}")
        self._t.insert_arrow(staging, rows.select(wanted))
        found = self._t.query_arrow(
            f"SELECT trace_id, revision, [{', '.join(tests)}] AS hits FROM {staging}", params
        ).to_pylist()
        return {(r["trace_id"], r["revision"]): [bool(h) for h in r["hits"]] for r in found}

    def counted_in(self, traces: Iterable[tuple[int, str]]) -> dict[str, list[str]]:
        """The groups each stored trace ``(ts, trace_id)`` counted in as of its latest
        stored revision (``traces.groups``); traces not stored are absent."""
        pairs = sorted(set(traces))
        if not pairs:
            return {}
        rows = self._t.query_arrow(
            "SELECT trace_id, argMax(groups, revision) AS groups "
            f"FROM {self._db}.traces "
            "WHERE ts IN {ts:Array(UInt32)} AND trace_id IN {ids:Array(String)} "
            "GROUP BY trace_id",
            {"ts": sorted({ts for ts, _ in pairs}), "ids": [tid for _, tid in pairs]},
        ).to_pylist()
        return {r["trace_id"]: list(r["groups"]) for r in rows}
