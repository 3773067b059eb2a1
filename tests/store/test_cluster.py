"""The cluster schema (store/cluster.py), as far as one machine can test it.

Every statement is parsed by the engine. Then the whole DDL runs on a real one-shard
cluster of the embedded engine (a ClickHouse configuration naming a ``remote_servers``
cluster of this engine itself), with the two things only a real cluster has taken out:
``ON CLUSTER`` (the distributed DDL queue) and the replication arguments (Keeper). The
store then writes and reads traces and log lines through the ``Distributed`` tables and
the materialized views over the local ones, unchanged.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from fluoroscope.store.cluster import cluster_ddl
from fluoroscope.store.schema import MIGRATIONS
from fluoroscope.store.store import Store
from tests.support import run_python

_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS `fl`\.(\w+) ON CLUSTER c1 ")


def _single_node_tables() -> set[str]:
    names: set[str] = set()
    for _, _, statements in MIGRATIONS:
        for sql in statements:
            names.update(re.findall(r"CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)", sql))
    return names


def test_every_statement_parses(store: Store) -> None:
    for sql in cluster_ddl("c1", "fl"):
        assert store.transport.query_arrow(f"EXPLAIN AST {sql}").num_rows > 0, sql


def test_each_table_is_replicated_locally_and_distributed_under_its_own_name() -> None:
    ddl = cluster_ddl("c1", "fl", retention_days=7)
    created = {m[1]: sql for sql in ddl if (m := _TABLE.match(sql))}
    for name in _single_node_tables():
        local, distributed = created[f"{name}_local"], created[name]
        assert "ENGINE = Replicated" in local and f"/fl/{name}_local'" in local, local
        assert f"AS `fl`.{name}_local ENGINE = Distributed(c1, `fl`, {name}_local, " in distributed
    # a trace's rows are on one shard: its spans and its summary together
    assert created["spans"].endswith("cityHash64(trace_id))")
    assert created["traces"].endswith("cityHash64(trace_id))")
    assert "INTERVAL 7 DAY" in created["spans_local"]
    views = [sql for sql in ddl if sql.startswith("CREATE MATERIALIZED VIEW")]
    assert views and all(
        " ON CLUSTER c1 TO `fl`." in sql
        and "_local AS" in sql
        and "FROM `fl`.log_events_local" in sql
        for sql in views
    ), views
    recorded = [sql for sql in ddl if sql.startswith("INSERT INTO `fl`.schema_migrations")]
    assert len(recorded) == len(MIGRATIONS)


@pytest.mark.parametrize(("cluster", "database"), [("c 1", "fl"), ("c1", "fl`; DROP")])
def test_names_must_be_plain_identifiers(cluster: str, database: str) -> None:
    with pytest.raises(ValueError, match="identifier"):
        cluster_ddl(cluster, database)


_ONE_SHARD = """\
<clickhouse>
  <tcp_port>9000</tcp_port>
  <remote_servers>
    <c1><shard><replica><host>127.0.0.1</host><port>9000</port></replica></shard></c1>
  </remote_servers>
</clickhouse>
"""

_SCRIPT = textwrap.dedent(
    """
    import json, re, sys, time
    from pathlib import Path

    from fluoroscope.ingest.assemble import Assembler
    from fluoroscope.model.ids import new_entity_id, new_trace_id
    from fluoroscope.store.cluster import cluster_ddl
    from fluoroscope.store.schema import migrate
    from fluoroscope.store.store import Store
    from fluoroscope.store.transport import ChdbTransport

    here = Path(sys.argv[1])
    t = ChdbTransport(here / "chdb", config_file=here / "config.xml")
    for sql in cluster_ddl("c1", "fl"):
        sql = sql.replace(" ON CLUSTER c1", "")  # no distributed DDL queue here
        sql = re.sub(r"Replicated(\\w*MergeTree)\\('[^']*', '[^']*'(?:, )?", r"\\1(", sql)
        t.execute(sql)
    applied = migrate(t, "fl", 30)  # the schema is current: a server applies nothing
    store = Store(t, "fl")
    now = time.time()
    tid, root = new_trace_id(now), new_entity_id()
    docs = [
        {"trace_id": tid, "id": root, "name": "api", "start_time": now,
         "end_time": now + 0.2, "http": {"response": {"status": 500}}, "fault": True,
         "subsegments": [{"id": new_entity_id(), "name": "DynamoDB", "namespace": "aws",
                          "start_time": now + 0.01, "end_time": now + 0.1,
                          "aws": {"operation": "PutItem", "table_name": "orders"}}]},
    ]
    store.write(Assembler(store).assemble(docs))
    summaries = store.summaries(now - 60, now + 60, limit=10)
    entities = store.entities([tid])
    engines = {r["name"]: r["engine"] for r in t.query_arrow(
        "SELECT name, engine FROM system.tables WHERE database = 'fl'").to_pylist()}
    nodes = sorted({r["name"] for r in store.stats("node", now - 120, now + 120).to_pylist()})
    t.execute(
        "INSERT INTO fl.log_events (log_group, stream, ts, ingest_ts, seq, message, trace_id,"
        " retention_days) SETTINGS insert_distributed_sync = 1 VALUES ('/aws/lambda/f', 's',"
        " now64(3), now64(3), 1, 'hello', {tid:String}, 30)", {"tid": tid})
    index = t.query_arrow(
        "SELECT key FROM fl.log_index WHERE key = {tid:String}", {"tid": tid}).num_rows
    print(json.dumps({
        "applied": applied,
        "summaries": [s.id for s in summaries.summaries],
        "entities": sorted(e.document["name"] for e in entities.get(tid, [])),
        "spans_engine": engines["spans"], "spans_local_engine": engines["spans_local"],
        "nodes": nodes, "log_index": index, "trace_id": tid,
    }))
    """
)


def test_the_store_works_unchanged_on_a_one_shard_cluster(tmp_path: Path) -> None:
    (tmp_path / "config.xml").write_text(_ONE_SHARD)
    result = run_python(_SCRIPT, str(tmp_path))
    assert result["applied"] == []
    assert (result["spans_engine"], result["spans_local_engine"]) == (
        "Distributed",
        "ReplacingMergeTree",
    )
    assert result["summaries"] == [result["trace_id"]]
    assert result["entities"] == ["DynamoDB", "api"]
    assert {"api", "orders"} <= set(result["nodes"])
    assert result["log_index"] == 1  # the view over the local events filled the index
