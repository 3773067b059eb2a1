"""Migration 32: outdated parts are removed one at a time, so the engine never starts its
parts-cleaning pool (up to 128 threads at once, kept, each holding memory). What it saves
is the server's memory under a sustained stream, which ``benchmarks/ingest.py`` with a
longer ``--duration`` shows; here, that a store of every age carries the setting and
still merges and reads as before."""

from __future__ import annotations

import time
from pathlib import Path

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.query.traces import get_traces
from fluoroscope.store.logschema import MERGING_LOG_TABLES
from fluoroscope.store.schema import MIGRATIONS, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests.support import old_schema, table_setting, two_entity_traces

_TABLES = ("spans", "traces", "graph_stats", "group_graph_stats", *MERGING_LOG_TABLES)
_SETTING = "concurrent_part_removal_threshold"


def test_a_new_store_removes_parts_one_at_a_time(store: Store) -> None:
    transport = store._t
    for table in _TABLES:
        assert table_setting(transport, store.database, table, _SETTING) == "1000000000", table
    assert table_setting(transport, store.database, "node_stats", _SETTING) is None  # unwritten


def test_a_store_made_before_migration_32_takes_it_and_reads_the_same(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    try:
        db = old_schema(transport, before=32)
        assert table_setting(transport, db, "spans", _SETTING) is None
        old = Store(transport, db)
        docs = two_entity_traces(time.time() - 600, 20)
        old.write(Assembler(old).assemble(docs))
        ids = sorted({str(d["trace_id"]) for d in docs})
        before = get_traces(old, ids)
        assert before[1] == [] and len(before[0]) == 20

        assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 32]
        for table in _TABLES:
            assert table_setting(transport, db, table, _SETTING) == "1000000000", table
        store = Store(transport, db)
        store.write(Assembler(store).assemble(two_entity_traces(time.time() - 300, 5)))
        for table in ("spans", "traces"):  # parts merged, the outdated ones removed
            transport.execute(f"OPTIMIZE TABLE `{db}`.{table} FINAL")
        assert get_traces(store, ids) == before
    finally:
        transport.close()
