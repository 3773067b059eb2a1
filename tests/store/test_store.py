"""The store on the real embedded engine: schema, idempotent writes, reads, parameters."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.errors import InvalidRequest, StoreError, StoreUnavailable
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.store import schema
from fluoroscope.store.schema import MIGRATIONS, Tuning, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests.support import old_schema


def _segment(now: float, **extra: object) -> dict[str, object]:
    return {"name": "svc", "id": new_entity_id(), "trace_id": new_trace_id(now), "start_time": now,
            "end_time": now + 0.1, **extra}  # fmt: skip


def test_migrations_are_recorded_and_idempotent(store: Store, chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    assert migrate(transport, store.database, 30) == []
    versions = transport.query_arrow(
        f"SELECT version FROM `{store.database}`.schema_migrations ORDER BY version"
    )
    assert versions.column(0).to_pylist() == [version for version, _, _ in MIGRATIONS]


def test_retention_is_a_ttl_that_follows_the_setting(store: Store, chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    migrate(transport, store.database, 7)
    ddl = transport.query_arrow(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
        {"db": store.database},
    ).to_pylist()
    ttl = {row["name"]: row["create_table_query"] for row in ddl}
    for table in ("spans", "traces", "node_stats", "edge_stats"):
        assert "toIntervalDay(7)" in ttl[table], table


def test_the_columns_a_trace_lookup_reads_have_small_compressed_blocks(
    store: Store, chdb_dir: Path
) -> None:
    ddl = (
        ChdbTransport(chdb_dir / "chdb")
        .query_arrow(f"SHOW CREATE TABLE `{store.database}`.spans")
        .column(0)[0]
        .as_py()
    )
    small = "SETTINGS (min_compress_block_size = 4096, max_compress_block_size = 16384)"
    columns = {
        line.split("`")[1]: line for line in ddl.splitlines() if line.strip().startswith("`")
    }
    assert {name for name, line in columns.items() if small in line} == {
        "ts", "trace_id", "parent_id", "is_segment", "version",  # migration 8
        "id", "end_time",  # migration 22: they restore a document's fields
        "start_time",  # migration 24: so does it
    }  # fmt: skip


def test_spans_and_summaries_merge_one_column_at_a_time(store: Store, chdb_dir: Path) -> None:
    rows = (
        ChdbTransport(chdb_dir / "chdb")
        .query_arrow(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}",
            {"db": store.database},
        )
        .to_pylist()
    )
    vertical = {
        row["name"]
        for row in rows
        if "vertical_merge_algorithm_min_rows_to_activate = 1" in row["engine_full"]
        and "vertical_merge_algorithm_min_columns_to_activate = 1" in row["engine_full"]
    }
    assert vertical == {"spans", "traces"}


def test_a_layout_statement_the_engine_rejects_is_skipped_and_others_fail(
    store: Store, chdb_dir: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    rejected = "ALTER TABLE {db}.spans MODIFY COLUMN doc MODIFY SETTING no_such_setting = 1"
    with pytest.raises(StoreError):  # the engine really rejects it
        transport.execute(rejected.format(db=f"`{store.database}`"))
    monkeypatch.setattr(
        schema, "MIGRATIONS", (*schema.MIGRATIONS, (90, "layout", (Tuning(rejected),)))
    )
    assert migrate(transport, store.database, 30) == [90]
    assert "schema 90: the engine kept its layout" in caplog.text
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, (91, "must apply", (rejected,))))
    with pytest.raises(StoreError):
        migrate(transport, store.database, 30)
    versions = (
        transport.query_arrow(f"SELECT max(version) FROM `{store.database}`.schema_migrations")
        .column(0)[0]
        .as_py()
    )
    assert versions == 90


def test_writes_are_idempotent_and_complete_outranks_in_progress(store: Store) -> None:
    now = time.time()
    doc = _segment(now, annotations={"k": "v"})
    assembler = Assembler(store)
    store.write(assembler.assemble([{**doc, "in_progress": True, "end_time": None}]))
    # In-progress documents have no end_time; drop the None the test put there.
    store.write(assembler.assemble([doc, doc]))
    store.write(
        assembler.assemble(
            [{k: v for k, v in doc.items() if k != "end_time"} | {"in_progress": True}]
        )
    )
    rows = store.entities([str(doc["trace_id"])])[str(doc["trace_id"])]
    assert [r.document for r in rows] == [doc]


def test_traces_are_found_whether_or_not_stored_under_their_id_epoch(store: Store) -> None:
    """By-id reads look under the id's epoch first, then everywhere for the rest: a trace
    whose id epoch ingest found implausible (stored under its start) is still found,
    alongside ordinary ones, with every entity and only the latest version of each."""
    now = time.time()
    odd_id = "1-00000001-" + new_entity_id() + "00000000"  # epoch 1970: not plausible
    odd = _segment(now, trace_id=odd_id)
    child = {"name": "db", "id": new_entity_id(), "start_time": now + 0.01, "end_time": now + 0.02}
    usual = _segment(now, subsegments=[child])
    assembler = Assembler(store)
    store.write(assembler.assemble([{**usual, "end_time": None, "in_progress": True}]))
    store.write(assembler.assemble([odd, usual]))
    found = store.entities([odd_id, str(usual["trace_id"]), new_trace_id(now)])
    assert set(found) == {odd_id, usual["trace_id"]}
    assert [r.document["id"] for r in found[odd_id]] == [odd["id"]]
    rows = found[str(usual["trace_id"])]
    assert [(r.id, r.is_segment) for r in rows] == [(usual["id"], True), (child["id"], False)]
    assert rows[0].document["end_time"] == usual["end_time"]  # not the in-progress version
    stored_ts = store._t.query_arrow(
        f"SELECT DISTINCT toUInt32(ts) FROM {store._db}.spans WHERE trace_id = {{t:String}}",
        {"t": odd_id},
    )
    assert stored_ts.column(0).to_pylist() == [int(now)]  # the fallback was needed


def test_unknown_and_malicious_ids_are_parameters_not_sql(store: Store) -> None:
    evil = "1-00000000-000000000000000000000000' OR 1=1 --"
    assert store.entities([evil, "x\\y\ttab\nnewline"]) == {}


def test_summaries_page_newest_first(store: Store) -> None:
    now = time.time()
    assembler = Assembler(store)
    docs = [_segment(now - i) for i in range(7)]
    store.write(assembler.assemble(docs))
    seen: list[str] = []
    token = None
    while True:
        page = store.summaries(now - 60, now + 60, limit=3, token=token)
        seen.extend(s.id for s in page.summaries)
        token = page.next_token
        if token is None:
            break
    assert seen == [str(d["trace_id"]) for d in docs]
    with pytest.raises(InvalidRequest):
        store.summaries(now - 60, now + 60, token="garbage!")


def test_engine_errors_become_store_errors(store: Store, chdb_dir: Path) -> None:
    with pytest.raises(StoreError, match=r"UNKNOWN_DATABASE|UNKNOWN_TABLE|does not exist"):
        ChdbTransport(chdb_dir / "chdb").query_arrow("SELECT * FROM no_such_db.no_such_table")


def test_a_second_data_path_in_one_process_is_refused(tmp_path: Path, chdb_dir: Path) -> None:
    ChdbTransport(chdb_dir / "chdb")  # the path this process already uses is fine
    with pytest.raises(StoreUnavailable, match="one data path per process"):
        ChdbTransport(tmp_path / "other")


def test_an_older_schema_is_upgraded_in_place(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    db = old_schema(transport, before=2)
    assert migrate(transport, db, 30) == [version for version, _, _ in MIGRATIONS][1:]
    upgraded = Store(transport, db)
    now = time.time()
    upgraded.write(Assembler(upgraded).assemble([_segment(now, user="zoe")]))
    (summary,) = upgraded.summaries(now - 5, now + 5).summaries
    assert summary.users == [("zoe", [0])]
