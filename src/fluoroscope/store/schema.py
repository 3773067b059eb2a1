"""The schema, versioned as an ordered list of migrations.

Tables (all in one database, ``{db}``):

``spans``
    One row per entity: each segment and each subsegment, embedded or streamed, keyed
    by ``(trace_id, id)``. ``doc`` is the entity's own JSON without its children; the
    nesting is rebuilt from ``parent_id`` on read. ``ReplacingMergeTree(version)``
    collapses re-sent documents, and a completed entity always outranks its in-progress
    version (``version`` puts completeness in its top bit). Ordered by trace id, so a
    trace is read from a handful of granules without scanning; partitioned by the day
    of the trace's epoch (``ts``) so retention drops whole parts.
``traces``
    One summary row per trace (GetTraceSummaries), rewritten with a higher
    ``revision`` whenever the trace changes. Ordered by ``(ts, trace_id)`` so a time
    window reads only its window. The per-service arrays (``service_names``,
    ``service_types``, ``service_accounts``, ``svc_*``) are aligned with each other.
``node_stats`` / ``edge_stats``
    Per-minute statistics per service-graph node and per edge, with latency
    histograms (``Map(bucket_us, count)``), aggregated at ingest. Counts are signed:
    ingest retracts an inferred node's numbers when the real downstream segment turns up.
``graph_stats``
    The same node and edge statistics per minute, per 10 minutes and per hour
    (``step``, ``bucket``), nodes and edges in one table, written beside them by the
    store: a service graph reads a window from the coarsest buckets that fit
    (:mod:`fluoroscope.store.graphstats`).
``group_graph_stats``
    Tracked groups' per-minute node and edge statistics (``group_key``; nodes and edges
    in one table, as ``graph_stats``), kept at ingest (:mod:`fluoroscope.query.groupstats`);
    ``group_node_stats`` / ``group_edge_stats`` held them before migration 28 filled it.
``sampling_rules`` / ``api_settings``
    Sampling rules (one JSON row version per change) and the API's small settings
    (tags by ARN, resource policies, encryption, indexing, destination) as JSON by
    ``(kind, key)``; a deletion is a newer version marked deleted.
``log_groups`` / ``log_streams``
    CloudWatch Logs groups and streams, one row version per change (``deleted`` marks).
``log_events``
    One row per log event (the column names are a contract the Logs Insights and filter
    pattern compilers rely on: ``log_group stream ts ingest_ts seq message trace_id
    segment_id request_id level type json retention_days``). Ordered by ``(log_group,
    ts, seq)``, one partition per day; each row expires ``retention_days`` after ``ts``.
    ``message`` is LZ4-compressed (migration 12): scans of the text are the queries' cost.
``log_index``
    Filled by a materialized view: a row per event carrying a trace id (``key`` = the
    trace id) or else a request id (``key`` = ``'r:'`` + it), ordered by ``key``, so one
    trace's lines, and the lines of its Lambda invocations, are found without scanning.
``log_requests``
    Filled by a materialized view: one row per (group, stream, request id) whose trace
    is known (lines carrying both ids, e.g. Lambda REPORT).
``log_stream_times``
    Each stream's first/last event and last ingestion time, events and bytes, as partial
    aggregates: written by the store itself at most once a second and before every read
    (a view on every insert until migration 20; :mod:`fluoroscope.store.streamtimes`).

Migrations only ever append; :func:`migrate` applies the missing ones in order and
records each in ``schema_migrations``. Retention is a TTL, re-applied when it changes.
The migrations are kept by era, each list in its own module and joined here by version:
:mod:`~fluoroscope.store.tableschema` (1-9, 11: the tables and columns),
:mod:`~fluoroscope.store.layoutschema` (17-35: codecs, blocks, indexes, merge settings, the
statistics in fewer tables) and :mod:`~fluoroscope.store.logschema` (the log store's, 10-31).
"""

from __future__ import annotations

import logging
from typing import Final

from fluoroscope.model.errors import StoreError
from fluoroscope.store.layoutschema import (
    DOC_BLOCK_BYTES,
    LAYOUT_MIGRATIONS,
    SPANS_BY_ENGINE,
    TRACES_BY_ENGINE,
)
from fluoroscope.store.logschema import LOG_MIGRATIONS
from fluoroscope.store.tableschema import TABLE_MIGRATIONS
from fluoroscope.store.transport import COMPRESSION_MIN_PART_BYTES, ChdbTransport, Transport
from fluoroscope.store.tuning import EngineCompression, Tuning

__all__ = [
    "DOC_BLOCK_BYTES",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SPANS_BY_ENGINE",
    "TRACES_BY_ENGINE",
    "Tuning",
    "engine_compression_missing",
    "migrate",
    "set_retention",
]

_log = logging.getLogger(__name__)

_TABLES_WITH_TTL: Final = (
    "spans", "traces", "node_stats", "edge_stats", "group_node_stats", "group_edge_stats",
    "graph_stats", "group_graph_stats",
)  # fmt: skip
_TTL_COLUMN: Final = {"graph_stats": "bucket"}  # else minute for *_stats, ts for the rest

