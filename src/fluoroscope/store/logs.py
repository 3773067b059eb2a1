"""The log store: CloudWatch Logs groups, streams and events in the ClickHouse engine.

Tables are those of schema migration 10 (see store/schema.py). :class:`LogStore` works
on the same transport and database as the server's :class:`~fluoroscope.store.store.Store`
(embedded chDB or ``clickhouse://``).

Contract (every method): blocking, so call it from a worker thread, never the event loop;
thread-safe; raises :class:`~fluoroscope.model.errors.StoreError` when the engine fails,
and the typed errors below for the documented cases, each carrying CloudWatch Logs'
message (the API maps :class:`LogGroupNotFound`/:class:`LogStreamNotFound` to
``ResourceNotFoundException`` and :class:`LogGroupExists`/:class:`LogStreamExists` to
``ResourceAlreadyExistsException``). Times are epoch milliseconds. Reads return new
objects owned by the caller.

Metadata (groups and stream names) is read once into this object and kept current by
its own writes, so PutLogEvents' checks (:meth:`LogStore.check_stream`) never wait for
the engine: one server process writes a database's log metadata.

Pagination: :meth:`LogStore.describe_groups` and :meth:`LogStore.describe_streams` return
a :class:`Page` whose ``next_key`` (an opaque string, None when done) is passed back as
``after``; :meth:`LogStore.events` returns an :class:`EventPage` whose ``next_key`` is the
``(timestamp, seq)`` of the last event returned (None when no event follows), passed
back as ``after``. ``seq`` is unique per event and increases in arrival order (the API's
``eventId`` and tokens are made from it).

Retention: each group's retention (its policy, else the server's ``--retention-days``)
is written on each event row (``retention_days``, the row's TTL). PutRetentionPolicy
rewrites it with a mutation on the rows already stored (``wait=False``: in the
background, as CloudWatch Logs also deletes expired events some time after they expire).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import orjson
import pyarrow as pa

from fluoroscope.model.errors import InvalidRequest, StoreError, StoreUnwritable
from fluoroscope.store.logreads import LogReads, _ms, pointed
from fluoroscope.store.logrecords import (
    EVENT_SCHEMA,
    EventPage,
    IndexEntry,
    LogEvent,
    LogGroup,
    LogGroupExists,
    LogGroupNotFound,
    LogStream,
    LogStreamExists,
    LogStreamNotFound,
    Page,
    ResourceExists,
    normalize_trace_id,
)
from fluoroscope.store.store import Store
from fluoroscope.store.streamtimes import StreamTimes
from fluoroscope.store.transport import Transport

__all__ = [
    "EVENT_SCHEMA",
    "EventPage",
    "IndexEntry",
    "LogEvent",
    "LogGroup",
    "LogGroupExists",
    "LogGroupNotFound",
    "LogStore",
    "LogStream",
    "LogStreamExists",
    "LogStreamNotFound",
    "Page",
    "ResourceExists",
    "normalize_trace_id",
    "pointed",
]


_LOG_TABLES: Final = ("log_events", "log_index", "log_requests")  # rows with retention_days


class LogStore(LogReads):
    """See the module docstring. ``default_retention_days``: the server's
    ``--retention-days``, for groups without a retention policy; ``clock``: monotonic
    seconds, which time the writes of the stream times (:mod:`fluoroscope.store.streamtimes`).
    Groups, streams and the events' writes are here; the events' reads are
    :class:`~fluoroscope.store.logreads.LogReads`'."""

    def __init__(
        self,
        store: Store,
        default_retention_days: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._t: Transport = store.transport
        self.database = store.database
        self._db = f"`{store.database}`"
        self.default_retention_days = int(default_retention_days)
        self._lock = threading.RLock()
        self._groups: dict[str, LogGroup] | None = None
        self._streams: set[tuple[str, str]] = set()
        self._seq_lock = threading.Lock()
        self._next_seq = 0
        self._times = StreamTimes(self._t, self._db, clock)

    # -- groups ----------------------------------------------------------------------

    def _load_groups(self) -> dict[str, LogGroup]:
        if self._groups is None:
            rows = self._t.query_arrow(
                "SELECT name, creation_time, retention_days, log_group_class, kms_key_id, tags "
                f"FROM {self._db}.log_groups FINAL WHERE deleted = 0"
            ).to_pylist()
            self._groups = {
                r["name"]: LogGroup(
                    r["name"],
                    r["creation_time"],
                    r["retention_days"] or None,
                    r["log_group_class"],
                    r["kms_key_id"],
                    orjson.loads(r["tags"] or "{}"),
                )
                for r in rows
            }
            streams = self._t.query_arrow(
                f"SELECT log_group, name FROM {self._db}.log_streams FINAL WHERE deleted = 0"
            )
            self._streams = set(
                zip(*(streams.column(i).to_pylist() for i in range(2)), strict=True)
            )
        return self._groups

    def _put_group(self, group: LogGroup, *, deleted: bool = False) -> None:
        self._t.execute(
            f"INSERT INTO {self._db}.log_groups (name, creation_time, retention_days, "
            "log_group_class, kms_key_id, tags, deleted, version) VALUES ({n:String}, "
            "{c:Int64}, {r:UInt16}, {k:String}, {kms:String}, {tags:String}, {d:UInt8}, "
            "{v:UInt64})",
            {
                "n": group.name, "c": group.creation_time, "r": group.retention_days or 0,
                "k": group.log_group_class, "kms": group.kms_key_id,
                "tags": orjson.dumps(group.tags).decode(), "d": int(deleted), "v": time.time_ns(),
            },
        )  # fmt: skip

    def create_group(
        self,
        name: str,
        *,
        tags: Mapping[str, str] | None = None,
        log_group_class: str = "STANDARD",
        kms_key_id: str = "",
        now_ms: int | None = None,
    ) -> LogGroup:
        """Create the group ``name`` (names are validated by the caller); raises
        LogGroupExists."""
        with self._lock:
            groups = self._load_groups()
            if name in groups:
                raise LogGroupExists(name)
            created = int(time.time() * 1000) if now_ms is None else now_ms
            group = LogGroup(name, created, None, log_group_class, kms_key_id, dict(tags or {}))
            self._put_group(group)
            groups[name] = group
            return group

    def get_group(self, name: str) -> LogGroup:
        """The group ``name`` (``stored_bytes`` filled); raises LogGroupNotFound."""
        group = self.group(name)
        sizes = self._stored_bytes([name])
        return _with_bytes(group, sizes.get(name, 0))

    def group(self, name: str) -> LogGroup:
        """The group ``name`` from the cache (no engine round trip; ``stored_bytes`` 0);
        raises LogGroupNotFound. What PutLogEvents checks on each call."""
        with self._lock:
            group = self._load_groups().get(name)
        if group is None:
            raise LogGroupNotFound(name)
        return group

    def retention_days(self, name: str) -> int:
        """The retention the group's events are written with: its policy, else the
        server's default. Raises LogGroupNotFound."""
        return self.group(name).retention_days or self.default_retention_days

    def delete_group(self, name: str) -> None:
        """Delete the group, its streams and all its events; raises LogGroupNotFound."""
        with self._lock:
            group = self.group(name)
            self._put_group(group, deleted=True)
            assert self._groups is not None
            del self._groups[name]
            self._streams = {s for s in self._streams if s[0] != name}
            self._t.execute(
                f"INSERT INTO {self._db}.log_streams (log_group, name, creation_time, deleted, "
                f"version) SELECT log_group, name, creation_time, 1, {{v:UInt64}} "
                f"FROM {self._db}.log_streams FINAL WHERE log_group = {{g:String}} AND deleted = 0",
                {"g": name, "v": time.time_ns()},
            )
        # The events go outside the lock, so that PutLogEvents calls (which check their
        # stream under it) go on meanwhile. A limit: a group re-created and written to
        # before these deletes finish loses those first events too.
        self._times.forget(name)
        for table in (*_LOG_TABLES, "log_stream_times"):
            self._delete(table, "log_group = {g:String}", {"g": name})

    def describe_groups(
        self,
        *,
        prefix: str | None = None,
        pattern: str | None = None,
        names: Sequence[str] | None = None,
        log_group_class: str | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> Page:
        """Groups sorted by name (byte order): with ``prefix`` those whose name starts
        with it, with ``pattern`` those containing it (case-sensitive), with ``names``
        only those. ``after``: a previous page's ``next_key``."""
        with self._lock:
            groups = sorted(self._load_groups().values(), key=lambda g: g.name.encode())
        chosen = [
            g
            for g in groups
            if (prefix is None or g.name.startswith(prefix))
            and (pattern is None or pattern in g.name)
            and (names is None or g.name in names)
            and (log_group_class is None or g.log_group_class == log_group_class)
            and (after is None or g.name.encode() > after.encode())
        ]
        page, more = chosen[:limit], len(chosen) > limit
        sizes = self._stored_bytes([g.name for g in page])
        items = [_with_bytes(g, sizes.get(g.name, 0)) for g in page]
        return Page(items, page[-1].name if more and page else None)

    def _stored_bytes(self, groups: Sequence[str]) -> dict[str, int]:
        if not groups:
            return {}
        self._times.flush()
        rows = self._t.query_arrow(
            f"SELECT log_group, sum(bytes) FROM {self._db}.log_stream_times "
            "WHERE log_group IN {g:Array(String)} GROUP BY log_group",
            {"g": list(groups)},
        )
        return dict(zip(*(rows.column(i).to_pylist() for i in range(2)), strict=True))

    def put_retention(self, name: str, days: int, *, wait: bool = False) -> None:
        """Set the group's retention policy to ``days`` (a CloudWatch ``Days`` value,
        checked by the caller) and rewrite its stored events' TTL (``wait``: until done);
        raises LogGroupNotFound."""
        self._set_retention(name, int(days), wait=wait)

    def delete_retention(self, name: str, *, wait: bool = False) -> None:
        """Remove the group's retention policy: its events go back to the server's
        default retention. Raises LogGroupNotFound."""
        self._set_retention(name, None, wait=wait)

    def _set_retention(self, name: str, days: int | None, *, wait: bool) -> None:
        with self._lock:
            group = self.group(name)
            updated = LogGroup(
                group.name, group.creation_time, days, group.log_group_class,
                group.kms_key_id, group.tags,
            )  # fmt: skip
            self._put_group(updated)
            assert self._groups is not None
            self._groups[name] = updated
        self._rewrite_retention([name], days or self.default_retention_days, wait=wait)

    def _rewrite_retention(self, groups: Sequence[str], days: int, *, wait: bool) -> None:
        for table in _LOG_TABLES:
            self._t.execute(
                f"ALTER TABLE {self._db}.{table} UPDATE retention_days = {{d:UInt16}} "
                "WHERE log_group IN {g:Array(String)} AND retention_days != {d:UInt16}"
                + (" SETTINGS mutations_sync = 1" if wait else ""),
                {"d": days, "g": list(groups)},
            )

    def apply_default_retention(self, *, wait: bool = False) -> list[str]:
        """Give the stored events of groups without a policy the current default
        retention (after the server's ``--retention-days`` changed); returns the groups
        whose events needed it. Reads one small column of every event."""
        with self._lock:
            plain = [g.name for g in self._load_groups().values() if g.retention_days is None]
        if not plain:
            return []
        stale = (
            self._t.query_arrow(
                f"SELECT DISTINCT log_group FROM {self._db}.log_events "
                "WHERE log_group IN {g:Array(String)} AND retention_days != {d:UInt16}",
                {"g": plain, "d": self.default_retention_days},
            )
            .column(0)
            .to_pylist()
        )
        if stale:
            self._rewrite_retention(stale, self.default_retention_days, wait=wait)
        return sorted(stale)

    # -- streams ---------------------------------------------------------------------

    def create_stream(self, group: str, name: str, *, now_ms: int | None = None) -> None:
        """Create the stream; raises LogGroupNotFound, LogStreamExists."""
        with self._lock:
            self.group(group)
            if self._stream_exists(group, name):
                raise LogStreamExists(name)
            created = int(time.time() * 1000) if now_ms is None else now_ms
            self._put_stream(group, name, created, deleted=False)
            self._streams.add((group, name))

    def _put_stream(self, group: str, name: str, created: int, *, deleted: bool) -> None:
        self._t.execute(
            f"INSERT INTO {self._db}.log_streams (log_group, name, creation_time, deleted, "
            "version) VALUES ({g:String}, {n:String}, {c:Int64}, {d:UInt8}, {v:UInt64})",
            {"g": group, "n": name, "c": created, "d": int(deleted), "v": time.time_ns()},
        )

    def _stream_exists(self, group: str, name: str) -> bool:
        self._load_groups()  # loads the streams too
        return (group, name) in self._streams

    def check_stream(self, group: str, name: str) -> LogGroup:
        """The group, after checking the stream exists (cached: no engine round trip once
        seen): what PutLogEvents asks. Raises LogGroupNotFound, LogStreamNotFound."""
        found = self.group(group)
        with self._lock:
            if not self._stream_exists(group, name):
                raise LogStreamNotFound(name)
        return found

    def cached_stream(self, group: str, name: str) -> LogGroup | None:
        """:meth:`check_stream`'s group when the cache answers at once: loaded, not
        being changed right now (its lock free), holding the stream. None otherwise
        (then :meth:`check_stream` answers, or raises its precise error). Never blocks
        and never reaches the engine, so an event loop may call it."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._groups is None or (group, name) not in self._streams:
                return None
            return self._groups.get(group)
        finally:
            self._lock.release()

    def delete_stream(self, group: str, name: str) -> None:
        """Delete the stream and its events; raises LogGroupNotFound, LogStreamNotFound."""
        with self._lock:
            self.check_stream(group, name)
            self._put_stream(group, name, 0, deleted=True)
            self._streams.discard((group, name))
        where = "log_group = {g:String} AND stream = {n:String}"
        self._times.forget(group, name)
        for table in (*_LOG_TABLES, "log_stream_times"):
            self._delete(table, where, {"g": group, "n": name})

    def _delete(self, table: str, where: str, params: Mapping[str, Any]) -> None:
        """Delete rows now: a lightweight delete (rows hidden at once, space freed by
        merges), or on a ClickHouse server without it (before 23.3) a mutation waited for."""
        try:
            self._t.execute(f"DELETE FROM {self._db}.{table} WHERE {where}", params)
        except StoreUnwritable:
            raise
        except StoreError:
            self._t.execute(
                f"ALTER TABLE {self._db}.{table} DELETE WHERE {where} SETTINGS mutations_sync = 1",
                params,
            )

    def get_stream(self, group: str, name: str) -> LogStream:
        """One stream with its event times; raises LogGroupNotFound, LogStreamNotFound."""
        page = self.describe_streams(group, names=[name], limit=1)
        if not page.items:
            raise LogStreamNotFound(name)
        stream: LogStream = page.items[0]
        return stream

    def describe_streams(
        self,
        group: str,
        *,
        prefix: str | None = None,
        names: Sequence[str] | None = None,
        order_by: str = "LogStreamName",
        descending: bool = False,
        after: str | None = None,
        limit: int = 50,
    ) -> Page:
        """The group's streams ordered by name, or with ``order_by="LastEventTime"`` by
        last event timestamp (then name; streams without events first), ascending or
        ``descending``. Raises LogGroupNotFound."""
        self.group(group)
        last = "ifNull(t.last_event, 0)"
        if order_by == "LastEventTime":
            key = f"({last}, s.name)"
            after_cond = "({last_k:Int64}, {name_k:String})"
        elif order_by == "LogStreamName":
            key, after_cond = "s.name", "{name_k:String}"
        else:
            raise InvalidRequest(f"orderBy must be LogStreamName or LastEventTime: {order_by!r}")
        params: dict[str, Any] = {"g": group, "limit": int(limit) + 1}
        inner = ["log_group = {g:String}", "deleted = 0"]  # on the streams alone
        conditions = ["1"]
        if prefix is not None:
            inner.append("startsWith(name, {prefix:String})")
            params["prefix"] = prefix
        if names is not None:
            inner.append("name IN {names:Array(String)}")
            params["names"] = list(names)
        if after is not None:
            last_k, name_k = orjson.loads(after)
            params["last_k"], params["name_k"] = int(last_k), str(name_k)
            conditions.append(f"{key} {'<' if descending else '>'} {after_cond}")
        direction = "DESC" if descending else "ASC"
        self._times.flush()
        rows = self._t.query_arrow(
            "SELECT s.name AS name, s.creation_time AS created, t.first_event AS first, "
            f"t.last_event AS last, t.last_ingestion AS ingestion, ifNull(t.bytes, 0) AS bytes "
            f"FROM (SELECT name, creation_time FROM {self._db}.log_streams FINAL "
            f"WHERE {' AND '.join(inner)}) AS s "
            f"LEFT JOIN (SELECT stream, {_ms('min(first_event)')} AS first_event, "
            f"{_ms('max(last_event)')} AS last_event, "
            f"{_ms('max(last_ingestion)')} AS last_ingestion, sum(bytes) AS bytes "
            f"FROM {self._db}.log_stream_times WHERE log_group = {{g:String}} GROUP BY stream) "
            f"AS t ON t.stream = s.name WHERE {' AND '.join(conditions)} "
            f"ORDER BY {key} {direction} LIMIT {{limit:UInt32}} "
            "SETTINGS join_use_nulls = 1, query_plan_filter_push_down = 0",
            params,
        ).to_pylist()
        streams = [
            LogStream(
                group, r["name"], r["created"], r["first"], r["last"], r["ingestion"], r["bytes"]
            )
            for r in rows
        ]
        page, more = streams[:limit], len(streams) > limit
        next_key = None
        if more and page:
            tail = page[-1]
            next_key = orjson.dumps([tail.last_event or 0, tail.name]).decode()
        return Page(page, next_key)

    # -- events ----------------------------------------------------------------------

    def reserve_seq(self, count: int) -> int:
        """The first of ``count`` new consecutive ``seq`` values, above every value
        given before (in this process, and by earlier processes: the counter starts
        above the stored maximum and above the clock in milliseconds times 4096)."""
        with self._seq_lock:
            if not self._next_seq:
                stored = self._t.query_arrow(f"SELECT max(seq) FROM {self._db}.log_events")
                highest = stored.column(0)[0].as_py() or 0
                self._next_seq = max(int(highest) + 1, int(time.time() * 1000) << 12)
            first = self._next_seq
            self._next_seq += count
            return first

    def write(self, rows: pa.Table, *, write_times: bool = True) -> None:
        """Append events whose columns are :data:`EVENT_SCHEMA`'s (ingest's encoding
        makes them); returns once they are durable. The engine fills the trace index and
        ``log_requests`` from them; the stream times are gathered here and written at
        most a second later, before any read of them (:mod:`~fluoroscope.store.streamtimes`).
        With ``write_times`` false, the times gathered are written by the caller's next
        :meth:`write_times_due` instead (so that the events' writer answers first).
        Called by one thread at a time (the writer's inserter), in ``seq`` order."""
        self._times.recover()
        self._t.insert_arrow(f"{self._db}.log_events", rows)
        self._times.note(rows, write=write_times)

    def write_times_due(self) -> None:
        """Write the stream times gathered if a second has passed since their last
        write (never raises; see :meth:`write`)."""
        self._times.write_due()

    def flush(self) -> None:
        """Write the stream times gathered so far (the writer calls it when it stops)."""
        self._times.flush()


def _with_bytes(group: LogGroup, stored: int) -> LogGroup:
    return LogGroup(
        group.name, group.creation_time, group.retention_days, group.log_group_class,
        group.kms_key_id, group.tags, int(stored),
    )  # fmt: skip
