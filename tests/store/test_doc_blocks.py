"""Migration 24: documents stored without their start time, in larger compressed blocks;
a quickest response time equal to the slowest stored as NaN; summaries' details harder
compressed. A store written before it answers the same after migrating (trace documents,
summaries, response-time filters in service() and edge() scopes), before and after its
old and new parts merge."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

import fluoroscope.store.encode as encode
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.query.compile import filter_condition
from fluoroscope.query.traces import get_traces
from fluoroscope.store.batch import BinaryColumn, WriteBatch
from fluoroscope.store.schema import DOC_BLOCK_BYTES, MIGRATIONS, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests.support import old_schema

# (expression, the k of the traces it selects) over traces made by _trace(now, k): the
# worker is called twice, 0.05 s and (0.031 + 0.01 k) s; the api answers in 0.2 s
FILTERS: tuple[tuple[str, set[int]], ...] = (
    ('service("worker") { responsetime < 0.045 }', {0, 1}),
    ('service("worker") { responsetime <= 0.0505 }', {0, 1, 2, 3, 4, 5}),
    ('service("worker") { responsetime > 0.075 }', {5}),
    ('service("api") { responsetime < 0.3 }', {0, 1, 2, 3, 4, 5}),
    ('service("api") { responsetime < 0.1 }', set()),
    ('edge("api", "worker") { responsetime < 0.035 }', {0}),
    ('edge("api", "worker") { responsetime >= 0.065 }', {4, 5}),
)


def _trace(now: float, k: int) -> list[dict[str, Any]]:
    trace_id = new_trace_id(now)
    root, first, second = new_entity_id(), new_entity_id(), new_entity_id()
    slow = 0.031 + 0.01 * k
    return [
        {"name": "api", "id": root, "trace_id": trace_id, "start_time": now, "end_time": now + 0.2,
         "annotations": {"k": k}, "http": {"response": {"status": 200}},
         "subsegments": [
             {"name": "worker", "id": first, "start_time": now + 0.01, "end_time": now + 0.065},
             {"name": "worker", "id": second, "start_time": now + 0.07,
              "end_time": now + 0.075 + slow}]},
        {"name": "worker", "id": new_entity_id(), "trace_id": trace_id, "parent_id": first,
         "start_time": now + 0.012, "end_time": now + 0.062},
        {"name": "worker", "id": new_entity_id(), "trace_id": trace_id, "parent_id": second,
         "start_time": now + 0.072, "end_time": now + 0.072 + slow},
    ]  # fmt: skip


def _before_24(batch: WriteBatch, docs: list[dict[str, Any]]) -> WriteBatch:
    """``batch`` as the writer before migration 24 made it: each span row's document
    with its start time. The batch's ``doc`` column is rebuilt, not a function of the
    merge replaced, which the compiled build calls directly."""
    starts: dict[str, Any] = {}
    todo = list(docs)
    while todo:
        entity = todo.pop()
        starts[str(entity["id"])] = entity["start_time"]
        todo.extend(entity.get("subsegments", ()))
    column = BinaryColumn()
    for i, entity_id in enumerate(batch.spans.id):
        kept = orjson.loads(batch.spans.doc[i])
        kept["start_time"] = starts[entity_id]
        column.append(orjson.dumps(kept))
    batch.spans.doc = column
    return batch


def _selected(store: Store, start: float, end: float) -> dict[str, set[int]]:
    """Per expression of FILTERS, the k of the traces it selects in ``[start, end]``."""
    out: dict[str, set[int]] = {}
    for expression, _ in FILTERS:
        condition = filter_condition(expression)
        page = store.summaries(
            start, end, where_clause=condition.sql, where_params=condition.params
        )
        out[expression] = {int(s.annotations["k"][0][0]) for s in page.summaries}
    return out


def _column(transport: ChdbTransport, db: str, table: str, column: str) -> dict[str, Any]:
    rows = transport.query_arrow(
        "SELECT compression_codec, create_table_query FROM system.columns "
        "JOIN system.tables ON system.tables.database = system.columns.database "
        "AND system.tables.name = system.columns.table "
        "WHERE database = {db:String} AND table = {t:String} AND system.columns.name = {c:String}",
        {"db": db, "t": table, "c": column},
    ).to_pylist()
    return dict(rows[0])


def test_a_store_written_before_migration_24_answers_the_same_after_it(
    chdb_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    db = old_schema(transport, before=24)
    old = Store(transport, db)
    now = time.time() - 3 * 3600
    old_docs = [doc for k in range(6) for doc in _trace(now + k * 60, k)]
    with monkeypatch.context() as patched:  # the previous release's writer
        patched.setattr(encode, "_SAME_AS_SLOWEST", {})
        old.write(_before_24(Assembler(old).assemble(old_docs), old_docs))
    written = transport.query_arrow(f"SELECT doc FROM `{db}`.spans").column(0).to_pylist()
    assert len(written) == 5 * 6 and all('"start_time"' in doc for doc in written)
    old_window = (now - 60, now + 6 * 60)
    ids = sorted({str(d["trace_id"]) for d in old_docs})
    found_before, _ = get_traces(old, ids)
    summaries_before = old.summaries(*old_window).summaries
    selected_before = _selected(old, *old_window)
    assert selected_before == {expression: ks for expression, ks in FILTERS}
    stored_min = transport.query_arrow(f"SELECT svc_min_rt FROM `{db}`.traces").column(0)
    assert not any(math.isnan(v) for row in stored_min.to_pylist() for v in row)

    assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 24]
    # ZSTD(1) from migration 24; migration 33 hands it to the engine's <compression>
    # section (the engine the tests open has it): tests/store/test_engine_compression.py
    assert _column(transport, db, "spans", "doc")["compression_codec"] == ""
    doc_column = _column(transport, db, "spans", "doc")
    assert f"min_compress_block_size = {DOC_BLOCK_BYTES}" in doc_column["create_table_query"]
    # ZSTD(6) from migration 24 until migration 34 (details without what columns hold)
    assert _column(transport, db, "traces", "details")["compression_codec"] == "CODEC(ZSTD(1))"
    store = Store(transport, db)
    later = now + 3600  # the same traces again, written by this release
    new_docs = [doc for k in range(6) for doc in _trace(later + k * 60, k)]
    store.write(Assembler(store).assemble(new_docs))
    new_window = (later - 60, later + 6 * 60)
    new_ids = sorted({str(d["trace_id"]) for d in new_docs})
    stored = transport.query_arrow(
        f"SELECT doc FROM `{db}`.spans WHERE trace_id IN {{t:Array(String)}}", {"t": new_ids}
    ).column(0)
    assert stored and all('"start_time"' not in doc.as_py() for doc in stored)
    minimums = transport.query_arrow(
        f"SELECT svc_min_rt, svc_max_rt, edge_min_rt, edge_max_rt FROM `{db}`.traces FINAL "
        "WHERE trace_id IN {t:Array(String)}",
        {"t": new_ids},
    ).to_pylist()
    for row in minimums:  # the worker (twice) keeps its quickest; the api's is NaN
        for quickest, slowest in (("svc_min_rt", "svc_max_rt"), ("edge_min_rt", "edge_max_rt")):
            kept = [v for v in row[quickest] if not math.isnan(v)]
            assert len(kept) == 1 and kept[0] < max(row[slowest])

    expected = {str(d["id"]): d for d in new_docs}
    for merged in (False, True):
        if merged:  # old parts and new ones rewritten into one, in the new layout
            for table in ("spans", "traces"):
                transport.execute(f"OPTIMIZE TABLE `{db}`.{table} FINAL")
        found, missing = get_traces(store, ids)
        assert missing == []
        assert [t.id for t in found] == [t.id for t in found_before]
        for trace, earlier in zip(found, found_before, strict=True):
            assert trace.documents == earlier.documents
        assert [s.id for s in store.summaries(*old_window).summaries] == [
            s.id for s in summaries_before
        ]
        assert _selected(store, *old_window) == selected_before
        assert _selected(store, *new_window) == selected_before
        rows = store.entities(new_ids)
        for row in (r for trace_rows in rows.values() for r in trace_rows):
            if row.id in expected:  # a segment's own document, as received
                whole = {k: v for k, v in expected[row.id].items() if k != "subsegments"}
                sort = orjson.OPT_SORT_KEYS
                assert orjson.dumps(row.document, option=sort) == orjson.dumps(whole, option=sort)
                assert row.document["start_time"] == expected[row.id]["start_time"]
