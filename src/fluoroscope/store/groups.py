"""Groups persisted in the store (table ``groups``, one row version per change).

Contract: blocking, thread-safe (the engine serializes statements); ``Default`` is
never stored (callers handle it). Reads collapse versions; a deletion is a newer
version marked deleted, so history never resurfaces.
"""

from __future__ import annotations

import time

from fluoroscope.model.groups import Group
from fluoroscope.store.transport import Transport

__all__ = ["GroupStore"]

_COLUMNS = "name, filter_expression, insights_enabled, notifications_enabled"


class GroupStore:
    """Create, read, update and delete groups."""

    def __init__(self, transport: Transport, db: str) -> None:
        self._t = transport
        self._db = db

    def put(self, group: Group) -> None:
        """Store ``group`` as the newest version of its name."""
        self._write(group, deleted=False)

    def delete(self, name: str) -> None:
        """Mark the group ``name`` deleted."""
        self._write(Group(name), deleted=True)

    def _write(self, group: Group, *, deleted: bool) -> None:
        self._t.execute(
            f"INSERT INTO {self._db}.groups ({_COLUMNS}, has_filter, deleted, version) VALUES "
            "({name:String}, {filter:String}, {insights:UInt8}, {notify:UInt8}, "
            "{has_filter:UInt8}, {deleted:UInt8}, {version:UInt64})",
            {
                "name": group.name,
                "filter": group.filter_expression or "",
                "insights": int(group.insights_enabled),
                "notify": int(group.notifications_enabled),
                "has_filter": int(group.filter_expression is not None),
                "deleted": int(deleted),
                "version": time.time_ns(),
            },
        )

    def get(self, name: str) -> Group | None:
        """The group ``name``, or None when it does not exist."""
        found = self._read("AND name = {name:String}", {"name": name})
        return found[0] if found else None

    def all(self) -> list[Group]:
        """Every group, by name."""
        return self._read("", {})

    def _read(self, extra: str, params: dict[str, object]) -> list[Group]:
        rows = self._t.query_arrow(
            f"SELECT {_COLUMNS}, has_filter FROM {self._db}.groups FINAL "
            f"WHERE deleted = 0 {extra} ORDER BY name",
            params,
        ).to_pylist()
        return [
            Group(
                r["name"],
                r["filter_expression"] if r["has_filter"] else None,
                bool(r["insights_enabled"]),
                bool(r["notifications_enabled"]),
            )
            for r in rows
        ]
