"""The schema's second era, migrations 17-35 (the log store's in between are in
:mod:`fluoroscope.store.logschema`): the same data in fewer bytes and for less CPU.
Codecs for every column (17, 23, 24, 34) and, on the embedded engine, the compression
handed to its configuration (33); smaller compressed blocks for what a trace lookup reads
(22, 24); the service graph's statistics per minute, 10 minutes and hour in one table
(23), tracked groups' in one table (28); a start-time index on the summaries (25), a
trace-id bloom filter on the spans (35); merge and part-removal settings (26, 30, 32). Each migration's comment gives the figures it was
chosen by. :mod:`fluoroscope.store.schema` joins these to the other eras' in version
order; published migrations never change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from fluoroscope.store.graphstats import backfill_sql, group_backfill_sql
from fluoroscope.store.logschema import LOG_COLUMNS_WITHOUT_CODEC, MERGING_LOG_TABLES
from fluoroscope.store.tableschema import STAT_COLUMNS
from fluoroscope.store.tuning import EngineCompression, Tuning

__all__ = [
    "DOC_BLOCK_BYTES",
    "LAYOUT_MIGRATIONS",
    "SPANS_BY_ENGINE",
    "TRACES_BY_ENGINE",
    "TRACE_ID_BLOOM",
]

LAYOUT_MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = ()

# Measured per column on disk (benchmarks/query.py at 200k spans, one merged part; bytes
# per span): the summaries' arrays and numbers had no codec (LZ4: svc_min_rt 3.63 ->
# 2.19 with ZSTD(1), instance_ids 1.92 -> 1.07, ann_strings 1.14 -> 0.41), a span's
# small columns likewise (name 0.94 -> 0.50, http_status 0.62 -> 0.27); start times,
# close within a trace (the key's order), shrink under Delta (3.13 -> 1.98). All tables:
# 131.0 -> ~116 bytes per span. The JSON columns keep ZSTD(3): at ZSTD(6) doc took 60.4
# -> 57.0 and details 5.21 -> 3.97, but the insert into spans cost ~70 % more CPU
# (benchmarks/ingest_cpu.py, process CPU per document: 11.0 -> 18.8 µs). A codec is
# metadata: existing parts stay as written and readable; new parts and merges take it.
_SPAN_CODECS: Final = (
    ("start_time", "Delta, ZSTD(1)"),
    *(
        (c, "ZSTD(1)")
        for c in ("name", "origin", "namespace", "is_segment", "flags", "http_status")
    ),
)
_TRACE_ZSTD1: Final = (
    "start_time", "end_time", "duration", "response_time", "has_fault", "has_error",
    "has_throttle", "is_partial", "http_method", "http_status", "entry_name", "entry_type",
    "service_names", "service_types", "users", "resource_arns", "ann_keys", "ann_types",
    "ann_strings", "ann_numbers", "segment_count", "svc_bits", "svc_root", "svc_inferred",
    "svc_min_rt", "svc_max_rt", "exc_types", "exc_messages", "exc_services", "instance_ids",
    "zones", "edge_src", "edge_dst", "edge_bits", "edge_min_rt", "edge_max_rt", "rc_cat",
    "rc_level", "rc_name", "rc_type", "rc_message", "rc_remote", "rc_inferred", "rc_coverage",
    "service_accounts", "groups",
)  # fmt: skip


def _modify_columns(table: str, columns: Iterable[str], change: str) -> str:
    """One ``ALTER TABLE {db}.<table>`` statement giving each of ``columns`` the same
    ``change`` (e.g. ``CODEC(ZSTD(1))``, ``REMOVE CODEC``); ``{db}`` is filled at migration."""
    return f"ALTER TABLE {{db}}.{table} " + ", ".join(
        f"MODIFY COLUMN {c} {change}" for c in columns
    )


LAYOUT_MIGRATIONS += (
    (
        17,
        "spans and trace summaries in fewer bytes: codecs for every column",
        (
            Tuning(
                "ALTER TABLE {db}.spans "
                + ", ".join(f"MODIFY COLUMN {c} CODEC({codec})" for c, codec in _SPAN_CODECS)
            ),
            Tuning(_modify_columns("traces", _TRACE_ZSTD1, "CODEC(ZSTD(1))")),
        ),
    ),
)

LAYOUT_MIGRATIONS += (
    (
        22,
        "smaller compressed blocks for the spans columns that now restore a document's fields",
        # Documents are stored without their id, end time, and a segment's trace and
        # parent ids (store/spandoc.py): a lookup by trace id reads them from these
        # columns, which, like migration 8's, then decompress one small block per granule
        # instead of a block holding 8-256 granules (measured on 1M spans, one part: the
        # three extra columns cost 1.0 ms more per lookup in default blocks, 0.34 ms in
        # these). New parts get them; merges rewrite older ones.
        tuple(
            Tuning(
                f"ALTER TABLE {{db}}.spans MODIFY COLUMN {column} MODIFY SETTING "
                "min_compress_block_size = 4096, max_compress_block_size = 16384"
            )
            for column in ("id", "end_time")
        ),
    ),
)

DOC_BLOCK_BYTES: Final = 131072
"""The smallest compressed block of ``spans.doc`` (migration 24)."""

_STAT_NAMES: Final = (
    "total", "ok", "errors", "throttles", "faults", "response_time", "first_start",
    "last_end", "histogram",
)  # fmt: skip
_NODE_KEYS: Final = ("minute", "name", "type", "is_root", "inferred")
_EDGE_KEYS: Final = ("minute", "src_name", "src_type", "dst_name", "dst_type")
_STAT_TABLE_COLUMNS: Final = (
    ("node_stats", _NODE_KEYS + _STAT_NAMES),
    ("edge_stats", _EDGE_KEYS + _STAT_NAMES),
    ("group_node_stats", ("group_key", *_NODE_KEYS, *_STAT_NAMES)),
    ("group_edge_stats", ("group_key", *_EDGE_KEYS, *_STAT_NAMES)),
    (
        "graph_stats",
        (
            "step",
            "bucket",
            "kind",
            "name",
            "type",
            "dst_name",
            "dst_type",
            "is_root",
            "inferred",
            *_STAT_NAMES,
        ),
    ),
)

LAYOUT_MIGRATIONS += (
    (
        23,
        "the service graph's statistics per minute, 10 minutes and hour, in one table",
        # A 6-hour graph summed ~20k per-minute rows of node_stats and edge_stats in two
        # statements, merging their histograms entry by entry (measured on 1M spans:
        # 30-35 ms); graph_stats answers it from <= 33 rows per node and edge in one
        # statement (store/graphstats.py). Small granules: a window reads its rows, not
        # the 8192-row granules around them. Filled here from the minutes stored so far.
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.graph_stats (
                step UInt32,
                bucket DateTime,
                kind UInt8,
                name String,
                type LowCardinality(String),
                dst_name String,
                dst_type LowCardinality(String),
                is_root UInt8,
                inferred UInt8,
"""
            + STAT_COLUMNS
            + """
            ) ENGINE = AggregatingMergeTree
            PARTITION BY toYYYYMMDD(bucket)
            ORDER BY (step, bucket, kind, name, type, dst_name, dst_type, is_root, inferred)
            TTL bucket + INTERVAL {ttl_days} DAY
            SETTINGS index_granularity = 256, ttl_only_drop_parts = 1
            """,
            backfill_sql("node"),
            backfill_sql("edge"),
            # Measured on 1M spans, one merged part each (bytes per span): the statistics
            # tables had no codec (LZ4): graph_stats 2.61 -> 1.51 with ZSTD(1), node_stats
            # 0.98 -> 0.54; they hold few rows, so compressing harder costs ingest little.
            *(
                Tuning(_modify_columns(table, columns, "CODEC(ZSTD(1))"))
                for table, columns in _STAT_TABLE_COLUMNS
            ),
        ),
    ),
)

