"""Stream times (DescribeLogStreams' first/last event, last ingestion, stored bytes)
written by the store itself (migration 20): seen by a read at once, written at most a
second later, recovered by the next process when one was killed before writing them,
and a store whose times a view filled keeps answering after the upgrade."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from fluoroscope.ingest.logwriter import encode
from fluoroscope.store.logs import LogStore
from fluoroscope.store.schema import MIGRATIONS, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests.support import old_schema


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _put(logs: LogStore, stream: str, messages: Sequence[str], at: int) -> None:
    first = logs.reserve_seq(len(messages))
    now = int(time.time() * 1000)
    logs.write(encode([("g", stream, [at + i for i in range(len(messages))],
                        list(messages), 30, now)], first))  # fmt: skip


def _rows(logs: LogStore) -> int:
    found = logs.query(f"SELECT count() FROM `{logs.database}`.log_stream_times")
    return int(found.column(0)[0].as_py())


def test_times_are_read_at_once_and_written_a_second_later(store: Store) -> None:
    clock = _Clock()
    logs = LogStore(store, 30, clock=clock)
    logs.create_group("g")
    logs.create_stream("g", "a")
    t0 = int(time.time() * 1000) - 60_000
    _put(logs, "a", ["one", "three"], t0)
    _put(logs, "a", ["twenty"], t0 + 20)
    assert _rows(logs) == 0  # gathered, not written yet
    clock.now += 1.0
    _put(logs, "a", ["x"], t0 + 30)  # a second passed: written with this insert
    assert _rows(logs) == 1
    _put(logs, "a", ["yy"], t0 + 40)
    stream = logs.get_stream("g", "a")  # a read writes what gathered first
    assert (stream.first_event, stream.last_event) == (t0, t0 + 40)
    assert stream.stored_bytes == sum(map(len, ["one", "three", "twenty", "x", "yy"]))
    assert logs.get_group("g").stored_bytes == stream.stored_bytes


def test_a_killed_process_leaves_its_times_to_the_next(store: Store) -> None:
    first = LogStore(store, 30, clock=_Clock())  # its clock never moves: never writes
    first.create_group("g")
    for name in ("a", "b"):
        first.create_stream("g", name)
    t0 = int(time.time() * 1000) - 60_000
    _put(first, "a", ["1234"], t0)
    assert first.get_stream("g", "a").stored_bytes == 4  # written by the read
    _put(first, "a", ["56"], t0 + 10)
    _put(first, "b", ["789"], t0 + 5)
    assert _rows(first) == 1  # the last two inserts' times were never written
    again = LogStore(store, 30)  # the next process on the same store
    a, b = again.get_stream("g", "a"), again.get_stream("g", "b")
    assert (a.first_event, a.last_event, a.stored_bytes) == (t0, t0 + 10, 6)
    assert (b.first_event, b.last_event, b.stored_bytes) == (t0 + 5, t0 + 5, 3)
    _put(again, "b", ["0"], t0 + 50)
    assert again.get_stream("g", "b").stored_bytes == 4  # counted once each
    assert LogStore(store, 30).get_group("g").stored_bytes == 10


def test_deleted_streams_lose_their_gathered_times(store: Store) -> None:
    logs = LogStore(store, 30, clock=_Clock())
    logs.create_group("g")
    logs.create_stream("g", "a")
    logs.create_stream("g", "b")
    t0 = int(time.time() * 1000) - 60_000
    _put(logs, "a", ["gone"], t0)
    _put(logs, "b", ["kept"], t0)
    logs.delete_stream("g", "a")
    logs.create_stream("g", "a")
    assert logs.get_stream("g", "a").last_event is None
    assert logs.get_stream("g", "b").stored_bytes == 4


def test_a_store_whose_times_a_view_filled_answers_after_the_upgrade(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    db = old_schema(transport, before=20)
    old = LogStore(Store(transport, db), 30)
    old.create_group("g")
    old.create_stream("g", "a")
    t0 = int(time.time() * 1000) - 60_000
    old_bytes = len("filled") + len("by the view")
    rows = encode([("g", "a", [t0, t0 + 1], ["filled", "by the view"], 30, t0)],
                  old.reserve_seq(2))  # fmt: skip
    transport.insert_arrow(f"`{db}`.log_events", rows)  # as the code before 20 did
    views = f"SELECT count() FROM system.tables WHERE database = '{db}' AND name LIKE '%_mv'"
    assert transport.query_arrow(views).column(0)[0].as_py() == 3

    assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 20]
    assert transport.query_arrow(views).column(0)[0].as_py() == 2
    upgraded = LogStore(Store(transport, db), 30)
    stream = upgraded.get_stream("g", "a")
    assert (stream.first_event, stream.last_event) == (t0, t0 + 1)
    assert stream.stored_bytes == old_bytes
    _put(upgraded, "a", ["new"], t0 + 100)
    stream = upgraded.get_stream("g", "a")
    assert (stream.first_event, stream.last_event) == (t0, t0 + 100)
    assert stream.stored_bytes == old_bytes + len("new")  # none counted twice
    again = LogStore(Store(transport, db), 30)
    assert again.get_group("g").stored_bytes == old_bytes + len("new")
