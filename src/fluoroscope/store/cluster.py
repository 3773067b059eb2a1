"""The schema for a ClickHouse cluster: the single-node migrations, rewritten as DDL an
operator applies once (``fluoroscope schema --cluster NAME``).

Contract of :func:`cluster_ddl`: for every table of :data:`~fluoroscope.store.schema.MIGRATIONS`
it returns, in migration order,

* ``<table>_local ON CLUSTER <cluster>``: the same columns, key, partitioning, TTL and
  settings, on the ``Replicated`` form of the table's engine (replica path
  ``/clickhouse/tables/{shard}/<database>/<table>_local``, replica ``{replica}``: the
  servers' macros);
* ``<table> ON CLUSTER <cluster>``: a ``Distributed`` table over the local ones, under the
  name the single-node schema uses, so every query and insert of Fluoroscope runs
  unchanged against it. Sharding keys keep together what the engine must merge or read
  together: every row of a trace (``spans``, ``traces``: ``cityHash64(trace_id)``), every
  event of a log stream (``log_events``: its index tables follow it through their
  materialized views), and every row of one key of the other tables (a hash of their
  ``ORDER BY``), so ``ReplacingMergeTree`` and ``AggregatingMergeTree`` collapse rows on one
  shard exactly as on one node;
* materialized views ``ON CLUSTER``, reading and writing the local tables (each shard
  indexes its own events);
* ``ALTER``s: ``ADD``/``DROP COLUMN`` on both tables of a pair, layout changes (settings,
  codecs, TTL) on the local one only; views dropped ``ON CLUSTER``; none of those that
  hand a column's compression to the engine's configuration
  (:class:`~fluoroscope.store.tuning.EngineCompression`, the embedded engine's only): the
  explicit codecs stay on a cluster, whatever its servers' configuration;
* ``INSERT ... SELECT`` (a migration filling a new table from the rows stored so far)
  as it is: run once, it reads and writes every shard through the ``Distributed`` tables;
* ``schema_migrations`` replicated on every node (one replica path for the whole cluster),
  and one row per migration applied, so a Fluoroscope server pointed at the cluster finds
  the schema current and applies nothing itself.

Inserts into a ``Distributed`` table are forwarded in the background by default; a server
that answers PutTraceSegments or PutLogEvents "once stored" sets
``insert_distributed_sync = 1`` on its session. Pure text work: nothing here talks to an
engine.
"""

from __future__ import annotations

import re
from typing import Final

from fluoroscope.store.schema import MIGRATIONS
from fluoroscope.store.tuning import EngineCompression

__all__ = ["cluster_ddl"]

_CREATE_TABLE: Final = re.compile(r"CREATE TABLE IF NOT EXISTS (?P<db>\S+)\.(?P<name>\w+) \(")
_ENGINE: Final = re.compile(r"\)\s*ENGINE = (?P<engine>\w*MergeTree)(?:\((?P<args>[^)]*)\))?")
_ORDER_BY: Final = re.compile(r"ORDER BY (?P<key>\([^)]*\)|\w+)")
_CREATE_VIEW: Final = re.compile(
    r"CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<db>\S+)\.(?P<name>\w+)\s+TO (?P<to>\S+)\.(?P<target>\w+) AS"
)
_FROM: Final = re.compile(r"\bFROM (?P<db>\S+)\.(?P<source>\w+)")
_ALTER: Final = re.compile(r"ALTER TABLE (?P<db>\S+)\.(?P<name>\w+) (?P<rest>.*)", re.S)
_SCHEMA_CHANGE: Final = re.compile(r"^\s*(ADD|DROP) COLUMN\b")
_DROP_VIEW: Final = re.compile(r"DROP VIEW IF EXISTS (?P<db>\S+)\.(?P<name>\w+)$")
_INSERT_SELECT: Final = re.compile(r"INSERT INTO \S+\.\w+ \([^)]*\) SELECT ")

_SHARDING: Final[dict[str, str]] = {
    "spans": "cityHash64(trace_id)",
    "traces": "cityHash64(trace_id)",
    "log_events": "cityHash64(log_group, stream)",
}


