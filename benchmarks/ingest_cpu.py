"""CPU per document on the ingest path, stage by stage, in one process.

Per document the server runs: ``orjson.loads``, ``validate_document`` and
``Assembler.assemble`` (merge into the trace's state, one span row per entity, the trace
summaries and the per-minute graph statistics) in the ingest worker process, then
``Store.write``: ``encode_batch`` (the batch as Arrow tables, in the worker) and
``Store.insert_tables`` (the engine's inserts, in the server process; chDB releases the
GIL meanwhile). Sustained ingest (DESIGN.md §7: >= 50,000 segments/s on 2 cores) is
bounded by these, so each stage is printed in µs/document and as a ratio against
``orjson.loads`` of the same documents, measured in the same run (the reference: the
cheapest thing every document must go through).

What one run does, batch by batch as the ingest worker does (``--batch`` documents; the
default is the pipeline's ``max_batch``, the size its batches reach at the target rate):
parses the pre-serialized documents, validates them, merges them with one
:class:`~fluoroscope.ingest.assemble.Assembler` (fresh per run), encodes the batch,
inserts it into a real embedded store (chDB in a temporary directory; re-sent rows
replace earlier runs', as in production), then drops it (``free``: deallocating the
documents, rows and tables is the worker's work too). The cyclic garbage collector is
off inside the timed sections and start-up objects are frozen, as the worker runs
(``tune_gc`` in ``ingest/pipeline.py``); it collects between runs. ``--runs`` runs after
a warm-up; the median is printed, with the min and max. ``--setting NAME=VALUE`` applies
an engine setting to the store's session first (to measure one, e.g.
``optimize_on_insert=0``). The engine's stage is also printed per table (``insert:spans``,
``insert:traces``, ...: the process's CPU per document while inserting into that table).

Documents are the mix of ``benchmarks/ingest.py`` (``make_trace``: traces of 1-3
documents, ~2.5 entities and ~1.2 KB each).

Usage: ``python benchmarks/ingest_cpu.py [--docs 40000] [--batch 10000] [--runs 5]``.
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
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.store import Store

STAGES = ("parse", "validate", "assemble", "encode", "insert", "free")
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
    worker goes (so memory is reused between batches as in the server, not grown); the
    insert is also measured table by table, under ``insert:<table>`` (one insert per table
    per batch, as ``Store.insert_tables`` makes them), in CPU seconds of the process (the
    engine's threads included), which a busy machine does not inflate as it does wall
    time."""
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
            tables = encode_batch(written)
            t4 = clock()
            for name, table in tables:
                cpu = time.process_time()
                store.insert_tables([(name, table)])
                key = f"insert:{name}"
                took[key] = took.get(key, 0.0) + time.process_time() - cpu
            t5 = clock()
            del docs, written, tables  # the documents, rows and tables, freed
            t6 = clock()
        finally:
            gc.enable()
        laps = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)
        for stage, seconds in zip(STAGES, laps, strict=True):
            took[stage] += seconds
    return took


def _row(label: str, us: list[float], ratios: list[float]) -> str:
    spread = f"[{min(us):.1f} - {max(us):.1f}]"
    return (
        f"{label:<26} {statistics.median(us):>14.2f} {spread:>16} "
        f"{statistics.median(ratios):>17.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=40_000, help="documents per run")
    parser.add_argument("--batch", type=int, default=10_000, help="documents per batch")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--setting", action="append", default=[], help="NAME=VALUE: an engine setting"
    )
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
            for setting in args.setting:
                name, _, value = setting.partition("=")
                store._t.execute(f"SET {name.strip()} = {value.strip()}")
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
    print(f"{'stage':<26} {'µs/doc median':>14} {'[min - max]':>16} {'x parse (median)':>17}")
    tables = sorted({k for r in runs for k in r if k.startswith("insert:")})
    for stage in (*STAGES[:5], *(f"  {t}" for t in tables), *STAGES[5:]):
        key = stage.strip()
        us = [r.get(key, 0.0) / n * 1e6 for r in runs]
        print(_row(stage, us, [r.get(key, 0.0) / r["parse"] for r in runs]))
    for label, parts in (
        ("write (encode+insert)", ("encode", "insert")),
        ("validate+assemble+encode", ("validate", "assemble", "encode")),
        ("validate+assemble+write", ("validate", "assemble", "encode", "insert")),
        ("all but parse", ("validate", "assemble", "encode", "insert", "free")),
    ):
        sums = [sum(r[p] for p in parts) for r in runs]
        us = [t / n * 1e6 for t in sums]
        print(_row(label, us, [t / r["parse"] for t, r in zip(sums, runs, strict=True)]))
    worker = statistics.median(sum(r[p] for p in STAGES if p != "insert") / n for r in runs)
    print(f"=> the worker (all but insert) on one core: ~{1 / worker:,.0f} documents/s")


if __name__ == "__main__":
    main()