LAYOUT_MIGRATIONS += (
    (
        24,
        "spans and trace summaries in fewer bytes: documents in larger blocks, without start times",
        # Measured on 1M spans, one merged part each (bytes per span): doc 40.1 -> 33.7
        # without its start time (store/spandoc.py; a lookup by trace id reads it from the
        # start_time column, kept in small blocks like migration 22's), -> 31.3 in blocks
        # of >= 128 KiB at ZSTD(1) (each held one or two 256-row granules, too little for
        # the documents' shared structure; ZSTD(3) in them: 31.6, and compresses slower);
        # details 5.2 -> 4.0 at ZSTD(6) (one row per trace revision: a fifth of doc's
        # bytes to compress). A codec or a column's block size is metadata: existing parts
        # stay as written and readable; new parts and merges (OPTIMIZE) take it.
        (
            Tuning("ALTER TABLE {db}.spans MODIFY COLUMN doc CODEC(ZSTD(1))"),
            Tuning(
                "ALTER TABLE {db}.spans MODIFY COLUMN doc MODIFY SETTING "
                f"min_compress_block_size = {DOC_BLOCK_BYTES}"
            ),
            Tuning(
                "ALTER TABLE {db}.spans MODIFY COLUMN start_time MODIFY SETTING "
                "min_compress_block_size = 4096, max_compress_block_size = 16384"
            ),
            Tuning("ALTER TABLE {db}.traces MODIFY COLUMN details CODEC(ZSTD(6))"),
        ),
    ),
)