def _ident(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"not a plain ClickHouse identifier: {name!r}")
    return name


def cluster_ddl(cluster: str, database: str = "fluoroscope", retention_days: int = 30) -> list[str]:
    """Every statement creating Fluoroscope's schema on ``cluster`` (see the module
    docstring), in the order to run them. ``cluster`` and ``database`` are plain
    identifiers (ValueError otherwise); ``retention_days`` is the traces' TTL."""
    cluster = _ident(cluster)
    db = f"`{_ident(database)}`"
    on = f"ON CLUSTER {cluster}"
    out = [
        f"CREATE DATABASE IF NOT EXISTS {db} {on}",
        f"CREATE TABLE IF NOT EXISTS {db}.schema_migrations {on} "
        "(version UInt32, description String, applied_at DateTime DEFAULT now()) "
        f"ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/schema_migrations', "
        "'{replica}') ORDER BY version",
    ]
    tables: set[str] = set()
    for version, description, statements in MIGRATIONS:
        for template in statements:
            if isinstance(template, EngineCompression):
                continue
            if "--" in template:  # lines are joined below: a comment would swallow the rest
                raise ValueError(f"an SQL comment in migration {version}: keep it in Python")
            sql = " ".join(template.format(db=db, ttl_days=int(retention_days)).split())
            out.extend(_rewrite(sql, cluster, database, tables))
        text = description.replace("\\", "\\\\").replace("'", "\\'")
        out.append(
            f"INSERT INTO {db}.schema_migrations (version, description) "
            f"VALUES ({int(version)}, '{text}')"
        )
    return out


def _rewrite(sql: str, cluster: str, database: str, tables: set[str]) -> list[str]:
    on = f"ON CLUSTER {cluster}"
    if match := _CREATE_TABLE.match(sql):
        db, name = match["db"], match["name"]
        engine = _ENGINE.search(sql)
        if engine is None:
            raise ValueError(f"no MergeTree engine in: {sql[:120]}")
        path = f"'/clickhouse/tables/{{shard}}/{database}/{name}_local', '{{replica}}'"
        args = f"{path}, {engine['args']}" if engine["args"] else path
        local = (
            f"CREATE TABLE IF NOT EXISTS {db}.{name}_local {on} ("
            + sql[match.end() : engine.start()]
            + f") ENGINE = Replicated{engine['engine']}({args})"
            + sql[engine.end() :]
        )
        order = _ORDER_BY.search(sql, engine.end())
        key = _SHARDING.get(name) or f"cityHash64{_tuple(order['key'] if order else 'tuple()')}"
        tables.add(name)
        return [
            local,
            f"CREATE TABLE IF NOT EXISTS {db}.{name} {on} AS {db}.{name}_local "
            f"ENGINE = Distributed({cluster}, {db}, {name}_local, {key})",
        ]
    if match := _CREATE_VIEW.match(sql):
        body = _FROM.sub(
            lambda m: (
                f"FROM {m['db']}.{m['source']}_local" if m["source"] in tables else m.group(0)
            ),
            sql[match.end() :],
        )
        return [
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {match['db']}.{match['name']} {on} "
            f"TO {match['to']}.{match['target']}_local AS{body}"
        ]
    if match := _ALTER.match(sql):
        db, name, rest = match["db"], match["name"], match["rest"]
        local = f"ALTER TABLE {db}.{name}_local {on} {rest}"
        if _SCHEMA_CHANGE.match(rest):
            return [local, f"ALTER TABLE {db}.{name} {on} {rest}"]
        return [local]
    if match := _DROP_VIEW.match(sql):
        return [f"DROP VIEW IF EXISTS {match['db']}.{match['name']} {on}"]
    if _INSERT_SELECT.match(sql):
        return [sql]
    raise ValueError(f"a migration statement the cluster schema cannot rewrite: {sql[:120]}")


def _tuple(key: str) -> str:
    return key if key.startswith("(") else f"({key})"
