"""The engine's own ceiling for sustained ingest: what storing one document costs in CPU.

Sustained ingest (DESIGN.md §7: >= 50,000 segments/s on 2 cores) needs, per document,
the engine's insert work (sorting, compressing, writing parts) and the background merges
that follow it, besides everything Python does. This measures the engine alone: documents
of the ingest benchmark's mix (``benchmarks/ingest.py``'s ``make_trace``: traces of 1-3
documents, ~2.5 entities each) are assembled and encoded into Arrow tables first, outside
the measurement, exactly as the ingest worker sends them; then the tables are inserted
into a fresh embedded store as fast as one thread can, and the process's CPU time (every
thread: the engine's insert pool and its merge threads included) is taken over the
inserts plus ``--settle`` seconds of the merges they cause.

Printed: documents/s the inserts reached (wall clock), engine CPU µs per document, and
the ceiling that CPU cost implies on 2 cores if the engine had both to itself - the most
this schema can sustain here whatever the rest costs - with its ratio to the target.
Reference, same run: ``orjson.loads`` of the same documents, µs per document.

``--doc-codec`` tries another codec for the largest column, ``spans.doc`` (bytes per entity
are printed too).

Usage: ``python benchmarks/store_ceiling.py [--docs 200000] [--batch 10000] [--settle 20]``.
Never run by pytest.
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import time
from pathlib import Path

import orjson

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ingest import TARGET_RATE
from benchmarks.ingest_cpu import make_bodies
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.ingest.heap import tune_gc
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.store import Store

CORES = 2


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200_000, help="documents to store")
    parser.add_argument("--batch", type=int, default=10_000, help="documents per insert")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds of merges counted")
    parser.add_argument(
        "--doc-codec", default="", help="try another codec for spans.doc, e.g. ZSTD(1) or LZ4"
    )
    args = parser.parse_args(argv)

    now = time.time()
    bodies = make_bodies(args.docs, now)
    gc.disable()  # as the ingest worker parses: no collections amid a batch's documents
    t = time.perf_counter()
    docs = [orjson.loads(b) for b in bodies]
    loads_us = (time.perf_counter() - t) / len(bodies) * 1e6
    gc.enable()
    tune_gc()
    with tempfile.TemporaryDirectory(prefix="fluoroscope-ceiling-") as tmp:
        store = Store.open("chdb", Path(tmp), 30)
        try:
            if args.doc_codec:
                store._t.execute(
                    f"ALTER TABLE `{store.database}`.spans MODIFY COLUMN doc String "
                    f"CODEC({args.doc_codec})"
                )
            assembler = Assembler(store, capacity=50_000, clock=lambda: now)
            batches = [
                encode_batch(assembler.assemble(docs[i : i + args.batch]))
                for i in range(0, len(docs), args.batch)
            ]
            del docs
            entities = sum(t.num_rows for b in batches for n, t in b if n == "spans")
            cpu0, wall0 = _cpu(), time.perf_counter()
            for tables in batches:
                store.insert_tables(tables)
            wall = time.perf_counter() - wall0
            cpu_insert = _cpu() - cpu0
            time.sleep(args.settle)  # the merges the inserts caused
            cpu_all = _cpu() - cpu0
            parts = store._t.query_arrow(
                "SELECT table, count() AS n, sum(bytes_on_disk) AS bytes FROM system.parts "
                "WHERE database = {db:String} AND active GROUP BY table ORDER BY table",
                {"db": store.database},
            ).to_pylist()
        finally:
            store.close()
    n = len(bodies)
    per_doc = cpu_all / n * 1e6
    ceiling = CORES * 1e6 / per_doc
    print(f"{n:,} documents ({entities / n:.2f} entities each) in batches of {args.batch:,}")
    print(f"reference: orjson.loads {loads_us:.2f} µs/document")
    print(f"inserts: {n / wall:,.0f} documents/s (wall, one thread)")
    print(
        f"engine CPU: {cpu_insert / n * 1e6:.1f} µs/document during the inserts, "
        f"{per_doc:.1f} µs/document with {args.settle:g} s of merges "
        f"({per_doc / loads_us:.1f}x orjson.loads)"
    )
    print(
        f"=> the engine alone on {CORES} cores: at most {ceiling:,.0f} documents/s "
        f"(target {TARGET_RATE:,.0f}: ratio {ceiling / TARGET_RATE:.2f})"
    )
    print("active parts after: " + ", ".join(f"{p['table']} {p['n']}" for p in parts))
    stored = sum(p["bytes"] for p in parts)
    codec = args.doc_codec or "as migrated"
    print(f"bytes on disk per entity: {stored / entities:.1f} (spans.doc codec: {codec})")


if __name__ == "__main__":
    main()
