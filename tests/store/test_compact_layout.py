"""Migration 17: spans and trace summaries take codecs that store them in fewer bytes;
a store written before it keeps answering, and old and new parts merge."""

from __future__ import annotations

import time
from pathlib import Path

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.query.traces import get_traces
from fluoroscope.store.schema import MIGRATIONS, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests.support import column_codecs, old_schema


def _trace(now: float, user: str) -> list[dict[str, object]]:
    trace_id = new_trace_id(now)
    root = new_entity_id()
    return [
        {"name": "api", "id": root, "trace_id": trace_id, "start_time": now, "end_time": now + 0.2,
         "user": user, "http": {"response": {"status": 200}},
         "subsegments": [{"name": "db", "id": new_entity_id(), "start_time": now + 0.01,
                          "end_time": now + 0.1, "namespace": "aws"}]},
        {"name": "worker", "id": new_entity_id(), "trace_id": trace_id, "parent_id": root,
         "start_time": now + 0.05, "end_time": now + 0.15, "fault": True},
    ]  # fmt: skip


def test_a_store_written_before_the_new_codecs_answers_after_the_upgrade(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    db = old_schema(transport, before=17)
    old = Store(transport, db)
    now = time.time()
    old_docs = _trace(now, "ann")
    old.write(Assembler(old).assemble(old_docs))
    assert (
        "doc" in column_codecs(transport, db, "spans")
        and "ZSTD(3)" in column_codecs(transport, db, "spans")["doc"]
    )

    assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 17]
    spans, traces = column_codecs(transport, db, "spans"), column_codecs(transport, db, "traces")
    assert spans["start_time"] == "CODEC(Delta(8), ZSTD(1))"
    # migration 33 hands the plain ZSTD(1) codecs to the engine's <compression> section
    # (the engine the tests open has it): tests/store/test_engine_compression.py
    assert spans["name"] == traces["svc_min_rt"] == traces["users"] == ""

    store = Store(transport, db)
    new_docs = _trace(now + 1, "bob")
    store.write(Assembler(store).assemble(new_docs))
    expected = {str(d["trace_id"]): d for d in (old_docs[0], new_docs[0])}
    for merged in (False, True):
        if merged:  # old parts (old codecs) and new ones rewritten into one
            for table in ("spans", "traces"):
                transport.execute(f"OPTIMIZE TABLE `{db}`.{table} FINAL")
        found, missing = get_traces(store, list(expected))
        assert missing == []
        for trace in found:
            names = sorted(doc["name"] for doc in trace.documents)
            assert names == ["Db", "api", "worker"]  # Db: inferred from the aws call
            api = next(doc for doc in trace.documents if doc["name"] == "api")
            assert api == expected[trace.id]
        users = sorted(u for s in store.summaries(now - 5, now + 5).summaries for u, _ in s.users)
        assert users == ["ann", "bob"]
