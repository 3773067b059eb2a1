"""Migration 30: spans and trace summaries are merged without the engine's automatic
column statistics.

What it saves is CPU in the engine's merges and bytes on disk, which
``benchmarks/engine_write.py`` measures; here, that a store of every age carries the
setting, that a part the engine merges under it holds no statistics file, and that what a
store held before reads the same after."""

from __future__ import annotations

import time
from pathlib import Path

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.query.traces import get_traces
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
