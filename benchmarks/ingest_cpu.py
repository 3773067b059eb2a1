"""Python CPU per document on the ingest path, stage by stage, in one process.

The server's ingest worker runs, per document: ``orjson.loads``, ``validate_document``,
``Assembler.assemble`` (merge into the trace's state, one span row per entity, the trace
summaries and the per-minute graph statistics) and ``Store.write`` (Arrow conversion plus
the engine's insert). Sustained ingest (DESIGN.md §7: >= 50,000 segments/s on 2 cores) is
bounded by the sum, so each stage is printed in µs/document and as a ratio against
``orjson.loads`` of the same documents, measured in the same run (the reference: the
cheapest thing every document must go through; about 4-7 µs here).

What one run does, batch by batch (``--batch`` documents) as the server's ingest worker
does: parses the pre-serialized documents, validates them, merges them with one
:class:`~fluoroscope.ingest.assemble.Assembler` (fresh per run) and writes the batch to a
real embedded store (chDB in a temporary directory; re-sent rows replace earlier runs',
as in production). The cyclic garbage collector is
off inside the timed sections and start-up objects are frozen, as the server runs
(``server/run.py``); it collects between runs. ``--runs`` runs; the median is printed,
with the min and max.

Documents are the mix of ``benchmarks/ingest.py`` (``make_trace``: traces of 1-3
documents, ~2.5 entities and ~1.2 KB each).

Usage: ``python benchmarks/ingest_cpu.py [--docs 40000] [--batch 5000] [--runs 5]``.
Never run by pytest.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ingest import entities_in, make_trace
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.documents import validate_document
from fluoroscope.store.store import Store

STAGES = ("parse", "validate", "assemble", "write")
_RETENTION = 30 * 86_400


def make_bodies(count: int, now: float, seed: int = 1) -> list[bytes]:
    """``count`` serialized documents of whole traces (the last trace may be cut short)."""
    rng = random.Random(seed)
    bodies: list[bytes] = []
    while len(bodies) < count:
        bodies.extend(orjson.dumps(doc) for doc in make_trace(rng, now))
    return bodies[:count]


def one_run(store: Store, bodies: list[bytes], now: float, batch: int) -> dict[str, float]:
    """Seconds spent in each stage over all of ``bodies``, batch by batch as the ingest
    worker goes (so memory is reused between batches as in the server, not grown)."""
    loads = orjson.loads
    took = dict.fromkeys(STAGES, 0.0)
    assembler = Assembler(store, capacity=20_000, clock=lambda: now)
    clock = time.perf_counter
    for first in range(0, len(bodies), batch):
        chunk = bodies[first : first + batch]
        gc.disable()
        try:
            t0 = clock()
            docs = [loads(b) for b in chunk]
            t1 = clock()
            for doc in docs:
                validate_document(doc, now=now, max_age=_RETENTION)
            t2 = clock()
            written = assembler.assemble(docs)
            t3 = clock()
            store.write(written)
            t4 = clock()
        finally:
            gc.enable()
        del docs, written
        took["parse"] += t1 - t0
        took["validate"] += t2 - t1
        took["assemble"] += t3 - t2
        took["write"] += t4 - t3
    return took


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=40_000, help="documents per run")
    parser.add_argument("--batch", type=int, default=5_000, help="documents per assemble/write")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    now = time.time()
    bodies = make_bodies(args.docs, now)
    entities = sum(entities_in(orjson.loads(b)) for b in bodies) / len(bodies)
    size = sum(len(b) for b in bodies) / len(bodies)
    print(
        f"{len(bodies)} documents ({entities:.2f} entities, {size:.0f} bytes each), "
        f"batches of {args.batch}, {args.runs} runs (+1 warm-up)"
    )
    with tempfile.TemporaryDirectory(prefix="fluoroscope-cpu-") as tmp:
        store = Store.open("chdb", Path(tmp), 30)
        try:
            gc.collect()
            gc.freeze()
            one_run(store, bodies, now, args.batch)  # warm-up: imports, first inserts
            runs = []
            for _ in range(args.runs):
                gc.collect()
                runs.append(one_run(store, bodies, now, args.batch))
        finally:
            store.close()

    n = len(bodies)
    per_doc = {s: [r[s] / n * 1e6 for r in runs] for s in STAGES}
    ratios = {s: [r[s] / r["parse"] for r in runs] for s in STAGES}
    print(f"{'stage':<24} {'µs/doc median':>14} {'[min - max]':>16} {'x parse (median)':>17}")
    for stage in STAGES:
        us = per_doc[stage]
        print(
            f"{stage:<24} {statistics.median(us):>14.2f} "
            f"{f'[{min(us):.1f} - {max(us):.1f}]':>16} {statistics.median(ratios[stage]):>17.2f}"
        )
    python = [sum(r[s] for s in STAGES[1:]) for r in runs]
    total = [p / n * 1e6 for p in python]
    print(
        f"{'validate+assemble+write':<24} {statistics.median(total):>14.2f} "
        f"{f'[{min(total):.1f} - {max(total):.1f}]':>16} "
        f"{statistics.median(p / r['parse'] for p, r in zip(python, runs, strict=True)):>17.2f}"
    )
    print(f"=> one core: ~{1e6 / statistics.median(total):,.0f} documents/s past parsing")


if __name__ == "__main__":
    main()