LAYOUT_MIGRATIONS += (
    (
        25,
        "a minmax index on the summaries' start time, so a page reads only its slice",
        # A page of summaries is read in slices of its window from the newest
        # (store/slices.py); this index lets the engine skip the granules outside a slice
        # (ordered by (ts, trace_id), a granule's start times span seconds). With FINAL the
        # engine uses it in its exact mode, reading every other version of the rows kept.
        # Parts written before get the index in the background; until then they are
        # read whole, with the same result.
        (
            Tuning(
                "ALTER TABLE {db}.traces ADD INDEX IF NOT EXISTS start_time_minmax start_time "
                "TYPE minmax GRANULARITY 1"
            ),
            Tuning("ALTER TABLE {db}.traces MATERIALIZE INDEX start_time_minmax"),
        ),
    ),
)

LAYOUT_MIGRATIONS += (
    (
        26,
        "spans and trace summaries merged in wider steps: a row is rewritten fewer times",
        # The engine merges parts of similar size, up to merge_selector_base of them at a
        # time (5 by default): every row is rewritten about once per level of a
        # partition's parts, so each document cost ~31 us of merging besides its ~18 us
        # of inserts (benchmarks/ingest_cpu.py's store, 600k documents at 10,000/s in
        # rounds of 7,500). Merging 12 at a time takes a level in about 1.5 and halved
        # that: ~17 us. A partition then holds up to about twice the parts (16 against 8
        # in that run); a lookup by trace id reads the parts whose times cover the
        # trace's (about one per level), and a page of summaries reads its slice's.
        # Metadata only: the engine's next merges take it.
        (
            Tuning("ALTER TABLE {db}.spans MODIFY SETTING merge_selector_base = 12"),
            Tuning("ALTER TABLE {db}.traces MODIFY SETTING merge_selector_base = 12"),
        ),
    ),
)

