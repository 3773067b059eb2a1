"""The schema's first era, migrations 1-9 and 11: the tables and columns the X-Ray API
reads and writes (spans, trace summaries and their per-service, call, root-cause and
account columns, the statistics tables, groups, sampling rules, the API's settings), and
the first two layout changes (8, 9). The tables are described in
:mod:`fluoroscope.store.schema`, which joins these to the other eras' in version order.

A migration is ``(version, description, statements)``; each statement is a template with
``{db}`` and ``{ttl_days}`` to fill, and a :class:`~fluoroscope.store.tuning.Tuning` when
it only changes the layout on disk. Published migrations never change.
"""

from __future__ import annotations

from typing import Final

from fluoroscope.store.tuning import Tuning

__all__ = ["STAT_COLUMNS", "TABLE_MIGRATIONS"]

STAT_COLUMNS: Final = """\
                total SimpleAggregateFunction(sum, Int64),
                ok SimpleAggregateFunction(sum, Int64),
                errors SimpleAggregateFunction(sum, Int64),
                throttles SimpleAggregateFunction(sum, Int64),
                faults SimpleAggregateFunction(sum, Int64),
                response_time SimpleAggregateFunction(sum, Float64),
                first_start SimpleAggregateFunction(min, Float64),
                last_end SimpleAggregateFunction(max, Float64),
                histogram SimpleAggregateFunction(sumMap, Map(UInt32, Int64))"""
"""The per-minute statistics of a node or an edge: every ``*_stats`` table's values."""

TABLE_MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "spans, trace summaries, per-minute node and edge statistics",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.spans (
                ts DateTime CODEC(Delta, ZSTD(1)),
                trace_id String CODEC(ZSTD(1)),
                id String CODEC(ZSTD(1)),
                parent_id String CODEC(ZSTD(1)),
                is_segment UInt8,
                name LowCardinality(String),
                origin LowCardinality(String),
                namespace LowCardinality(String),
                start_time Float64 CODEC(ZSTD(1)),
                end_time Float64 CODEC(ZSTD(1)),
                flags UInt8,
                http_status UInt16,
                version UInt64 CODEC(ZSTD(1)),
                doc String CODEC(ZSTD(3))
            ) ENGINE = ReplacingMergeTree(version)
            PARTITION BY toYYYYMMDD(ts)
            ORDER BY (trace_id, id)
            TTL ts + INTERVAL {ttl_days} DAY
            SETTINGS index_granularity = 256, ttl_only_drop_parts = 1
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.traces (
                ts DateTime CODEC(Delta, ZSTD(1)),
                trace_id String CODEC(ZSTD(1)),
                revision UInt32,
                start_time Float64,
                end_time Float64,
                duration Float64,
                response_time Float64,
                has_fault UInt8,
                has_error UInt8,
                has_throttle UInt8,
                is_partial UInt8,
                http_method LowCardinality(String),
                http_url String CODEC(ZSTD(1)),
                http_status UInt16,
                user_agent String CODEC(ZSTD(1)),
                client_ip String CODEC(ZSTD(1)),
                entry_name LowCardinality(String),
                entry_type LowCardinality(String),
                service_names Array(LowCardinality(String)),
                service_types Array(LowCardinality(String)),
                users Array(String),
                resource_arns Array(String),
                ann_keys Array(String),
                ann_types Array(UInt8),
                ann_strings Array(String),
                ann_numbers Array(Float64),
                segment_count UInt32,
                details String CODEC(ZSTD(3))
            ) ENGINE = ReplacingMergeTree(revision)
            PARTITION BY toYYYYMMDD(ts)
            ORDER BY (ts, trace_id)
            TTL ts + INTERVAL {ttl_days} DAY
            SETTINGS ttl_only_drop_parts = 1
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.node_stats (
                minute DateTime,
                name String,
                type LowCardinality(String),
                is_root UInt8,
                inferred UInt8,
"""
            + STAT_COLUMNS
            + """
            ) ENGINE = AggregatingMergeTree
            PARTITION BY toYYYYMMDD(minute)
            ORDER BY (minute, name, type, is_root, inferred)
            TTL minute + INTERVAL {ttl_days} DAY
            SETTINGS ttl_only_drop_parts = 1
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.edge_stats (
                minute DateTime,
                src_name String,
                src_type LowCardinality(String),
                dst_name String,
                dst_type LowCardinality(String),
"""
            + STAT_COLUMNS
            + """
            ) ENGINE = AggregatingMergeTree
            PARTITION BY toYYYYMMDD(minute)
            ORDER BY (minute, src_name, src_type, dst_name, dst_type)
            TTL minute + INTERVAL {ttl_days} DAY
            SETTINGS ttl_only_drop_parts = 1
            """,
        ),
    ),
)

TABLE_MIGRATIONS += (
    (
        2,
        "per-service facts, exceptions, instances and zones on trace summaries (for filters)",
        tuple(
            f"ALTER TABLE {{db}}.traces ADD COLUMN IF NOT EXISTS {column}"
            for column in (
                "svc_bits Array(UInt8)",
                "svc_root Array(UInt8)",
                "svc_inferred Array(UInt8)",
                "svc_min_rt Array(Float64)",
                "svc_max_rt Array(Float64)",
                "exc_types Array(String)",
                "exc_messages Array(String)",
                "exc_services Array(Int16)",
                "instance_ids Array(String)",
                "zones Array(String)",
            )
        ),
    ),
)

TABLE_MIGRATIONS += (
    (
        3,
        "groups",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.groups (
                name String,
                filter_expression String,
                has_filter UInt8,
                insights_enabled UInt8,
                notifications_enabled UInt8,
                deleted UInt8,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY name
            """,
        ),
    ),
)

