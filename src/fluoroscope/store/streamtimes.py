"""Each log stream's event times and sizes, kept by the store's writer itself.

``log_stream_times`` (schema migration 10) holds per stream the first and last event
timestamps, the last ingestion time, the events and their message bytes, as partial
aggregates (read with min/max/sum ... GROUP BY). A materialized view filled it until
migration 20; now :class:`StreamTimes` aggregates each insert in this process and writes
what gathered at most once a second, and at once before anything reads the table.

Why: the view cost each PutLogEvents insert a third part (10 files, then the merges of
those tiny parts) and its own pipeline, against one small insert a second here.
Measured (inserts of the API benchmark's ~200-byte events into ``log_events``, embedded
engine, the other views kept, CPU of the process per insert, best of 5, interleaved,
load 7-8): 1,000 events 28.3 -> 27.5 ms, 12,000 events 58.6 -> 55.1 ms; a first,
single pass (load 5-8) had shown 30.4 -> 24.8 and 54.5 -> 43.9 ms. A modest gain:
most of an insert's fixed cost is the event table's own part and the trace index's.

Contract:

* :meth:`StreamTimes.note` is called by the one thread that inserts events, right after
  an insert of ``log_events`` returned (so once PutLogEvents answers, its events are
  counted here); cheap (Arrow group-by over the insert, no engine call unless a second
  has passed since the last write, then one small insert). Never raises: a failed write
  keeps the aggregates for the next one (logged). With ``write=False`` it only gathers,
  and that thread calls :meth:`StreamTimes.write_due` once the insert's callers are
  answered: the small insert (~20-40 ms on this machine) then runs while they send
  their next calls instead of before their answers.
* :meth:`StreamTimes.flush` writes what gathered (blocking; raises
  :class:`~fluoroscope.model.errors.StoreError`); every reader of ``log_stream_times``
  calls it first, so a read sees every event stored before it.
* :meth:`StreamTimes.recover` runs before the process's first insert of events (see
  crash safety).
* :meth:`StreamTimes.forget` drops what gathered for a group (or one of its streams)
  before their rows are deleted.
* Crash safety: each written row carries ``through_seq``, the highest ``seq`` its
  aggregates cover (inserts are made in ``seq`` order, by one thread). The first call
  after start aggregates the events above the stored ``through_seq`` (what a killed
  process had not written yet) from ``log_events`` itself. A store the view filled
  (``through_seq`` 0 everywhere) counts as covered up to its highest ``seq``, written
  down as a row for group ``''`` (no group has that name); a process killed within a
  second of its first inserts after the upgrade leaves those few events uncounted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from fluoroscope.model.errors import StoreError
from fluoroscope.store.transport import Transport

__all__ = ["FLUSH_SECONDS", "StreamTimes"]

log = logging.getLogger("fluoroscope.store")

FLUSH_SECONDS: Final = 1.0
"""Longest the gathered stream times wait before they are written."""

_MS: Final = pa.timestamp("ms", tz="UTC")
_SCHEMA: Final = pa.schema(
    [
        ("log_group", pa.string()),
        ("stream", pa.string()),
        ("first_event", _MS),
        ("last_event", _MS),
        ("last_ingestion", _MS),
        ("events", pa.uint64()),
        ("bytes", pa.uint64()),
        ("through_seq", pa.uint64()),
    ]
)


class StreamTimes:
    """See the module docstring. ``db``: the quoted database name; ``clock``: monotonic
    seconds (injected by tests)."""

    def __init__(
        self, transport: Transport, db: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._t = transport
        self._db = db
        self._clock = clock
        self._lock = threading.Lock()  # guards the gathered aggregates
        self._writing = threading.Lock()  # one write (or recovery) at a time
        # (group, stream) -> [first ms, last ms, last ingestion ms, events, bytes]
        self._gathered: dict[tuple[str, str], list[int]] = {}
        self._through = 0  # the highest seq gathered
        self._written = clock()
        self._recovered = False

    def note(self, rows: pa.Table, *, write: bool = True) -> None:
        """Add an insert's rows (``log_events`` columns) to what gathered; write it all
        when a second has passed since the last write (unless ``write`` is false: then
        the caller calls :meth:`write_due` later, e.g. once the insert's callers have
        their answers, so that this write does not delay them)."""
        if not rows.num_rows:
            return
        table = pa.table(
            {
                "g": rows.column("log_group"),
                "s": rows.column("stream"),
                "t": rows.column("ts").cast(pa.int64()),
                "i": rows.column("ingest_ts").cast(pa.int64()),
                "b": pc.binary_length(rows.column("message")),
            }
        )
        found = table.group_by(["g", "s"]).aggregate(
            [("t", "min"), ("t", "max"), ("i", "max"), ("b", "count"), ("b", "sum")]
        )
        through = int(pc.max(rows.column("seq")).as_py() or 0)
        names = ("g", "s", "t_min", "t_max", "i_max", "b_count", "b_sum")
        columns = [found.column(name).to_pylist() for name in names]
        with self._lock:
            for group, stream, *value in zip(*columns, strict=True):
                _merge(self._gathered, (group, stream), value)
            self._through = max(self._through, through)
        if write:
            self.write_due()

    def write_due(self) -> None:
        """Write what gathered if a second has passed since the last write; never
        raises (a failed write keeps the aggregates for the next one, logged)."""
        with self._lock:
            due = self._clock() - self._written >= FLUSH_SECONDS
        if due:
            try:
                self.flush()
            except StoreError as exc:
                log.warning("log stream times not written yet (kept for the next try): %s", exc)

    def flush(self) -> None:
        """Write what gathered (after recovering what a previous process left unwritten,
        the first time). Raises StoreError; what was not written stays gathered."""
        with self._writing:
            self._recover()
            with self._lock:
                gathered, through = self._gathered, self._through
                self._gathered = {}
                self._written = self._clock()
            if not gathered:
                return
            try:
                self._t.insert_arrow(f"{self._db}.log_stream_times", _table(gathered, through))
            except StoreError:
                with self._lock:  # back, merged with what gathered meanwhile
                    for key, value in gathered.items():
                        _merge(self._gathered, key, value)
                raise

    def forget(self, group: str, stream: str | None = None) -> None:
        """Drop what gathered for ``group`` (or only its ``stream``), waiting for a write
        under way, so that the caller's delete of their rows comes after it."""
        with self._writing, self._lock:
            for key in [k for k in self._gathered if k[0] == group]:
                if stream is None or key[1] == stream:
                    del self._gathered[key]

    def recover(self) -> None:
        """What :meth:`_recover` does, once; the store calls it before its first insert of
        events (blocking; raises StoreError)."""
        if not self._recovered:
            with self._writing:
                self._recover()

    def _recover(self) -> None:
        """Once: aggregate the events a previous process stored but did not write the
        times of (``seq`` above every row's ``through_seq``). Called under ``_writing``."""
        if self._recovered:
            return
        stored = self._t.query_arrow(
            f"SELECT max(through_seq), count() FROM {self._db}.log_stream_times"
        )
        through, rows = (int(stored.column(i)[0].as_py() or 0) for i in range(2))
        if not through and rows:  # filled by the view before migration 20: all counted
            self._t.execute(
                f"INSERT INTO {self._db}.log_stream_times (log_group, stream, through_seq) "
                f"SELECT '', '', max(seq) FROM {self._db}.log_events"
            )
        else:
            self._t.execute(
                f"INSERT INTO {self._db}.log_stream_times (log_group, stream, first_event, "
                "last_event, last_ingestion, events, bytes, through_seq) "
                "SELECT log_group, stream, min(ts), max(ts), max(ingest_ts), count(), "
                f"sum(length(message)), max(seq) FROM {self._db}.log_events "
                "WHERE seq > {s:UInt64} GROUP BY log_group, stream",
                {"s": through},
            )
        self._recovered = True


def _merge(
    gathered: dict[tuple[str, str], list[int]], key: tuple[str, str], value: list[int]
) -> None:
    """Add one stream's aggregates ``value`` ([first ms, last ms, last ingestion ms,
    events, bytes]) to ``gathered`` (``value`` may become its entry)."""
    known = gathered.get(key)
    if known is None:
        gathered[key] = value
        return
    known[0] = min(known[0], value[0])
    known[1] = max(known[1], value[1])
    known[2] = max(known[2], value[2])
    known[3] += value[3]
    known[4] += value[4]


def _table(gathered: dict[tuple[str, str], list[int]], through: int) -> pa.Table:
    keys = list(gathered)
    values = list(gathered.values())

    def column(index: int, kind: pa.DataType) -> pa.Array:
        return pa.array([v[index] for v in values], pa.int64()).cast(kind)

    return pa.Table.from_arrays(
        [
            pa.array([k[0] for k in keys], pa.string()),
            pa.array([k[1] for k in keys], pa.string()),
            column(0, _MS),
            column(1, _MS),
            column(2, _MS),
            column(3, pa.uint64()),
            column(4, pa.uint64()),
            pa.array([through] * len(keys), pa.uint64()),
        ],
        schema=_SCHEMA,
    )