LAYOUT_MIGRATIONS += (
    (
        28,
        "tracked groups' node and edge statistics in one table",
        # Each insert statement costs the engine a fixed 5-9 ms of CPU however few its
        # rows (docs/scaling.md): while a group is tracked, every insert round wrote a
        # few dozen rows into each of group_node_stats and group_edge_stats. Nodes and
        # edges now go into one table as graph_stats holds them (kind 0 a node, 1 an
        # edge; store/graphstats.py), keyed by group first as before, so a group's
        # graph reads its own rows. Filled here from the two tables as written so far
        # (they are written no more).
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.group_graph_stats (
                group_key String CODEC(ZSTD(1)),
                minute DateTime CODEC(ZSTD(1)),
                kind UInt8 CODEC(ZSTD(1)),
                name String CODEC(ZSTD(1)),
                type LowCardinality(String) CODEC(ZSTD(1)),
                dst_name String CODEC(ZSTD(1)),
                dst_type LowCardinality(String) CODEC(ZSTD(1)),
                is_root UInt8 CODEC(ZSTD(1)),
                inferred UInt8 CODEC(ZSTD(1)),
"""
            + STAT_COLUMNS.replace(",\n", " CODEC(ZSTD(1)),\n")
            + " CODEC(ZSTD(1))"
            + """
            ) ENGINE = AggregatingMergeTree
            PARTITION BY toYYYYMMDD(minute)
            ORDER BY (group_key, minute, kind, name, type, dst_name, dst_type, is_root, inferred)
            TTL minute + INTERVAL {ttl_days} DAY
            SETTINGS ttl_only_drop_parts = 1
            """,
            group_backfill_sql("node"),
            group_backfill_sql("edge"),
        ),
    ),
)

LAYOUT_MIGRATIONS += (
    (
        30,
        "spans and trace summaries without the engine's automatic column statistics",
        # chDB 26.5 merges every part with statistics (minmax and uniq sketches) of every
        # column, auto_statistics_types' default there (inserts write none). The engine
        # may use them to order a PREWHERE or skip a part by a column's range; what a
        # query returns never depends on them, and this store's reads select by primary
        # key, partition and migration 25's start-time index (benchmarks/query.py at 1M
        # spans against main, same session, load 8-13: latencies within the noise).
        # Measured against main (benchmarks/engine_write.py): merges 15.4 -> 13.3 us a
        # document at 100,000 documents (3 pairs, load 9-11), 15.3 -> 14.6 at 300,000 (2
        # pairs, load 4-7); one 12-part merge of 90,000 documents, 4 pairs, load 3.7:
        # 18.0 -> 17.3. Small in CPU; in bytes, a merged part's statistics file was a
        # quarter of it at 37,000 spans: 79.0 -> 75.7 bytes a span at 1M spans once merged
        # (query.py). Metadata only: parts written before keep their statistics until the
        # engine next merges them.
        (
            Tuning("ALTER TABLE {db}.spans MODIFY SETTING auto_statistics_types = ''"),
            Tuning("ALTER TABLE {db}.traces MODIFY SETTING auto_statistics_types = ''"),
        ),
    ),
)

LAYOUT_MIGRATIONS += (
    (
        32,
        "outdated parts removed one at a time, not by a burst of 128 new engine threads",
        # When a table has at least concurrent_part_removal_threshold (100) inactive parts
        # to remove, the engine removes them on its parts-cleaning pool, which starts up to
        # 128 threads at once and keeps them. In the server at 10,000 documents/s offered
        # (benchmarks/ingest.py --duration 100-120, idle, threads and RSS read from /proc
        # every 4 s) that burst came ~85 s in, from a background-schedule thread (perf,
        # clone3): threads 40 -> 167, the server's anonymous memory 85 -> ~300-335 MB and
        # climbing, all processes' RSS at the largest 751-793 MB; with this setting threads
        # stayed at 40, anonymous memory 140-220 MB, RSS at the largest 696 MB. Parts are
        # removed in one thread instead; nothing read depends on it. Metadata only.
        tuple(
            Tuning(
                f"ALTER TABLE {{db}}.{table} MODIFY SETTING "
                "concurrent_part_removal_threshold = 1000000000"
            )
            for table in (
                "spans",
                "traces",
                "graph_stats",
                "group_graph_stats",
                *MERGING_LOG_TABLES,
            )
        ),
    ),
)

SPANS_BY_ENGINE: Final = (
    "trace_id", "id", "parent_id", "end_time", "version", "name", "origin", "namespace",
    "is_segment", "flags", "http_status", "doc",
)  # fmt: skip
"""The spans columns compressed by the engine's configuration since migration 33."""
TRACES_BY_ENGINE: Final = ("trace_id", "http_url", "user_agent", "client_ip", *_TRACE_ZSTD1)
"""The summaries' columns compressed by the engine's configuration since migration 33."""

LAYOUT_MIGRATIONS += (
    (
        33,
        "spans and trace summaries written in LZ4 until merged into large parts",
        # Every row is written by an insert, then rewritten about once per level of its
        # day's parts; a plain ZSTD(1) codec compressed it that hard every time. Without
        # it, the engine's <compression> section (store/transport.py COMPRESSION_CONFIG)
        # writes LZ4 at insert and in small merges and ZSTD(1) once a merge reads at least
        # COMPRESSION_MIN_PART_BYTES: the same bytes once merged. Measured with
        # benchmarks/engine_write.py --docs 1000000 --batch 4000 --rate 15000 against the
        # code before (one pair each, load 2-10): the inserting thread 15.8 -> 12.8 and
        # 14.1 -> 12.1 us a document, the process 52.1 -> 48.4 and 48.7 -> 46.5 (merges
        # 33.6 -> 32.5 and, with the threshold at 32 MB, 32.0 -> 31.6: within the noise),
        # 98.5 bytes a span once merged either way. Codec chains (Delta, ZSTD), the
        # summaries' details (ZSTD(6)) and the statistics tables (whose parts stay under
        # the threshold: LZ4 would cost them bytes) keep theirs; the log tables' columns
        # without a codec are pinned to LZ4, as the engine wrote them before. Applied only
        # where the engine runs Fluoroscope's configuration (EngineCompression): on a
        # ClickHouse server the explicit codecs stay. Metadata only: parts written before
        # stay as they are until the engine next merges them.
        (
            EngineCompression(_modify_columns("spans", SPANS_BY_ENGINE, "REMOVE CODEC")),
            EngineCompression(_modify_columns("traces", TRACES_BY_ENGINE, "REMOVE CODEC")),
            *(
                EngineCompression(_modify_columns(table, columns, "CODEC(LZ4)"))
                for table, columns in LOG_COLUMNS_WITHOUT_CODEC
            ),
        ),
    ),
)

LAYOUT_MIGRATIONS += (
    (
        34,
        "trace summaries' details at ZSTD(1), now that they leave out what columns hold",
        # Migration 24 put details at ZSTD(6), the costliest codec the engine writes here,
        # and every merge of traces rewrites them. Written without what the row's columns
        # hold (store/details.py), they are ~30 % of the bytes (1M spans, query.py: 592 ->
        # 179 bytes a row before compression), and ZSTD(1) keeps the whole store under
        # 76 bytes a span: 75.8 -> 74.3 after OPTIMIZE FINAL, 76.9 -> 75.4 before (details
        # 3.90 -> 2.45). The engine's CPU a document (benchmarks/engine_write.py, 150k
        # documents at 15,000/s, 2 pairs against the code before, load 3-4): process 40.1
        # -> 36.5 µs, merges 22.0 -> 19.6; the codec alone (both sides slim) 40.0 -> 36.2.
        # Metadata only: parts written before stay as written; merges take it.
        (Tuning("ALTER TABLE {db}.traces MODIFY COLUMN details CODEC(ZSTD(1))"),),
    ),
)

TRACE_ID_BLOOM: Final = "trace_id_bloom"
"""The name of the spans' trace-id skip index (migration 35)."""

LAYOUT_MIGRATIONS += (
    (
        35,
        "a bloom filter on the spans' trace id, so a lookup skips the parts that do not hold it",
        # Spans are ordered by trace id, and an X-Ray id begins with its epoch: the id of
        # a fresh trace lies within the key range of every recent, not yet merged part
        # whose traces began in that second, and a lookup read a granule of each (13
        # files a part) though one or two hold it. The filter (one per 256-row granule)
        # lets the engine read only those, and nothing when the trace is not stored yet
        # (what a console following fresh traces, or the ingest benchmark's freshness
        # poller, mostly asks for). Measured on 375k spans in 25 unmerged parts, 5 traces
        # a lookup, the engine's and the caller's CPU per lookup, with the filter used or
        # not (use_skip_indexes) in one process, interleaved: all stored 6.5-7.7 -> 4.9-6.1
        # ms, 3 of 5 not stored 9.9-10.6 -> 6.7-7.2; 500k spans in 100 parts over 10 days,
        # half of the traces with random ids: one trace 4.6-5.9 -> 3.0-3.9. It costs
        # ~0.2-0.3 bytes a span. Parts written before get it in the background; until
        # then they are read as before.
        (
            Tuning(
                f"ALTER TABLE {{db}}.spans ADD INDEX IF NOT EXISTS {TRACE_ID_BLOOM} trace_id "
                "TYPE bloom_filter(0.01) GRANULARITY 1"
            ),
            Tuning(f"ALTER TABLE {{db}}.spans MATERIALIZE INDEX {TRACE_ID_BLOOM}"),
        ),
    ),
)
