"""Migration 26: spans and trace summaries merge 12 parts at a time.

What the setting saves is CPU in the engine's background merges, which
``benchmarks/engine_write.py`` measures; here, that a store of every age carries it (a
tuning migration that the engine refused would only log a warning), and that what a
store held before it reads the same after."""

from __future__ import annotations

import time
from pathlib import Path

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.query.traces import get_traces
from fluoroscope.store.schema import MIGRATIONS, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests.support import old_schema, table_setting, two_entity_traces


def test_a_new_store_merges_spans_and_summaries_twelve_parts_at_a_time(store: Store) -> None:
    transport = store._t
    assert isinstance(transport, ChdbTransport)
    assert table_setting(transport, store.database, "spans", "merge_selector_base") == "12"
    assert table_setting(transport, store.database, "traces", "merge_selector_base") == "12"
    assert (
        table_setting(transport, store.database, "node_stats", "merge_selector_base") is None
    )  # small: default


def test_a_store_made_before_migration_26_takes_it_and_reads_the_same(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    try:
        db = old_schema(transport, before=26)
        assert table_setting(transport, db, "spans", "merge_selector_base") is None
        old = Store(transport, db)
        docs = two_entity_traces(time.time() - 600, 20)
        old.write(Assembler(old).assemble(docs))
        ids = sorted({str(d["trace_id"]) for d in docs})
        found_before, missing_before = get_traces(old, ids)
        assert missing_before == [] and len(found_before) == 20

        assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 26]
        assert table_setting(transport, db, "spans", "merge_selector_base") == "12"
        assert table_setting(transport, db, "traces", "merge_selector_base") == "12"
        store = Store(transport, db)
        assert get_traces(store, ids) == (found_before, missing_before)
        transport.execute(f"OPTIMIZE TABLE `{db}`.spans FINAL")  # a merge under the setting
        transport.execute(f"OPTIMIZE TABLE `{db}`.traces FINAL")
        assert get_traces(store, ids) == (found_before, missing_before)
    finally:
        transport.close()
