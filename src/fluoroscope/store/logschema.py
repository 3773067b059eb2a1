"""The log store's migrations (10, 12, 13, 14, 19, 20, 31): its tables are described in
:mod:`fluoroscope.store.schema`, which joins these to the others in version order.
"""

from __future__ import annotations

from typing import Final

from fluoroscope.store.tuning import Tuning

__all__ = ["LOG_MIGRATIONS", "MERGING_LOG_TABLES"]

LOG_MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = ()

# The log store (CloudWatch Logs API). Every log table expires rows by their own
# ``retention_days`` (the group's retention when written; PutRetentionPolicy rewrites it
# with a mutation), so the server-wide TTL of ``schema.set_retention`` does not apply here.
_LOG_TTL: Final = "TTL toDateTime(ts) + toIntervalDay(retention_days)"
MERGING_LOG_TABLES: Final = ("log_events", "log_index", "log_requests", "log_stream_times")
"""The log tables every PutLogEvents writes to (the events, the indexes their views fill,
the stream times): their merges are what sustained log ingest pays (migrations 14, 31)."""

LOG_COLUMNS_WITHOUT_CODEC: Final = (
    ("log_events", ("log_group", "stream", "level", "type", "json_whole", "retention_days")),
    ("log_index", ("log_group", "stream", "retention_days")),
    ("log_requests", ("log_group", "stream", "retention_days")),
    (
        "log_stream_times",
        ("log_group", "stream", "first_event", "last_event", "last_ingestion", "events", "bytes",
         "through_seq"),
    ),
)  # fmt: skip
"""The merging log tables' columns that had no codec of their own (LZ4, the engine's
default) before migration 33: it pins them to LZ4 where the engine's ``<compression>``
section would write them in ZSTD(1) once merged, so log scans decompress as before."""

