"""Migration 33 and the embedded engine's ``<compression>`` section: spans and trace
summaries are written in LZ4 at insert and in small merges, in ZSTD(1) once merged into
large parts.

What it saves is the engine's CPU, which ``benchmarks/engine_write.py`` measures; here,
that the engine the store opens has the section, that parts are written as it says, that a
store made before reads the same after, and that a ClickHouse server or a cluster keeps
the explicit codecs (their configuration is not Fluoroscope's)."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.query.traces import get_traces
from fluoroscope.store.cluster import cluster_ddl
from fluoroscope.store.schema import (
    MIGRATIONS,
    SPANS_BY_ENGINE,
    TRACES_BY_ENGINE,
    engine_compression_missing,
    migrate,
)
from fluoroscope.store.store import Store
from fluoroscope.store.transport import (
    COMPRESSION_CONFIG,
    COMPRESSION_MIN_PART_BYTES,
    ENGINE_CONFIG,
    ChdbTransport,
    Transport,
    has_compression,
)
from tests.support import column_codecs, old_schema, run_python, two_entity_traces

DAY = 86_400


def _parts(transport: Transport, db: str, table: str) -> list[dict[str, object]]:
    """Each active part of the table: its partition, default codec and bytes on disk."""
    parts: list[dict[str, object]] = transport.query_arrow(
        "SELECT partition, default_compression_codec AS codec, bytes_on_disk AS bytes "
        "FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active "
        "ORDER BY partition, name",
        {"db": db, "t": table},
    ).to_pylist()
    return parts


def test_the_embedded_engine_starts_with_the_compression_section(
    store: Store, chdb_dir: Path
) -> None:
    assert store.embedded and store.transport.compression_configured
    assert (chdb_dir / "chdb" / "engine.xml").read_text() == ENGINE_CONFIG
    assert COMPRESSION_CONFIG.partition("</compression>")[0] in ENGINE_CONFIG
    assert has_compression(chdb_dir / "chdb" / "engine.xml")
    spans = column_codecs(store.transport, store.database, "spans")
    traces = column_codecs(store.transport, store.database, "traces")
    assert {c: spans[c] for c in SPANS_BY_ENGINE} == dict.fromkeys(SPANS_BY_ENGINE, "")
    assert {c: traces[c] for c in TRACES_BY_ENGINE} == dict.fromkeys(TRACES_BY_ENGINE, "")
    # codec chains and the columns whose own codec makes their bytes keep it
    assert spans["ts"] == "CODEC(Delta(4), ZSTD(1))"
    assert spans["start_time"] == "CODEC(Delta(8), ZSTD(1))"
    assert traces["details"] == "CODEC(ZSTD(1))"  # its own since migration 34
    graph = column_codecs(store.transport, store.database, "graph_stats")
    assert set(graph.values()) == {"CODEC(ZSTD(1))"}
    # the log tables' columns without a codec stay LZ4 at every size
    events = column_codecs(store.transport, store.database, "log_events")
    assert events["json_whole"] == events["level"] == events["message"] == "CODEC(LZ4)"
    assert engine_compression_missing(store.transport, store.database) == []


def test_parts_are_lz4_until_merged_past_the_threshold(store: Store) -> None:
    transport, db = store.transport, store.database
    now = time.time()
    for half in range(2):  # two small parts of two days ago: merged, still small
        store.write(Assembler(store).assemble(two_entity_traces(now - 2 * DAY + half * 30, 10)))
    # two parts of today, each of about the threshold's bytes (random documents: LZ4 keeps
    # them about as large as they are)
    rows = COMPRESSION_MIN_PART_BYTES // 250
    today = str(
        transport.query_arrow(
            "SELECT toYYYYMMDD(toDateTime({now:UInt32}))", {"now": int(now)}
        ).column(0)[0]
    )
    for _ in range(2):
        transport.execute(
            f"INSERT INTO `{db}`.spans (ts, trace_id, id, parent_id, doc, version) "
            "SELECT toDateTime({now:UInt32}), hex(randomString(16)), hex(randomString(8)), "
            "'', randomPrintableASCII(250), 1 FROM numbers({rows:UInt32})",
            {"now": int(now), "rows": rows},
        )
    before = _parts(transport, db, "spans")
    assert {p["codec"] for p in before} == {"LZ4"}  # every insert
    large = [int(str(p["bytes"])) for p in before if p["partition"] == today]
    assert len(large) == 2 and min(large) >= 0.9 * COMPRESSION_MIN_PART_BYTES
    for table in ("spans", "traces"):
        transport.execute(f"OPTIMIZE TABLE `{db}`.{table} FINAL")
    after = _parts(transport, db, "spans")
    assert [(p["partition"] == today, p["codec"]) for p in after] == [
        (False, "LZ4"),  # merged from a few KB
        (True, "ZSTD(1)"),  # merged from twice the threshold
    ]
    # ZSTD(1)'s entropy coding takes the random printable text's unused bits
    assert int(str(after[1]["bytes"])) < 0.9 * sum(large)
    assert {p["codec"] for p in _parts(transport, db, "traces")} == {"LZ4"}  # small


def test_a_store_made_before_migration_33_takes_it_and_reads_the_same(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    try:
        db = old_schema(transport, before=33)
        assert column_codecs(transport, db, "spans")["trace_id"] == "CODEC(ZSTD(1))"
        old = Store(transport, db)
        docs = two_entity_traces(time.time() - 600, 20)
        old.write(Assembler(old).assemble(docs[:20]))
        old.write(Assembler(old).assemble(docs[20:]))
        ids = sorted({str(d["trace_id"]) for d in docs})
        found_before, missing_before = get_traces(old, ids)
        assert missing_before == [] and len(found_before) == 20
        summaries_before = old.summaries(time.time() - 3600, time.time(), limit=100)

        assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 33]
        spans = column_codecs(transport, db, "spans")
        assert {c: spans[c] for c in SPANS_BY_ENGINE} == dict.fromkeys(SPANS_BY_ENGINE, "")
        assert column_codecs(transport, db, "traces")["http_url"] == ""
        store = Store(transport, db)
        assert get_traces(store, ids) == (found_before, missing_before)
        for table in ("spans", "traces"):  # parts of both layouts merged into one
            transport.execute(f"OPTIMIZE TABLE `{db}`.{table} FINAL")
        assert get_traces(store, ids) == (found_before, missing_before)
        summaries = store.summaries(time.time() - 3600, time.time(), limit=100)
        assert summaries.summaries == summaries_before.summaries
    finally:
        transport.close()


def test_a_cluster_keeps_the_explicit_codecs() -> None:
    ddl = cluster_ddl("c1", "fl")
    assert not [sql for sql in ddl if "REMOVE CODEC" in sql or "json_whole CODEC(LZ4)" in sql]
    assert "ALTER TABLE `fl`.spans_local ON CLUSTER c1 MODIFY COLUMN doc CODEC(ZSTD(1))" in ddl


_PLAIN = "<clickhouse><max_server_memory_usage_to_ram_ratio>0.9</max_server_memory_usage_to_ram_ratio></clickhouse>\n"

_SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    from pathlib import Path

    from fluoroscope.store.schema import engine_compression_missing, migrate
    from fluoroscope.store.transport import ChdbTransport

    here, plain = Path(sys.argv[1]), sys.argv[2] == "plain"
    said = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    logging.getLogger("fluoroscope.store.schema").addHandler(handler)
    t = ChdbTransport(here / "chdb", config_file=(here / "plain.xml") if plain else None)
    out = {"configured": t.compression_configured}
    for db in ("made", "fresh") if plain else ("made",):
        migrate(t, db, 30)
        out[db] = {
            "codec": t.query_arrow(
                "SELECT compression_codec FROM system.columns WHERE database = {db:String} "
                "AND table = 'spans' AND name = 'trace_id'", {"db": db}).column(0)[0].as_py(),
            "missing": engine_compression_missing(t, db),
        }
    out["warnings"] = [m for m in said if "<compression>" in m]
    print(json.dumps(out))
    """
)