TABLE_MIGRATIONS += (
    (
        4,
        "calls between services on trace summaries (for edge() filters)",
        tuple(
            f"ALTER TABLE {{db}}.traces ADD COLUMN IF NOT EXISTS {column}"
            for column in (
                "edge_src Array(UInt16)",
                "edge_dst Array(UInt16)",
                "edge_bits Array(UInt8)",
                "edge_min_rt Array(Float64)",
                "edge_max_rt Array(Float64)",
            )
        ),
    ),
)

TABLE_MIGRATIONS += (
    (
        5,
        "root causes on trace summaries, one item per service, entity or exception",
        tuple(
            f"ALTER TABLE {{db}}.traces ADD COLUMN IF NOT EXISTS {column}"
            for column in (
                "rc_cat Array(UInt8)",
                "rc_level Array(UInt8)",
                "rc_name Array(String)",
                "rc_type Array(String)",
                "rc_message Array(String)",
                "rc_remote Array(UInt8)",
                "rc_inferred Array(UInt8)",
                "rc_coverage Array(Float64)",
            )
        ),
    ),
)

TABLE_MIGRATIONS += (
    (
        6,
        "each service's account id on trace summaries (for id(account.id: ...) filters)",
        (
            # Rows written before this migration compute it from their details JSON on
            # read (and merges write it down); ingest writes it from now on.
            "ALTER TABLE {db}.traces ADD COLUMN IF NOT EXISTS service_accounts Array(String) "
            "DEFAULT arrayMap(t -> t.3, "
            "JSONExtract(details, 's', 'Array(Tuple(String, String, String))'))",
        ),
    ),
)

TABLE_MIGRATIONS += (
    (
        7,
        "per-group service-graph statistics aggregated at ingest",
        (
            # The tracked groups (name, filter fingerprint) a trace counted in when this
            # revision was written: what to retract when it stops matching.
            "ALTER TABLE {db}.traces ADD COLUMN IF NOT EXISTS groups Array(String)",
            """
            CREATE TABLE IF NOT EXISTS {db}.group_tracking (
                name String,
                fingerprint String,
                since Float64,
                active UInt8,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (name, fingerprint)
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.group_node_stats (
                group_key String,
                minute DateTime,
                name String,
                type LowCardinality(String),
                is_root UInt8,
                inferred UInt8,
"""
            + STAT_COLUMNS
            + """
            ) ENGINE = AggregatingMergeTree
            PARTITION BY toYYYYMMDD(minute)
            ORDER BY (group_key, minute, name, type, is_root, inferred)
            TTL minute + INTERVAL {ttl_days} DAY
            SETTINGS ttl_only_drop_parts = 1
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.group_edge_stats (
                group_key String,
                minute DateTime,
                src_name String,
                src_type LowCardinality(String),
                dst_name String,
                dst_type LowCardinality(String),
"""
            + STAT_COLUMNS
            + """
            ) ENGINE = AggregatingMergeTree
            PARTITION BY toYYYYMMDD(minute)
            ORDER BY (group_key, minute, src_name, src_type, dst_name, dst_type)
            TTL minute + INTERVAL {ttl_days} DAY
            SETTINGS ttl_only_drop_parts = 1
            """,
        ),
    ),
)

TABLE_MIGRATIONS += (
    (
        8,
        "smaller compressed blocks for the spans columns a trace lookup reads beside doc",
        # A lookup by trace id reads one granule, but the engine decompresses the whole
        # block holding it; these columns' blocks held 8-256 granules. Measured on 10M
        # spans in one part: 2.98 -> 2.55 ms p50 per lookup, +1.2 % bytes on disk. New
        # parts get the smaller blocks; merges rewrite older ones.
        tuple(
            Tuning(
                f"ALTER TABLE {{db}}.spans MODIFY COLUMN {column} MODIFY SETTING "
                "min_compress_block_size = 4096, max_compress_block_size = 16384"
            )
            for column in ("ts", "trace_id", "parent_id", "is_segment", "version")
        ),
    ),
)

TABLE_MIGRATIONS += (
    (
        9,
        "spans and trace summaries merged one column at a time",
        # A horizontal merge holds compression buffers for every column of every part
        # it merges at once: the engine's tracked memory peaked at 369-421 MB merging
        # trace summaries (60 columns) under a steady insert load, against 51-73 MB
        # merged vertically, with no measurable difference in CPU (5 runs each, 60k
        # traces in 700-trace rounds); the server's RSS at 10k documents/s fell by
        # ~95 MB. The result on disk is the same.
        tuple(
            Tuning(
                f"ALTER TABLE {{db}}.{table} MODIFY SETTING "
                "vertical_merge_algorithm_min_rows_to_activate = 1, "
                "vertical_merge_algorithm_min_columns_to_activate = 1"
            )
            for table in ("spans", "traces")
        ),
    ),
)

TABLE_MIGRATIONS += (
    (
        11,
        "sampling rules, and the API's settings (tags, policies, encryption, indexing)",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.sampling_rules (
                name String,
                rule String,
                deleted UInt8,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY name
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.api_settings (
                kind LowCardinality(String),
                key String,
                value String,
                deleted UInt8,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (kind, key)
            """,
        ),
    ),
)