LOG_MIGRATIONS += (
    (
        10,
        "log groups, streams, events, their trace and request index, Lambda invocations",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.log_groups (
                name String,
                creation_time Int64,
                retention_days UInt16,
                log_group_class LowCardinality(String),
                kms_key_id String,
                tags String,
                deleted UInt8,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY name
            """,
            """
            CREATE TABLE IF NOT EXISTS {db}.log_streams (
                log_group String,
                name String,
                creation_time Int64,
                deleted UInt8,
                version UInt64
            ) ENGINE = ReplacingMergeTree(version)
            ORDER BY (log_group, name)
            """,
            # One row per event. A window over some groups reads only that window (the
            # key starts with the group, then the time; one partition per day). json is
            # the message's first JSON object: the message itself when it is one (no
            # second copy stored: json_whole = 1), else the part kept in json_text.
            """
            CREATE TABLE IF NOT EXISTS {db}.log_events (
                log_group LowCardinality(String),
                stream LowCardinality(String),
                ts DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
                ingest_ts DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
                seq UInt64 CODEC(ZSTD(1)),
                message String CODEC(ZSTD(3)),
                trace_id String CODEC(ZSTD(1)),
                segment_id String CODEC(ZSTD(1)),
                request_id String CODEC(ZSTD(1)),
                level LowCardinality(String),
                type LowCardinality(String),
                json_whole UInt8,
                json_text String CODEC(ZSTD(3)),
                json String ALIAS if(json_whole = 1, message, json_text),
                retention_days UInt16,
                INDEX log_stream stream TYPE bloom_filter(0.01) GRANULARITY 4
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMMDD(ts)
            ORDER BY (log_group, ts, seq)
            """
            + _LOG_TTL
            + "\nSETTINGS index_granularity = 1024\n",
            # The lines of one trace without scanning time: a row per event that carries a
            # trace id (key = the trace id, request_id = the request id it also carries)
            # or else a request id (key = 'r:' + request id), pointing at the event by
            # (log_group, ts, seq). A trace's lines: those under its key, and those under
            # 'r:' + each request id found there.
            """
            CREATE TABLE IF NOT EXISTS {db}.log_index (
                key String CODEC(ZSTD(1)),
                log_group LowCardinality(String),
                stream LowCardinality(String),
                request_id String CODEC(ZSTD(1)),
                ts DateTime64(3, 'UTC') CODEC(ZSTD(1)),
                seq UInt64 CODEC(ZSTD(1)),
                retention_days UInt16
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMMDD(ts)
            ORDER BY (key, log_group, ts, seq)
            """
            + _LOG_TTL
            + "\nSETTINGS index_granularity = 256\n",
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.log_index_mv TO {db}.log_index AS
            SELECT if(trace_id != '', trace_id, concat('r:', request_id)) AS key,
                log_group, stream, request_id, ts, seq, retention_days
            FROM {db}.log_events
            WHERE trace_id != '' OR request_id != ''
            """,
            # One row per Lambda invocation (or API Gateway request) whose trace is known:
            # what an application line carrying only the request id resolves its trace
            # through. Several lines may name the same invocation, collapsed by merges
            # within a day: read with any() per (log_group, stream, request_id), and
            # narrow by ts (one partition per day) to the window read plus some slack.
            """
            CREATE TABLE IF NOT EXISTS {db}.log_requests (
                log_group LowCardinality(String),
                stream LowCardinality(String),
                request_id String CODEC(ZSTD(1)),
                trace_id String CODEC(ZSTD(1)),
                segment_id String CODEC(ZSTD(1)),
                ts DateTime64(3, 'UTC') CODEC(ZSTD(1)),
                retention_days UInt16
            ) ENGINE = ReplacingMergeTree
            PARTITION BY toYYYYMMDD(ts)
            ORDER BY (log_group, stream, request_id)
            """
            + _LOG_TTL
            + "\n",
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.log_requests_mv TO {db}.log_requests AS
            SELECT log_group, stream, request_id, trace_id, segment_id, ts, retention_days
            FROM {db}.log_events
            WHERE request_id != '' AND trace_id != ''
            """,
            # firstEventTimestamp, lastEventTimestamp, lastIngestionTime per stream,
            # aggregated per insert block (read with min/max ... GROUP BY).
            """
            CREATE TABLE IF NOT EXISTS {db}.log_stream_times (
                log_group String,
                stream String,
                first_event SimpleAggregateFunction(min, DateTime64(3, 'UTC')),
                last_event SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
                last_ingestion SimpleAggregateFunction(max, DateTime64(3, 'UTC')),
                events SimpleAggregateFunction(sum, UInt64),
                bytes SimpleAggregateFunction(sum, UInt64)
            ) ENGINE = AggregatingMergeTree
            ORDER BY (log_group, stream)
            """,
            """
            CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.log_stream_times_mv
            TO {db}.log_stream_times AS
            SELECT log_group, stream, min(ts) AS first_event, max(ts) AS last_event,
                max(ingest_ts) AS last_ingestion, count() AS events,
                sum(length(message)) AS bytes
            FROM {db}.log_events
            GROUP BY log_group, stream
            """,
        ),
    ),
)

# Messages are read by every Logs Insights question about their text, so they are kept
# in LZ4, which decompresses ~3x faster than ZSTD: measured (benchmarks/logs.py; 1M
# events, CPU of the engine per query) `filter @message like /timeout/ | stats count()
# by bin(1m)` 112 -> 73 ms, a `parse` + `stats pct` 272 -> 209 ms, for 11.8 -> 23.0
# bytes per event of message on disk. New parts (and merges) take it.
LOG_MIGRATIONS += (
    (
        12,
        "log messages compressed with LZ4, for faster scans",
        (Tuning("ALTER TABLE {db}.log_events MODIFY COLUMN message String CODEC(LZ4)"),),
    ),
)

# Every question over a window of events reads its times (and an event query its seq):
# with ZSTD their decoding cost more than the messages' own filtering. Measured on 10M
# events over one hour (benchmarks/logs.py data, one part, engine CPU): reading ts
# 249 ms with Delta + ZSTD(1) (0.48 bytes per event), 92 ms with Delta + LZ4 (1.42
# bytes); seq 184 ms with ZSTD(1) (0.98 bytes), 48 ms with Delta + LZ4 (0.60 bytes);
# `filter @message like /timeout/ | stats count() by bin(1m)` 817 -> 550 ms CPU. New
# parts (and merges) take it.
LOG_MIGRATIONS += (
    (
        13,
        "log event times and sequence numbers in Delta + LZ4, for faster scans",
        (
            Tuning(
                "ALTER TABLE {db}.log_events MODIFY COLUMN ts DateTime64(3, 'UTC') "
                "CODEC(Delta, LZ4)"
            ),
            Tuning("ALTER TABLE {db}.log_events MODIFY COLUMN seq UInt64 CODEC(Delta, LZ4)"),
        ),
    ),
)

# Sustained ingest writes a part per insert in each log table, and the engine's merges
# rewrote each row many times over (parts of one day merged eagerly, five at a time):
# measured (40 inserts of 16,000 ~200-byte events, embedded engine, CPU of the process
# until the merges settle, interleaved) 12.0-14.8 -> 6.2-9.4 us per event with merges
# selected for a base of 20 (fewer, wider merges; a few more parts alive per day).
LOG_MIGRATIONS += (
    (
        14,
        "log tables merge fewer times per row, for cheaper sustained ingest",
        tuple(
            Tuning(f"ALTER TABLE {{db}}.{table} MODIFY SETTING merge_selector_base = 20")
            for table in MERGING_LOG_TABLES
        ),
    ),
)

# A trace's lines are found through log_index by key: each read decompresses, for every
# column it reads, the whole compressed block holding the key's granule - 64 KiB to
# 1 MiB of ZSTD by default, ~250 granules' worth of request ids for one granule of 256
# rows. Blocks of 4-8 KiB: measured (10M events over one hour, benchmarks/logs.py data,
# one part, 80 traces, interleaved) the two index reads of a trace's lines 9.0 / 8.9 ->
# 5.6 / 6.6 ms of engine CPU at p50, for 18.7 -> 20.3 bytes per event of log_index
# (16-32 KiB blocks: 7.4 / 6.9 ms, 19.1 bytes). New parts (and merges) take it.
LOG_MIGRATIONS += (
    (
        19,
        "the log trace index in small compressed blocks, for cheaper lookups",
        (
            Tuning(
                "ALTER TABLE {db}.log_index MODIFY SETTING min_compress_block_size = 4096, "
                "max_compress_block_size = 8192"
            ),
        ),
    ),
)

# The stream times were a materialized view's: a third part (10 files) and 1-3.5 ms of
# the engine's CPU on every PutLogEvents insert (measured in store/streamtimes.py),
# then the merges of those tiny parts. The store's writer now aggregates each insert itself and writes the
# rows at most once a second (store/streamtimes.py), each carrying the highest seq it
# covers, so a restarted process counts what its predecessor had not written yet.
LOG_MIGRATIONS += (
    (
        20,
        "log stream times written by the store, not by a view on every insert",
        (
            "DROP VIEW IF EXISTS {db}.log_stream_times_mv",
            "ALTER TABLE {db}.log_stream_times ADD COLUMN IF NOT EXISTS "
            "through_seq SimpleAggregateFunction(max, UInt64)",
        ),
    ),
)

# As migration 30 for spans and summaries: chDB 26.5 computes minmax and uniq sketches of
# every column at every merge (auto_statistics_types' default there); no query result
# depends on them. Measured on log_events (scratch, 480,000 Lambda-style events in 12
# parts, one OPTIMIZE FINAL each way, twice, idle machine): the merge 1.18-1.20 -> 0.75-0.80
# us of CPU an event, 74.2 -> 71.2 bytes an event on disk. The index tables the views fill
# merge the same way. Metadata only: the engine's next merges take it.
LOG_MIGRATIONS += (
    (
        31,
        "log tables merged without the engine's automatic column statistics",
        tuple(
            Tuning(f"ALTER TABLE {{db}}.{table} MODIFY SETTING auto_statistics_types = ''")
            for table in MERGING_LOG_TABLES
        ),
    ),
)
