"""What each column's codec costs the write path, and what it saves on disk.

Every insert writes each column of ``spans`` and ``traces`` compressed with its codec,
and every merge level decompresses and compresses it again. This benchmark loads
``--spans`` spans through the real write path (``benchmarks/query.py``'s load: its mix,
its trace summaries), merges each table to one part, then for each variant of the
columns' codecs writes a copy of the table with them the way the store does:

* ``write``: ``INSERT INTO copy SELECT * FROM table`` (one thread): reading the stored
  rows, then compressing and writing every column once, as an insert does;
* ``merge``: ``OPTIMIZE TABLE copy FINAL``: decompressing and compressing every column
  once more, as a merge level does;
* ``bytes``: the merged copy's bytes on disk per span (the table, and each column the
  variant changes).

The reference is the same copy with the schema's codecs, written in the same run
alternately with the variant's (``--reps`` of each, the least CPU of each kept: this
process's CPU from ``getrusage``, which counts the engine's threads). Figures are per
span stored; a document of ``benchmarks/ingest.py``'s mix is ~2.5 spans, and the ingest
stream writes a trace's summary row once per revision (there ~0.55 per document), so a
``traces`` figure per span understates the stream's by about that ratio.

``--stream DOCS`` measures per document of the ingest stream instead: ``DOCS`` documents
of ``benchmarks/ingest.py``'s mix, merged and encoded as the ingest worker does
(``benchmarks/engine_write.py``'s rounds of 2,000), inserted with the tables' merges
stopped, so a copy's write holds every row the inserts wrote (each revision of a trace's
summary) and its merge collapses them as the engine's merges do.

Usage: ``python benchmarks/codecs.py [--spans 1000000 | --stream 60000] [--reps 3]
[--variant NAME]... [--reuse DIR]`` (``DIR``: a store ``benchmarks/query.py --keep DIR``
loaded; it is merged to one part per table). Never run by pytest.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fluoroscope
from benchmarks.engine_write import load_rounds, make_rounds
from benchmarks.query import load
from fluoroscope.store.store import Store
from fluoroscope.store.transport import Transport

Change = tuple[str, str, str]  # table, column, codec

_SPAN_NUMBERS: Final = ("ts", "start_time", "end_time", "version", "is_segment", "flags",
                        "http_status")  # fmt: skip
_TRACE_NUMBERS: Final = ("start_time", "end_time", "duration", "response_time", "svc_min_rt",
                         "svc_max_rt", "edge_min_rt", "edge_max_rt", "ann_numbers")  # fmt: skip

VARIANTS: Final[dict[str, tuple[Change, ...]]] = {
    "details ZSTD(1)": (("traces", "details", "ZSTD(1)"),),
    "details ZSTD(3)": (("traces", "details", "ZSTD(3)"),),
    "details LZ4": (("traces", "details", "LZ4"),),
    "doc LZ4": (("spans", "doc", "LZ4"),),
    "doc ZSTD(3)": (("spans", "doc", "ZSTD(3)"),),
    "spans numbers LZ4": tuple(("spans", c, "LZ4") for c in _SPAN_NUMBERS),
    "spans ids LZ4": tuple(("spans", c, "LZ4") for c in ("trace_id", "id", "parent_id")),
    "spans times Gorilla": (
        ("spans", "start_time", "Gorilla, ZSTD(1)"),
        ("spans", "end_time", "Gorilla, ZSTD(1)"),
    ),
    "spans end_time Delta": (("spans", "end_time", "Delta, ZSTD(1)"),),
    "spans version T64": (("spans", "version", "T64, ZSTD(1)"),),
    "spans version Delta": (("spans", "version", "Delta, ZSTD(1)"),),
    "spans ts DoubleDelta": (("spans", "ts", "DoubleDelta, ZSTD(1)"),),
    "traces numbers LZ4": tuple(("traces", c, "LZ4") for c in _TRACE_NUMBERS),
    "traces times Delta": (
        ("traces", "start_time", "Delta, ZSTD(1)"),
        ("traces", "end_time", "Delta, ZSTD(1)"),
    ),
    "traces rt Gorilla": (
        ("traces", "duration", "Gorilla, ZSTD(1)"),
        ("traces", "response_time", "Gorilla, ZSTD(1)"),
    ),
    "traces counts T64": (
        ("traces", "revision", "T64, ZSTD(1)"),
        ("traces", "segment_count", "T64, ZSTD(1)"),
    ),
    # the floor of what any codec choice could save: the cheapest codec on every column
    "spans all LZ4": (("spans", "*", "LZ4"),),
    "traces all LZ4": (("traces", "*", "LZ4"),),
}
"""Each variant: the codecs it gives columns of ``spans`` and ``traces`` (``*``: every
column of the table)."""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_copy(
    t: Transport, db: str, table: str, changes: tuple[Change, ...]
) -> tuple[float, float]:
    """Write ``table``'s rows into a new copy with ``changes``' codecs, then merge it:
    the CPU seconds of each."""
    copy = f"`{db}`.codec_copy"
    t.execute(f"DROP TABLE IF EXISTS {copy}")
    t.execute(f"CREATE TABLE {copy} AS `{db}`.{table}")
    t.execute(f"SYSTEM STOP MERGES {copy}")
    if changes and changes[0][1] == "*":
        columns = t.query_arrow(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
            {"db": db, "t": table},
        ).column(0)
        changes = tuple((table, str(c), changes[0][2]) for c in columns.to_pylist())
    if changes:
        t.execute(
            f"ALTER TABLE {copy} "
            + ", ".join(f"MODIFY COLUMN {column} CODEC({codec})" for _, column, codec in changes)
        )
    start = _cpu()
    t.execute(
        f"INSERT INTO {copy} SELECT * FROM `{db}`.{table} "
        "SETTINGS max_insert_threads = 1, max_threads = 1"
    )
    written = _cpu() - start
    t.execute(f"SYSTEM START MERGES {copy}")
    start = _cpu()
    t.execute(f"OPTIMIZE TABLE {copy} FINAL")
    return written, _cpu() - start


def copy_bytes(t: Transport, db: str) -> dict[str, int]:
    """The merged copy's bytes on disk (``""``) and each column's compressed bytes."""
    params = {"db": db}
    total = t.query_arrow(
        "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = {db:String} "
        "AND table = 'codec_copy' AND active",
        params,
    ).column(0)[0]
    out = {"": int(total.as_py())}
    for row in t.query_arrow(
        "SELECT column, sum(column_data_compressed_bytes) AS b FROM system.parts_columns "
        "WHERE database = {db:String} AND table = 'codec_copy' AND active GROUP BY column",
        params,
    ).to_pylist():
        out[row["column"]] = int(row["b"])
    return out


def measure(
    t: Transport, db: str, table: str, changes: tuple[Change, ...], reps: int
) -> dict[bool, tuple[float, float, dict[str, int]]]:
    """Reference (``True``, the schema's codecs) and variant copies, alternated ``reps``
    times: the least write and merge CPU of each, and their bytes."""
    best: dict[bool, list[float]] = {True: [1e9, 1e9], False: [1e9, 1e9]}
    sizes: dict[bool, dict[str, int]] = {}
    for rep in range(reps):
        for reference in (True, False) if rep % 2 == 0 else (False, True):
            written, merged = write_copy(t, db, table, () if reference else changes)
            best[reference][0] = min(best[reference][0], written)
            best[reference][1] = min(best[reference][1], merged)
            sizes[reference] = copy_bytes(t, db)
    t.execute(f"DROP TABLE IF EXISTS `{db}`.codec_copy")
    return {k: (v[0], v[1], sizes[k]) for k, v in best.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3, help="copies of each side per variant")
    parser.add_argument("--variant", action="append", choices=sorted(VARIANTS),
                        help="measure only these (repeatable; default: all)")  # fmt: skip
    parser.add_argument("--reuse", type=Path, help="a store benchmarks/query.py --keep loaded")
    parser.add_argument("--stream", type=int, help="figures per document of this many "
                        "documents of the ingest stream")  # fmt: skip
    args = parser.parse_args(argv)
    data_dir = args.reuse or Path(tempfile.mkdtemp(prefix="fluoroscope-codecs-"))
    try:
        if args.stream:
            docs = make_rounds(data_dir, args.stream, 2_000, 10_000.0)
            store = Store.open("chdb", data_dir / "prep", 30)  # make_rounds' store
            t, db = store.transport, store.database
            for table in ("spans", "traces"):
                t.execute(f"SYSTEM STOP MERGES `{db}`.{table}")
            for _, tables in load_rounds(data_dir):
                store.insert_tables(tables)
        else:
            store = Store.open("chdb", data_dir, 30)
            t, db = store.transport, store.database
            if not args.reuse:
                start = time.monotonic()
                loaded = load(store, args.spans, 20_000, 1, 7)
                print(f"loaded {loaded.spans:,} spans ({loaded.docs:,} documents) in "
                      f"{time.monotonic() - start:.0f} s")  # fmt: skip
            for table in ("spans", "traces"):
                t.execute(f"OPTIMIZE TABLE `{db}`.{table} FINAL")
        spans = int(t.query_arrow(f"SELECT count() FROM `{db}`.spans").column(0)[0].as_py())
        unit = "doc" if args.stream else "span"
        per = docs if args.stream else spans
        print(f"{spans:,} spans" + (f" from {docs:,} documents" if args.stream else "")
              + f"; fluoroscope from {Path(fluoroscope.__file__).parent}")  # fmt: skip
        print(f"{'variant':<22} {'table':<7} {'write µs/' + unit:>19} {'merge µs/' + unit:>19} "
              f"{'bytes/' + unit:>19}  changed columns' bytes/{unit}")  # fmt: skip
        for name in args.variant or list(VARIANTS):
            changes = VARIANTS[name]
            for table in sorted({c[0] for c in changes}):
                mine = tuple(c for c in changes if c[0] == table)
                got = measure(t, db, table, mine, args.reps)
                (w0, m0, b0), (w1, m1, b1) = got[True], got[False]
                cols = " ".join(
                    f"{c}: {b0.get(c, 0) / per:.2f} -> {b1.get(c, 0) / per:.2f}"
                    for _, c, _ in mine
                    if c != "*"
                )
                print(f"{name:<22} {table:<7} "
                      f"{w0 * 1e6 / per:5.2f} -> {w1 * 1e6 / per:5.2f} ({(w1 - w0) * 1e6 / per:+5.2f}) "
                      f"{m0 * 1e6 / per:5.2f} -> {m1 * 1e6 / per:5.2f} ({(m1 - m0) * 1e6 / per:+5.2f}) "
                      f"{b0[''] / per:5.1f} -> {b1[''] / per:5.1f} ({(b1[''] - b0['']) / per:+5.2f})  "
                      f"{cols}", flush=True)  # fmt: skip
        store.close()
    finally:
        if not args.reuse:
            shutil.rmtree(data_dir, ignore_errors=True)
    load_avg = os.getloadavg()
    print(f"load average: {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}; reference: "
          f"the same copy with the schema's codecs, alternated with each variant's")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