def _run(here: Path, mode: str) -> dict[str, object]:
    result: dict[str, object] = run_python(_SCRIPT, str(here), mode)
    return result


def test_an_engine_without_the_section_keeps_the_codecs_and_names_a_store_relying_on_it(
    tmp_path: Path,
) -> None:
    """An engine started with another configuration (as a server is): a new database keeps
    its explicit codecs; one migrated where the section was (the codecs removed) is named
    at start-up, since its parts would stay LZ4 at every size."""
    (tmp_path / "plain.xml").write_text(_PLAIN)
    assert not has_compression(tmp_path / "plain.xml")
    ours = _run(tmp_path, "own")
    assert ours["configured"] is True
    assert ours["made"] == {"codec": "", "missing": []}
    plain = _run(tmp_path, "plain")
    assert plain["configured"] is False
    assert plain["fresh"] == {"codec": "CODEC(ZSTD(1))", "missing": []}
    assert plain["made"] == {"codec": "", "missing": ["spans", "traces"]}
    warnings = plain["warnings"]
    assert isinstance(warnings, list) and len(warnings) == 1
    assert warnings[0].startswith("spans, traces: columns without a codec of their own")


def test_the_section_an_operator_installs_is_the_embedded_engines() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "scaling.md").read_text()
    section = doc.partition("- **Compression**")[2]
    snippet = section.partition("```xml")[2].partition("```")[0]
    assert "".join(snippet.split()) == "".join(COMPRESSION_CONFIG.split())
