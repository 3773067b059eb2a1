"""The log store's reads of events: a group's events in a window, ordered and paged
(FilterLogEvents, GetLogEvents), one trace's lines through the trace index
(:meth:`LogReads.trace_index`, :meth:`LogReads.trace_lines`, :func:`pointed`), compiled
Logs Insights SQL (:meth:`LogReads.query`), and the log tables' bytes on disk.

Contract: :class:`LogReads` is a part of :class:`~fluoroscope.store.logs.LogStore`, not
used alone (it reads the transport and database the log store sets), and keeps the log
store's contract (:mod:`fluoroscope.store.logs`: blocking, thread-safe,
:class:`~fluoroscope.model.errors.StoreError` when the engine fails, times in epoch
milliseconds, results owned by the caller). Its reads never touch the log store's cached
metadata: they do not check that a group or stream exists. A filter's parameter or
setting name the store does not accept raises ``ValueError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import pyarrow as pa

from fluoroscope.store.logrecords import EventPage, IndexEntry, LogEvent, normalize_trace_id
from fluoroscope.store.transport import Transport

__all__ = ["LogReads", "pointed"]

_SETTING: Final = re.compile(r"[a-z][a-z0-9_]*")


def _ms(column: str) -> str:
    return f"toUnixTimestamp64Milli({column})"


def _settings(settings: Mapping[str, Any] | None) -> str:
    if not settings:
        return ""
    parts = []
    for name, value in settings.items():
        if not _SETTING.fullmatch(name):
            raise ValueError(f"not a setting name: {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValueError(f"setting {name}: unsupported value {value!r}")
        text = (
            repr(value)
            if not isinstance(value, str)
            else "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        )
        parts.append(f"{name} = {text}")
    return " SETTINGS " + ", ".join(parts)


class LogReads:
    """The log store's event reads (see the module docstring)."""

    _t: Transport
    _db: str
    database: str

    def events(
        self,
        group: str,
        *,
        streams: Sequence[str] | None = None,
        stream_prefix: str | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        condition: str | None = None,
        params: Mapping[str, Any] | None = None,
        descending: bool = False,
        after: tuple[int, int] | None = None,
        limit: int = 10_000,
        settings: Mapping[str, Any] | None = None,
    ) -> EventPage:
        """Events of ``group`` (optionally of ``streams`` or of streams starting with
        ``stream_prefix``) with ``start_ms <= timestamp < end_ms``, ordered by
        (timestamp, seq), ascending or ``descending``, after the key ``after``, at most
        ``limit``. ``condition`` is an extra SQL condition over ``log_events`` columns
        (a compiled filter pattern) whose values are bound through ``params``; their
        names must not start with ``ls_`` (the store's own). ``settings``: engine
        settings for the statement (e.g. ``max_execution_time``). Reads only the
        window's partitions and the group's part of the key."""
        values: dict[str, Any] = {"ls_group": group, "ls_limit": int(limit) + 1}
        where = ["log_group = {ls_group:String}"]
        if streams is not None:
            where.append("stream IN {ls_streams:Array(String)}")
            values["ls_streams"] = list(streams)
        if stream_prefix is not None:
            where.append("startsWith(stream, {ls_prefix:String})")
            values["ls_prefix"] = stream_prefix
        if start_ms is not None:
            where.append("ts >= fromUnixTimestamp64Milli({ls_lo:Int64}, 'UTC')")
            values["ls_lo"] = int(start_ms)
        if end_ms is not None:
            where.append("ts < fromUnixTimestamp64Milli({ls_hi:Int64}, 'UTC')")
            values["ls_hi"] = int(end_ms)
        if after is not None:
            sign = "<" if descending else ">"
            where.append(
                f"(ts, seq) {sign} (fromUnixTimestamp64Milli({{ls_at:Int64}}, 'UTC'), "
                "{ls_seq:UInt64})"
            )
            values["ls_at"], values["ls_seq"] = int(after[0]), int(after[1])
        if condition:
            clash = [name for name in params or {} if name.startswith("ls_")]
            if clash:
                raise ValueError(f"filter parameters clash with the store's: {clash}")
            where.append(f"({condition})")
            values.update(params or {})
        direction = "DESC" if descending else "ASC"
        rows = self._t.query_arrow(
            f"SELECT stream, {_ms('ts')} AS t, {_ms('ingest_ts')} AS it, seq, message "
            f"FROM {self._db}.log_events WHERE {' AND '.join(where)} "
            f"ORDER BY ts {direction}, seq {direction} LIMIT {{ls_limit:UInt32}}"
            + _settings(settings),
            values,
        )
        found = [
            LogEvent(group, stream, t, it, seq, message)
            for stream, t, it, seq, message in zip(
                *(rows.column(i).to_pylist() for i in range(5)), strict=True
            )
        ]
        page = found[:limit]
        more = len(found) > limit and page
        return EventPage(page, (page[-1].timestamp, page[-1].seq) if more else None)

    def trace_index(self, trace_id: str, request_ids: Iterable[str] = ()) -> list[IndexEntry]:
        """The trace index's entries (one per stored line) of one trace, unordered: the
        lines carrying its id (X-Ray or W3C form), and every line keyed by a request id
        one of those carries or that ``request_ids`` names (whatever its group or
        stream: callers keep the lines they mean). One statement over ``log_index``,
        which is ordered by key: never a scan of time. The lines themselves are read
        with :func:`pointed`."""
        key = normalize_trace_id(trace_id)
        index = f"{self._db}.log_index"
        rows = self._t.query_arrow(
            f"SELECT key, log_group, stream, request_id, {_ms('ts')}, seq FROM {index} "
            "WHERE key IN (SELECT arrayJoin(arrayConcat([{k:String}], {rk:Array(String)}, "
            f"groupArray(concat('r:', request_id)))) FROM {index} WHERE key = {{k:String}})",
            {"k": key, "rk": sorted({f"r:{rid}" for rid in request_ids if rid})},
        )
        return [
            IndexEntry(*row)
            for row in zip(*(rows.column(i).to_pylist() for i in range(6)), strict=True)
        ]

    def trace_lines(
        self,
        trace_id: str,
        *,
        groups: Iterable[str] | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 10_000,
    ) -> list[LogEvent]:
        """Every stored line of one trace, in (timestamp, seq) order: the lines carrying
        its id (X-Ray or W3C form), and every line of the Lambda invocations (same group,
        stream and request id) one of those names - so an application line that carries
        only its request id is found, whether it arrived before or after its REPORT.
        Read through the ``log_index`` table (ordered by trace and request id), never by
        scanning time; ``groups``/``start_ms``/``end_ms`` only narrow the result."""
        key = normalize_trace_id(trace_id)
        values: dict[str, Any] = {"k": key, "limit": 2 * int(limit)}
        narrow = ""
        if groups is not None:
            narrow += " AND log_group IN {groups:Array(String)}"
            values["groups"] = sorted(set(groups))
        if start_ms is not None:
            narrow += " AND ts >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC')"
            values["lo"] = int(start_ms)
        if end_ms is not None:
            narrow += " AND ts < fromUnixTimestamp64Milli({hi:Int64}, 'UTC')"
            values["hi"] = int(end_ms)
        # One statement, the index read twice: the trace's own lines (key = its id),
        # then every line keyed by a request id one of those carries. A line of another
        # stream or group that happens to reuse such a request id is dropped below.
        # Measured on 500k events: 11-16 ms p50, against 23-27 ms when the engine also
        # matched (group, stream, request id) and 22 ms as three separate statements.
        # Its CPU is steady where the wall clock is not (benchmarks/logs.py, load 5-20
        # on 2 cores): 13.5-16 ms p50 and 21-23 ms p99 of CPU at 1M and 5M events, while
        # the wall p99 ran 64-413 ms - the p99 is the machine's queue, not the reads
        # (each uses the key: 3 of ~1,000 granules of log_events at 1M). Of the CPU
        # (1M events, 30 lookups): the first index read 2.5 ms, with the second 6.5 ms,
        # the events themselves the rest; max_threads=1, no skip indexes, the old
        # analyzer: no better (15.2, 15.2, 15.1 against 14.7 ms).
        index = f"{self._db}.log_index"
        rows = self._t.query_arrow(
            f"SELECT log_group, stream, {_ms('ts')} AS t, {_ms('ingest_ts')} AS it, seq, "
            f"message, trace_id, request_id FROM {self._db}.log_events "
            f"WHERE (log_group, ts, seq) IN (SELECT log_group, ts, seq FROM {index} "
            "WHERE key IN (SELECT arrayJoin([key, concat('r:', request_id)]) "
            f"FROM {index} WHERE key = {{k:String}})){narrow} "
            "ORDER BY ts, seq LIMIT {limit:UInt32}",
            values,
        )
        found = list(zip(*(rows.column(i).to_pylist() for i in range(8)), strict=True))
        invocations = {(g, s, rid) for g, s, _, _, _, _, tid, rid in found if tid == key and rid}
        return [
            LogEvent(g, s, t, it, seq, message, key, rid)
            for g, s, t, it, seq, message, tid, rid in found
            if tid == key or (g, s, rid) in invocations
        ][:limit]

    def query(
        self,
        sql: str,
        params: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> pa.Table:
        """Run compiled Logs Insights SQL (its ``{name:Type}`` values in ``params``) with
        engine ``settings`` (e.g. ``max_execution_time``, ``max_rows_to_read``)."""
        return self._t.query_arrow(sql + _settings(settings), params)

    def disk_bytes(self) -> dict[str, int]:
        """Bytes on disk of each log table's active parts."""
        rows = self._t.query_arrow(
            "SELECT table, sum(bytes_on_disk) FROM system.parts WHERE database = {db:String} "
            "AND active AND startsWith(table, 'log_') GROUP BY table",
            {"db": self.database},
        )
        return dict(zip(*(rows.column(i).to_pylist() for i in range(2)), strict=True))


# Entries closer in time than this are read as one range of the events' key.
_RANGE_GAP_MS: Final = 1_000
_MAX_RANGES: Final = 64


def pointed(entries: Sequence[IndexEntry], params: dict[str, Any], prefix: str = "pt") -> str:
    """A condition over ``log_events`` true for exactly the events ``entries`` point at
    (``seq`` is unique per event), written so that the engine's key analysis reads only
    their granules: their groups, their times as a few ranges (entries less than a second
    apart share one; at most 64), their ``seq`` values. Binds its values into ``params``
    under names starting with ``prefix``. ``entries`` must not be empty."""
    times = sorted({e.timestamp for e in entries})
    ranges: list[list[int]] = [[times[0], times[0]]]
    for at in times[1:]:
        if at - ranges[-1][1] <= _RANGE_GAP_MS:
            ranges[-1][1] = at
        else:
            ranges.append([at, at])
    while len(ranges) > _MAX_RANGES:  # join the two ranges with the smallest gap
        i = min(range(len(ranges) - 1), key=lambda j: ranges[j + 1][0] - ranges[j][1])
        ranges[i : i + 2] = [[ranges[i][0], ranges[i + 1][1]]]
    params[f"{prefix}_g"] = sorted({e.log_group for e in entries})
    params[f"{prefix}_s"] = sorted({e.seq for e in entries})
    spans = []
    for i, (lo, hi) in enumerate(ranges):
        params[f"{prefix}_a{i}"], params[f"{prefix}_b{i}"] = lo, hi
        spans.append(
            f"ts BETWEEN fromUnixTimestamp64Milli({{{prefix}_a{i}:Int64}}, 'UTC') "
            f"AND fromUnixTimestamp64Milli({{{prefix}_b{i}:Int64}}, 'UTC')"
        )
    return (
        f"log_group IN {{{prefix}_g:Array(String)}} AND ({' OR '.join(spans)}) "
        f"AND seq IN {{{prefix}_s:Array(UInt64)}}"
    )
