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

from fluoroscope.store.transport import ChdbTransport, Transport

__all__ = ["GroupStatsStore"]

_STAGING: Final = "traces_staging"


class GroupStatsStore:
    """Tracking records, filter evaluation over new summary rows, stored memberships."""

    def __init__(self, transport: Transport, db: str) -> None:
        self._t = transport
        self._db = db
        self._staged_table = False
        self._columns: dict[str, str] | None = None

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
    ) -> dict[tuple[str, int], int]:
        """For each ``traces`` row in ``rows`` (Arrow, the columns the store writes),
        which conditions (SQL over ``traces`` columns, their parameters) hold:
        ``{(trace_id, revision): mask}``, bit ``k`` set when the ``k``-th does.

        The embedded engine reads the rows the conditions need straight from a memory
        file in the one statement that tests them (:meth:`ChdbTransport.query_arrow_over`);
        otherwise, and when a condition names a column ``rows`` lacks (read as its
        default), they are staged in a scratch table first (three statements, the
        table's every other column filled with its default: measured on a round's 3,641
        rows, 18-24 ms of CPU against 9-14 ms for the one statement)."""
        params: dict[str, Any] = {}
        tests = []
        for k, (sql, bound) in enumerate(conditions):
            tests.append(f"toUInt64(toUInt8(({sql})) != 0) * {1 << k % 64}")
            params.update(bound)
        # a mask of 64 conditions per column: hits, hits1, ...
        masks = [" + ".join(tests[k : k + 64]) for k in range(0, len(tests), 64)] or ["0"]
        text = " ".join(tests)
        types = self._types()
        # Only the columns the conditions name are read (the others, the details JSON
        # among them, would be most of the bytes).
        named = {name for name in types if re.search(rf"\b{re.escape(name)}\b", text)}
        wanted = [
            name for name in rows.column_names if name in ("trace_id", "revision") or name in named
        ]
        columns = ", ".join(f"{m} AS hits{k or ''}" for k, m in enumerate(masks))
        select = f"SELECT trace_id, revision, {columns} FROM "
        if isinstance(self._t, ChdbTransport) and named <= set(wanted):
            structure = ", ".join(f"`{name}` {types[name]}" for name in wanted)
            found = self._t.query_arrow_over(
                select + "{rows}", rows.select(wanted), structure, params
            )
        else:
            found = self._staged(rows.select(wanted), select, params)
        hits: list[int] = found.column("hits").to_pylist()
        for k in range(1, len(masks)):
            more = found.column(f"hits{k}").to_pylist()
            hits = [h | m << (64 * k) for h, m in zip(hits, more, strict=True)]
        pairs = zip(
            found.column("trace_id").to_pylist(), found.column("revision").to_pylist(), strict=True
        )
        return dict(zip(pairs, hits, strict=True))

    def _types(self) -> dict[str, str]:
        """Each ``traces`` column's type in the engine, as migrated now (asked once per
        process)."""
        if self._columns is None:
            found = self._t.query_arrow(
                "SELECT name, type FROM system.columns "
                "WHERE database = {db:String} AND table = 'traces'",
                {"db": self._db.strip("`")},
            )
            self._columns = dict(
                zip(found.column("name").to_pylist(), found.column("type").to_pylist(), strict=True)
            )
        return self._columns

    def _staged(self, rows: pa.Table, select: str, params: Mapping[str, Any]) -> pa.Table:
        """``select`` (ending in FROM) over ``rows`` staged in a scratch table shaped like
        ``traces`` (the columns ``rows`` lacks read as their defaults)."""
        staging = f"{self._db}.{_STAGING}"
        if not self._staged_table:  # the layout of traces as migrated now, once per process
            self._t.execute(f"DROP TABLE IF EXISTS {staging}")
            self._t.execute(f"CREATE TABLE {staging} AS {self._db}.traces ENGINE = Memory")
            self._staged_table = True
        self._t.execute(f"TRUNCATE TABLE {staging}")
        self._t.insert_arrow(staging, rows)
        return self._t.query_arrow(select + staging, params)

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
