"""Migrations 30 and 31: spans, trace summaries and the log tables are merged without the
engine's automatic column statistics.

What it saves is CPU in the engine's merges and bytes on disk, which
``benchmarks/engine_write.py`` measures; here, that a store of every age carries the
setting, that a part the engine merges under it holds no statistics file, and that what a
store held before reads the same after."""

from __future__ import annotations

import time
from pathlib import Path

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.ingest.logwriter import encode
from fluoroscope.model.ids import new_entity_id
from fluoroscope.query.traces import get_traces
from fluoroscope.store.logs import LogStore
from fluoroscope.store.schema import MIGRATIONS, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests.support import old_schema, table_setting, two_entity_traces


def _statistics_files(transport: ChdbTransport, db: str, table: str) -> list[bool]:
    """For each active part of the table: whether it holds a statistics file."""
    paths = transport.query_arrow(
        "SELECT path FROM system.parts WHERE database = {db:String} AND table = {t:String} "
        "AND active",
        {"db": db, "t": table},
    ).column(0)
    return [(Path(path) / "statistics.packed").exists() for path in paths.to_pylist()]


def test_a_new_store_merges_spans_and_summaries_without_statistics(store: Store) -> None:
    transport = store._t
    assert isinstance(transport, ChdbTransport)
    assert table_setting(transport, store.database, "spans", "auto_statistics_types") == ""
    assert table_setting(transport, store.database, "traces", "auto_statistics_types") == ""
    assert (
        table_setting(transport, store.database, "graph_stats", "auto_statistics_types") is None
    )  # small
    for half in range(2):  # two parts, merged into one
        store.write(Assembler(store).assemble(two_entity_traces(time.time() - 600 + half * 30, 10)))
    for table in ("spans", "traces"):
        transport.execute(f"OPTIMIZE TABLE `{store.database}`.{table} FINAL")
        assert _statistics_files(transport, store.database, table) == [False]


def test_a_store_made_before_migration_30_takes_it_and_reads_the_same(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    try:
        db = old_schema(transport, before=30)
        assert table_setting(transport, db, "spans", "auto_statistics_types") is None
        old = Store(transport, db)
        docs = two_entity_traces(time.time() - 600, 20)
        old.write(Assembler(old).assemble(docs))
        for table in ("spans", "traces"):  # a merged part as the engine's default writes it
            transport.execute(f"OPTIMIZE TABLE `{db}`.{table} FINAL")
            assert _statistics_files(transport, db, table) == [True]
        ids = sorted({str(d["trace_id"]) for d in docs})
        found_before, missing_before = get_traces(old, ids)
        assert missing_before == [] and len(found_before) == 20

        assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 30]
        assert table_setting(transport, db, "spans", "auto_statistics_types") == ""
        assert table_setting(transport, db, "traces", "auto_statistics_types") == ""
        store = Store(transport, db)
        assert get_traces(store, ids) == (found_before, missing_before)
        for table in ("spans", "traces"):  # the next merge drops the statistics
            transport.execute(f"OPTIMIZE TABLE `{db}`.{table} FINAL")
            assert _statistics_files(transport, db, table) == [False]
        assert get_traces(store, ids) == (found_before, missing_before)
    finally:
        transport.close()


_LOG_TABLES = ("log_events", "log_index", "log_requests", "log_stream_times")


def _put_lines(logs: LogStore, count: int) -> None:
    first = logs.reserve_seq(count)
    now = int(time.time() * 1000)
    lines = [f"START RequestId: {new_entity_id()} Version: $LATEST" for _ in range(count)]
    logs.write(encode([("g", "s", [now - 60_000 + i for i in range(count)], lines, 30, now)],
                      first))  # fmt: skip


def test_a_new_store_merges_log_events_without_statistics(store: Store) -> None:
    transport = store._t
    assert isinstance(transport, ChdbTransport)
    for table in _LOG_TABLES:
        assert table_setting(transport, store.database, table, "auto_statistics_types") == ""
    logs = LogStore(store, 30)
    for _ in range(2):  # two parts, merged into one
        _put_lines(logs, 10)
    transport.execute(f"OPTIMIZE TABLE `{store.database}`.log_events FINAL")
    assert _statistics_files(transport, store.database, "log_events") == [False]


def test_a_store_made_before_migration_31_takes_it(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    try:
        db = old_schema(transport, before=31)
        assert table_setting(transport, db, "log_events", "auto_statistics_types") is None
        assert migrate(transport, db, 31) == [v for v, _, _ in MIGRATIONS if v >= 31]
        for table in _LOG_TABLES:
            assert table_setting(transport, db, table, "auto_statistics_types") == ""
    finally:
        transport.close()