# the eras' migrations (store/tableschema.py, store/layoutschema.py, store/logschema.py)
# take their places by version
MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = tuple(
    sorted(
        TABLE_MIGRATIONS + LAYOUT_MIGRATIONS + LOG_MIGRATIONS,
        key=lambda migration: migration[0],
    )
)

SCHEMA_VERSION: Final = MIGRATIONS[-1][0]


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"database name {name!r} must be letters, digits and underscores")
    return f"`{name}`"


def migrate(transport: Transport, db: str, retention_days: int) -> list[int]:
    """Create the database if needed and apply every missing migration, in order.

    Returns the versions applied now (empty when the schema was current). Blocking;
    call once at start-up before any read or write.
    """
    qdb = _ident(db)
    transport.execute(f"CREATE DATABASE IF NOT EXISTS {qdb}")
    transport.execute(
        f"CREATE TABLE IF NOT EXISTS {qdb}.schema_migrations "
        "(version UInt32, description String, applied_at DateTime DEFAULT now()) "
        "ENGINE = MergeTree ORDER BY version"
    )
    done = set(
        transport.query_arrow(f"SELECT version FROM {qdb}.schema_migrations").column(0).to_pylist()
    )
    applied: list[int] = []
    for version, description, statements in MIGRATIONS:
        if version in done:
            continue
        for statement in statements:
            if isinstance(statement, EngineCompression) and not transport.compression_configured:
                continue  # the explicit codecs stay (see EngineCompression)
            sql = statement.format(db=qdb, ttl_days=int(retention_days))
            try:
                transport.execute(sql)
            except StoreError as exc:
                if not isinstance(statement, Tuning):
                    raise
                _log.warning("schema %d: the engine kept its layout (%s): %s", version, exc, sql)
        transport.execute(
            f"INSERT INTO {qdb}.schema_migrations (version, description) VALUES "
            "({version:UInt32}, {description:String})",
            {"version": version, "description": description},
        )
        applied.append(version)
    set_retention(transport, db, retention_days)
    if uncompressed := engine_compression_missing(transport, db):
        _log.warning(
            "%s: columns without a codec of their own (schema 33) are written in LZ4 at every "
            "size: this engine's configuration has no <compression> section (docs/scaling.md "
            "gives it)",
            ", ".join(uncompressed),
        )
    return applied


def engine_compression_missing(transport: Transport, db: str) -> list[str]:
    """The tables among ``spans`` and ``traces`` whose columns rely on the engine's
    ``<compression>`` section (their plain codecs removed, migration 33) on an engine that
    lacks it: known for the embedded engine (:attr:`Transport.compression_configured`),
    seen on a server as a merged part of at least the section's threshold written in LZ4
    (``system.parts.default_compression_codec``)."""
    if transport.compression_configured:
        return []
    relying = (
        transport.query_arrow(
            "SELECT DISTINCT table FROM system.columns WHERE database = {db:String} "
            "AND table IN ('spans', 'traces') AND name = 'trace_id' AND compression_codec = ''",
            {"db": db},
        )
        .column(0)
        .to_pylist()
    )
    if not relying:
        return []
    if isinstance(transport, ChdbTransport):
        return sorted(relying)
    return sorted(
        transport.query_arrow(
            "SELECT DISTINCT table FROM system.parts WHERE database = {db:String} AND active "
            "AND table IN {tables:Array(String)} AND level > 0 "
            "AND bytes_on_disk >= {least:UInt64} AND default_compression_codec = 'LZ4'",
            {"db": db, "tables": relying, "least": COMPRESSION_MIN_PART_BYTES},
        )
        .column(0)
        .to_pylist()
    )


def set_retention(transport: Transport, db: str, retention_days: int) -> None:
    """Make every table's TTL ``retention_days`` (a metadata change when it differs).

    ``Distributed`` tables (a cluster's schema, :mod:`fluoroscope.store.cluster`) are left
    alone: their local tables' TTL is the cluster's operator's (``ALTER TABLE
    <table>_local ON CLUSTER ... MODIFY TTL``); one warning names them."""
    qdb = _ident(db)
    days = int(retention_days)
    distributed: list[str] = []
    for table in _TABLES_WITH_TTL:
        column = _TTL_COLUMN.get(table) or ("minute" if table.endswith("_stats") else "ts")
        found = transport.query_arrow(
            "SELECT create_table_query, engine FROM system.tables "
            "WHERE database = {db:String} AND name = {t:String}",
            {"db": db, "t": table},
        ).to_pylist()
        if found and found[0]["engine"] == "Distributed":
            distributed.append(table)
            continue
        if found and f"toIntervalDay({days})" in found[0]["create_table_query"]:
            continue
        transport.execute(
            f"ALTER TABLE {qdb}.{table} MODIFY TTL {column} + INTERVAL {days} DAY "
            "SETTINGS materialize_ttl_after_modify = 0"
        )
    if distributed:
        _log.warning(
            "%s: distributed over a cluster; their retention is set on the local tables by "
            "the cluster's operator (ALTER TABLE <table>_local ON CLUSTER ... MODIFY TTL), "
            "not by --retention-days",
            ", ".join(distributed),
        )
