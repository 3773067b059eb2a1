"""Pages of summaries read in slices of their window (store/slices.py) hold exactly the rows
one statement over the whole window gives, in the same order, on the real engine - with
granules skipped by the start-time index (migration 25), ties, tokens, and a trace whose
newer revision moved its start time from the top of the window to the bottom."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.store import slices
from fluoroscope.store.schema import migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import Transport
from tests.support import old_schema, wait_for

ROWS = 30_000  # > 3 granules of 8192 rows: slices skip granules
HOUR = 3600.0
MOVED = 29_973  # near the top, a fault (a multiple of 97); its next revision is neither


class Counting:
    """The store's transport, counting the summary statements it runs."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.pages = 0

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self.inner.execute(sql, params)

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        self.pages += "traces FINAL" in sql
        return self.inner.query_arrow(sql, params)

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        self.inner.insert_arrow(table, data)

    @property
    def compression_configured(self) -> bool:
        return self.inner.compression_configured

    def close(self) -> None:
        self.inner.close()


@pytest.fixture(scope="module")
def loaded(chdb_dir: Path) -> Iterator[tuple[Store, float]]:
    """A store holding ``ROWS`` summaries over an hour from ``t0`` (pairs share a start
    time), cloned in the engine from one real trace's row, then a newer revision of the
    trace ``MOVED`` in a part of its own (merges stopped: both revisions stay on disk)."""
    db = f"slices_{uuid.uuid4().hex[:12]}"
    store = Store.open("chdb", chdb_dir, 30, database=db)
    t0 = float(int(time.time()) - 2 * 3600)
    doc = {"name": "svc", "id": new_entity_id(), "trace_id": new_trace_id(t0),
           "start_time": t0, "end_time": t0 + 0.2, "http": {"request": {"url": "/x"}}}  # fmt: skip
    store.write(Assembler(store).assemble([doc]))
    t, db = store.transport, f"`{db}`"
    t.execute(f"SYSTEM STOP MERGES {db}.traces")
    step = HOUR / (ROWS // 2)
    at = f"({t0} + intDiv(number, 2) * {step})"
    t.execute(
        f"INSERT INTO {db}.traces SELECT t.* REPLACE ("
        f"toDateTime(toUInt32({at})) AS ts, "
        f"concat('1-', lower(hex(toUInt32({at}))), '-', leftPad(lower(hex(number)), 24, '0')) "
        f"AS trace_id, {at} AS start_time, toUInt8(number % 97 = 0) AS has_fault, "
        "toUInt8(number IN (3, 17)) AS has_error, toUInt8(number IN (5, 11)) AS is_partial) "
        f"FROM (SELECT * FROM {db}.traces WHERE trace_id = {{id:String}}) AS t, "
        f"numbers({ROWS}) AS n",
        {"id": doc["trace_id"]},
    )
    # three traces starting exactly where the first slice of a filtered page of the test
    # window ends
    start, end = _window(t0)
    floor = end - slices.first_width(end - start, True)  # as Store.summaries computes it
    t.execute(
        f"INSERT INTO {db}.traces SELECT t.* REPLACE ("
        "toDateTime(toUInt32({floor:Float64})) AS ts, concat('1-', lower(hex(toUInt32("
        "{floor:Float64}))), '-', leftPad(lower(hex(40000 + number)), 24, '0')) AS trace_id, "
        "{floor:Float64} AS start_time, toUInt8(1) AS is_partial) "
        f"FROM (SELECT * FROM {db}.traces WHERE trace_id = {{id:String}}) AS t, "
        "numbers(3) AS n",
        {"id": doc["trace_id"], "floor": floor},
    )
    t.execute(
        f"INSERT INTO {db}.traces SELECT * REPLACE (revision + 1 AS revision, "
        f"{t0 + 100.0} AS start_time, toUInt8(0) AS has_fault) FROM {db}.traces "
        "WHERE trace_id = {id:String}",
        {"id": _id(t0, MOVED)},
    )
    yield store, t0
    store.close()


def _window(t0: float) -> tuple[float, float]:
    """The window the tests page through."""
    return t0 - 10.0, t0 + HOUR + 10.0


def _id(t0: float, number: int) -> str:
    start = int(t0 + number // 2 * (HOUR / (ROWS // 2)))
    return f"1-{start:08x}-{number:024x}"


def _reference(store: Store, start: float, end: float, where: str | None) -> list[str]:
    """Every matching id in page order, by one statement that reads the whole window
    without skipping any granule."""
    table = store.transport.query_arrow(
        f"SELECT trace_id FROM `{store.database}`.traces FINAL "
        "WHERE start_time >= {start:Float64} AND start_time <= {end:Float64} "
        f"AND ({where or 1}) ORDER BY start_time DESC, trace_id DESC "
        "SETTINGS use_skip_indexes = 0",
        {"start": start, "end": end},
    )
    return [str(x) for x in table.column(0).to_pylist()]


def _pages(
    store: Store, start: float, end: float, where: str | None, limit: int, most: int
) -> list[str]:
    ids: list[str] = []
    token = None
    for _ in range(most):
        page = store.summaries(start, end, limit=limit, token=token, where_clause=where)
        ids += [s.id for s in page.summaries]
        token = page.next_token
        if token is None:
            break
    return ids


@pytest.mark.parametrize(
    ("where", "limit", "most"),
    [
        (None, 1, 3),
        (None, 100, 3),
        (None, 1000, 2),
        ("has_fault = 1", 7, 100),
        ("has_fault = 1", 100, 10),
        ("has_error = 1", 1, 5),  # two traces at the very bottom of the window
        ("has_throttle = 1", 100, 1),  # none
        ("is_partial = 1", 100, 1),  # three on the first slice's lower bound, two below
    ],
)
def test_sliced_pages_hold_what_one_statement_over_the_window_gives(
    loaded: tuple[Store, float], where: str | None, limit: int, most: int
) -> None:
    store, t0 = loaded
    start, end = _window(t0)
    expected = _reference(store, start, end, where)
    got = _pages(store, start, end, where, limit, most)
    assert got == expected[: len(got)]
    assert len(got) == min(len(expected), limit * most)


def test_a_revision_moved_down_the_window_is_read_where_it_now_starts(
    loaded: tuple[Store, float],
) -> None:
    store, t0 = loaded
    start, end = _window(t0)
    moved = _id(t0, MOVED)
    # its first revision, a fault, lies in the top slice: the index keeps that granule
    # and skips the newer revision's, unless the engine reads every version (exact mode)
    faults = _pages(store, start, end, "has_fault = 1", 100, 10)
    assert moved not in faults and len(faults) == len(range(0, ROWS, 97)) - 1
    bottom = [s.id for s in store.summaries(start, t0 + 200.0, limit=2000).summaries]
    assert moved in bottom
    assert bottom == _reference(store, start, t0 + 200.0, None)


def test_a_page_reads_slices_from_the_top_and_stops_when_they_hold_it(
    loaded: tuple[Store, float],
) -> None:
    store, t0 = loaded
    counting = Counting(store.transport)
    sliced = Store(counting, store.database)
    start, end = _window(t0)
    sliced.summaries(start, end, limit=100)
    assert counting.pages == 1  # the top 1/64 of the hour holds ~470 traces
    counting.pages = 0
    (a, b) = sliced.summaries(start, end, limit=100, where_clause="has_error = 1").summaries
    assert (a.id, b.id) == (_id(t0, 17), _id(t0, 3))
    assert 2 <= counting.pages <= 5  # the bottom is reached in a few growing slices
    counting.pages = 0
    sliced.summaries(start, start + slices.MIN_SLICED - 1, limit=100)
    assert counting.pages == 1  # too narrow to slice


def test_the_start_time_index_skips_granules_outside_a_slice(
    loaded: tuple[Store, float],
) -> None:
    store, t0 = loaded
    plan = store.transport.query_arrow(
        f"EXPLAIN indexes = 1 SELECT trace_id FROM `{store.database}`.traces FINAL "
        "WHERE start_time >= {a:Float64}",
        {"a": t0 + HOUR - 60.0},
    )
    lines = [str(x).strip() for x in plan.column(0).to_pylist()]
    at = lines.index("Name: start_time_minmax")
    granules = next(x for x in lines[at:] if x.startswith("Granules:"))
    kept, total = (int(n) for n in granules.removeprefix("Granules: ").split("/"))
    assert kept < total


def test_an_older_store_gets_the_index_on_the_parts_it_already_has(
    loaded: tuple[Store, float],
) -> None:
    store, _ = loaded
    t = store.transport
    db = old_schema(t, before=25)
    now = time.time()
    old = Store(t, db)
    old.write(Assembler(old).assemble([{"name": "svc", "id": new_entity_id(),
        "trace_id": new_trace_id(now), "start_time": now, "end_time": now + 1}]))  # fmt: skip
    assert 25 in migrate(t, db, 30)
    indices = t.query_arrow(
        "SELECT name FROM system.data_skipping_indices WHERE database = {db:String} "
        "AND table = 'traces'",
        {"db": db},
    )
    assert indices.column(0).to_pylist() == ["start_time_minmax"]

    def built() -> bool | None:  # the index is built for existing parts in the background
        left = t.query_arrow(
            "SELECT count() FROM system.parts WHERE database = {db:String} AND "
            "table = 'traces' AND active AND secondary_indices_uncompressed_bytes = 0",
            {"db": db},
        )
        return left.column(0)[0].as_py() == 0 or None

    wait_for(built, timeout=60)
    (summary,) = Store(t, db).summaries(now - 5, now + 5).summaries
    assert summary.start_time == pytest.approx(now)
