"""Migration 26: spans and trace summaries merge 12 parts at a time.

What the setting saves is CPU in the engine's background merges, which
``benchmarks/engine_write.py`` measures; here, that a store of every age carries it (a
tuning migration that the engine refused would only log a warning), and that what a
store held before it reads the same after."""

from __future__ import annotations

import time
from pathlib import Path

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.query.traces import get_traces
from fluoroscope.store.schema import MIGRATIONS, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests.support import old_schema


def _merge_base(transport: ChdbTransport, db: str, table: str) -> str | None:
    query = (
        transport.query_arrow(
            "SELECT create_table_query FROM system.tables WHERE database = {db:String} "
            "AND name = {t:String}",
            {"db": db, "t": table},
        )
        .column(0)[0]
        .as_py()
    )
    settings = query.rpartition(" SETTINGS ")[2]
    for setting in settings.split(", "):
        name, _, value = setting.partition(" = ")
        if name == "merge_selector_base":
            return str(value)
    return None


def _documents(start: float, count: int) -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    for k in range(count):
        trace_id = new_trace_id(start + k)
        root = new_entity_id()
        docs.append({"trace_id": trace_id, "id": root, "name": "frontend",
                     "start_time": start + k, "end_time": start + k + 0.2,
                     "http": {"response": {"status": 200}}})  # fmt: skip
        docs.append({"trace_id": trace_id, "id": new_entity_id(), "parent_id": root,
                     "type": "subsegment", "name": "orders", "namespace": "aws",
                     "start_time": start + k + 0.05, "end_time": start + k + 0.15})  # fmt: skip
    return docs


def test_a_new_store_merges_spans_and_summaries_twelve_parts_at_a_time(store: Store) -> None:
    transport = store._t
    assert isinstance(transport, ChdbTransport)
    assert _merge_base(transport, store.database, "spans") == "12"
    assert _merge_base(transport, store.database, "traces") == "12"
    assert _merge_base(transport, store.database, "node_stats") is None  # small: default


def test_a_store_made_before_migration_26_takes_it_and_reads_the_same(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    try:
        db = old_schema(transport, before=26)
        assert _merge_base(transport, db, "spans") is None
        old = Store(transport, db)
        docs = _documents(time.time() - 600, 20)
        old.write(Assembler(old).assemble(docs))
        ids = sorted({str(d["trace_id"]) for d in docs})
        found_before, missing_before = get_traces(old, ids)
        assert missing_before == [] and len(found_before) == 20

        assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 26]
        assert _merge_base(transport, db, "spans") == "12"
        assert _merge_base(transport, db, "traces") == "12"
        store = Store(transport, db)
        assert get_traces(store, ids) == (found_before, missing_before)
        transport.execute(f"OPTIMIZE TABLE `{db}`.spans FINAL")  # a merge under the setting
        transport.execute(f"OPTIMIZE TABLE `{db}`.traces FINAL")
        assert get_traces(store, ids) == (found_before, missing_before)
    finally:
        transport.close()
