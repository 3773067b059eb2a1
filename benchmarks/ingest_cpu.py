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
inserts it into a real embedded store (chDB in a temporary directory), then drops it
(``free``: deallocating the documents, rows and tables is the worker's work too). Each
run of each path gets traces of its own (made before it, untimed), each trace id
stamped with the second its trace would be sent in at 50,000 documents/s, as an SDK
stamps a request's start: with one second for all and the same traces every run (the
way before), a run past ~45,000 documents reloaded every trace that arrived after the
cache's first eviction from the store (``--docs 60000``: 11,066 traces a run, assemble
56.6 µs/document), and the store held one second's traces. The cyclic garbage collector
is off inside the timed sections and start-up objects are frozen, as the worker runs
(``tune_gc`` in ``ingest/heap.py``); it collects between runs. ``--runs`` runs after
a warm-up; the median is printed, with the min and max. ``--setting NAME=VALUE`` applies
an engine setting to the store's session first (to measure one, e.g.
``optimize_on_insert=0``). The engine's stage is also printed per table (``insert:spans``,
``insert:traces``, ...: the process's CPU per document while inserting into that table).

Two paths run side by side, alternately within each run (each going first in every
other run), so that each is the other's reference on the same machine at the same time
(issue 21, item 4):

* ``today``: the path before issue 21 - ``validate_document`` per document (given its
  JSON text, as the pipeline gives it; earlier versions of this script did not, and so
  also timed the nesting walk the pipeline skips);
* ``batch``: the columnar path as far as it has come - documents validated as
  ``today`` (``validate_document``, compiled, decides the common document on a fast
  path of its own: 5.3-6.4 µs a document in the validate stage here, against 6.4-6.7
  for the msgspec schema ``ingest.screen.check_batch`` that validated batches before
  it and was retired; the pipeline validates each document as it parses it, which
  this stage, timed apart, does not show),
  and graph outcomes recorded as rows while traces merge and summed per batch in arrays
  as the batch is encoded (``Assembler(outcome_rows=True)``, ``store.outcomes``)
  instead of added to a cell each in Python;
* ``parts``: ``batch`` as the ingest pipeline runs it on datagrams - parsed, validated
  and merged a part of ``ingest/pipeline.py``'s ``_PART`` documents at a time, each
  part's documents freed before the next is parsed, then summarized and encoded once
  (``--path batch,parts`` compares the two);
* ``submitted``: documents given to the pipeline by ``submit`` (PutTraceSegments' and
  OTLP's, validated by the server or as they were translated, so not validated here)
  as the worker wrote them before they were merged in parts - each batch's documents
  parsed at once, before any is merged (the worker parsed a submission as it received
  it, or translated OTLP spans into documents, then queued them for the round), then
  merged and encoded ``_SLICE`` (``ingest/pipeline.py``) at a time, the slices' tables
  joined and inserted once per batch (``Pipeline._flush``);
* ``submitparts``: ``submitted`` as the pipeline now writes documents submitted as
  their JSON text - parsed and merged ``_PART`` at a time, each part's documents freed
  before the next is parsed, then summarized and encoded once per slice
  (``Pipeline._merge_submitted``; ``--path submitted,submitparts``);
* ``aheadparts``: ``submitted`` merged ``_PART`` at a time, the documents still parsed
  at once before (as OTLP-translated documents are submitted parsed): what merging in
  parts alone does for documents that are parsed already (``--path
  submitted,aheadparts``).

Stages run in one thread and are timed in that thread's CPU time (``time.thread_time``),
the engine's inserts in the process's CPU time: on a shared machine, CPU time is
inflated far less than wall time by other processes (the machine's load average is
printed with the figures). A table per path, then the two side by side with their ratio.
``(engine threads, whole run)`` is every thread's CPU but the timed one's over a run: the
engine inserting and merging in the background, which the insert stage sees only while
an insert runs (the paths alternate, so a merge one path's inserts caused may run in the
other's turn; both write rows of the same mix).

Documents are the mix of ``benchmarks/ingest.py`` (``make_trace``: traces of 1-3
documents, ~2.5 entities and ~1.2 KB each).

Usage: ``python benchmarks/ingest_cpu.py [--docs 40000] [--batch 10000] [--runs 5]
[--path today|batch|parts|submitted|submitparts|aheadparts|A,B|both]``. Never run by
pytest.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ingest import entities_in, make_trace
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.ingest.pipeline import _PART, _SLICE
from fluoroscope.model.documents import validate_document
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.store import Store

STAGES = ("parse", "validate", "assemble", "encode", "insert", "free")
OTHER_THREADS = "engine threads"
"""Not a stage: the CPU of the process's other threads over a run (the engine's inserts
and background merges; its threads run while the worker's stages do too)."""
RELOADED = "reloaded traces"
"""Not a stage either: traces the run's assembler reloaded from the store (a count)."""
_RETENTION = 30 * 86_400


def _validate(docs: list[Any], bodies: list[bytes], now: float) -> None:
    for doc, body in zip(docs, bodies, strict=True):
        validate_document(doc, now=now, max_age=_RETENTION, raw=body)


def _validated_already(docs: list[Any], bodies: list[bytes], now: float) -> None:
    """Submitted documents: their submitter validated them."""


PATHS: dict[str, Callable[[list[Any], list[bytes], float], None]] = {
    "today": _validate,
    "batch": _validate,
    "parts": _validate,
    "submitted": _validated_already,
    "submitparts": _validated_already,
    "aheadparts": _validated_already,
}
OUTCOME_ROWS: dict[str, bool] = {
    "today": False,
    "batch": True,
    "parts": True,
    "submitted": True,
    "submitparts": True,
    "aheadparts": True,
}
"""Whether the path records graph outcomes as rows summed per batch with array operations
(``Assembler(outcome_rows=True)``, in the encode stage) or adds each to its cell."""
PARTS: dict[str, int] = {"parts": _PART, "submitparts": _PART, "aheadparts": _PART}
"""Paths that parse, validate and merge a batch (or a slice) a part at a time
(``Assembler.merge``, then ``finish`` once), as the ingest pipeline does with datagrams
(``ingest/pipeline.py`` ``_PART``); the others take the whole batch at each stage."""
AHEAD: frozenset[str] = frozenset({"submitted", "aheadparts"})
"""Paths that parse a batch's documents at once before merging any (in the parse
stage), as submitted documents were parsed before their round."""
SLICES: dict[str, int] = {"submitted": _SLICE, "submitparts": _SLICE, "aheadparts": _SLICE}
"""Paths that merge and encode a batch a slice at a time, then join the slices' tables
and insert them once (the join timed as encoding), as the pipeline writes submitted
documents; the others merge and encode the whole batch at once."""


STAMP_RATE = 50_000.0
"""Documents per second the traces' ids are stamped at (the target rate)."""


def make_bodies(count: int, now: float, seed: int = 1, rate: float = 0.0) -> list[bytes]:
    """``count`` serialized documents of whole traces (the last trace may be cut short),
    each trace stamped ``now`` or, with ``rate``, ``now`` plus the documents before it
    divided by ``rate``."""
    rng = random.Random(seed)
    bodies: list[bytes] = []
    while len(bodies) < count:
        stamp = now + len(bodies) / rate if rate else now
        bodies.extend(orjson.dumps(doc) for doc in make_trace(rng, stamp))
    return bodies[:count]


class Traces:
    """Fresh traces for each run of each path: consecutive stretches of ``docs``
    documents of one stream stamped at :data:`STAMP_RATE`, ``sets`` of them ending
    before ``now``."""

    def __init__(self, docs: int, sets: int, now: float) -> None:
        self._docs = docs
        self._start = now - sets * docs / STAMP_RATE - 1
        self._made = 0

    def next(self) -> list[bytes]:
        start = self._start + self._made * self._docs / STAMP_RATE
        self._made += 1
        return make_bodies(self._docs, start, seed=self._made, rate=STAMP_RATE)


def one_run(
    store: Store, bodies: list[bytes], now: float, batch: int, path: str
) -> dict[str, float]:
    """CPU seconds spent in each stage over all of ``bodies`` on ``path``, batch by batch
    as the ingest worker goes (so memory is reused between batches as in the server, not
    grown): the thread's for the Python stages, the process's (the engine's threads
    included) for the insert, also measured table by table under ``insert:<table>`` (one
    insert per table per batch, as ``Store.insert_tables`` makes them)."""
    loads = orjson.loads
    validate = PATHS[path]
    part = PARTS.get(path, 0)
    ahead = path in AHEAD
    took = dict.fromkeys(STAGES, 0.0)
    assembler = Assembler(
        store, capacity=20_000, clock=lambda: now, outcome_rows=OUTCOME_ROWS[path]
    )
    clock = time.thread_time
    process_at, thread_at = time.process_time(), clock()
    for first in range(0, len(bodies), batch):
        chunk = bodies[first : first + batch]
        piece = SLICES.get(path, len(chunk))
        gc.disable()
        try:
            t0 = clock()
            parsed = [loads(b) for b in chunk] if ahead else None
            took["parse"] += clock() - t0
            sliced: list[list[tuple[str, pa.Table]]] = []
            for start in range(0, len(chunk), piece):
                end = min(start + piece, len(chunk))
                for at in range(start, end, part or end - start):
                    stop = min(at + part, end) if part else end
                    some = chunk[at:stop]
                    t0 = clock()
                    docs = parsed[at:stop] if parsed is not None else [loads(b) for b in some]
                    t1 = clock()
                    validate(docs, some, now)
                    t2 = clock()
                    assembler.merge(docs)
                    t3 = clock()
                    del docs  # a part's documents, freed before the next is parsed
                    t4 = clock()
                    took["parse"] += t1 - t0
                    took["validate"] += t2 - t1
                    took["assemble"] += t3 - t2
                    took["free"] += t4 - t3
                t0 = clock()
                written = assembler.finish()
                t1 = clock()
                sliced.append(encode_batch(written))
                t2 = clock()
                del written  # the rows, freed
                t3 = clock()
                took["assemble"] += t1 - t0
                took["encode"] += t2 - t1
                took["free"] += t3 - t2
            t0 = clock()
            tables = sliced[0] if len(sliced) == 1 else _joined(sliced)
            t1 = clock()
            # documents parsed ahead, freed before the insert: the server's engine runs
            # in another process than the worker holding them
            del parsed
            t2 = clock()
            took["encode"] += t1 - t0
            took["free"] += t2 - t1
            for name, table in tables:
                cpu = time.process_time()
                store.insert_tables([(name, table)])
                spent = time.process_time() - cpu
                key = f"insert:{name}"
                took[key] = took.get(key, 0.0) + spent
                took["insert"] += spent
            t0 = clock()
            del tables, sliced  # the tables, freed
            took["free"] += clock() - t0
        finally:
            gc.enable()
    # every other thread's CPU over the run: the engine's, inserting and merging in the
    # background (merges are not all inside the insert calls)
    took[OTHER_THREADS] = (time.process_time() - process_at) - (clock() - thread_at)
    took[RELOADED] = assembler.counters["reloaded_traces"]
    return took


def _joined(sliced: list[list[tuple[str, pa.Table]]]) -> list[tuple[str, pa.Table]]:
    """The slices' tables joined by name, as ``Pipeline._flush`` joins them."""
    parts: dict[str, list[pa.Table]] = {}
    for tables in sliced:
        for name, table in tables:
            parts.setdefault(name, []).append(table)
    return [(name, t[0] if len(t) == 1 else pa.concat_tables(t)) for name, t in parts.items()]


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
    parser.add_argument(
        "--path",
        default="both",
        help=f"one of {', '.join(PATHS)}, two of them comma-separated (the first is the "
        "reference), or both (today,batch)",
    )
    args = parser.parse_args(argv)
    paths = ["today", "batch"] if args.path == "both" else args.path.split(",")
    if not 1 <= len(paths) <= 2 or not set(paths) <= set(PATHS) or len(set(paths)) < len(paths):
        parser.error(f"--path: one or two of {', '.join(PATHS)}, or both")

    now = time.time()
    traces = Traces(args.docs, (args.runs + 1) * len(paths) + 1, now)
    bodies = traces.next()
    entities = sum(entities_in(orjson.loads(b)) for b in bodies) / len(bodies)
    size = sum(len(b) for b in bodies) / len(bodies)
    print(
        f"{len(bodies)} documents ({entities:.2f} entities, {size:.0f} bytes each), "
        f"batches of {args.batch}, {args.runs} runs (+1 warm-up)"
    )
    # the engine may still be finishing a merge's files as the store closes: the removal
    # of the directory must not take the run's figures with it
    with tempfile.TemporaryDirectory(prefix="fluoroscope-cpu-", ignore_cleanup_errors=True) as tmp:
        store = Store.open("chdb", Path(tmp), 30)
        try:
            for setting in args.setting:
                name, _, value = setting.partition("=")
                store._t.execute(f"SET {name.strip()} = {value.strip()}")
            gc.collect()
            gc.freeze()
            for path in paths:  # warm-up: imports, first inserts, schemas built
                one_run(store, bodies, now, args.batch, path)
                bodies = traces.next()
            by_path: dict[str, list[dict[str, float]]] = {path: [] for path in paths}
            for run in range(args.runs):
                # each path goes first in every other run: the first of a pair was
                # measured ~2-4 us/doc dearer in assemble with the same code on both
                for path in paths if run % 2 == 0 else paths[::-1]:
                    gc.collect()
                    by_path[path].append(one_run(store, bodies, now, args.batch, path))
                    bodies = traces.next()  # (one more than used: made untimed)
        finally:
            store.close()
    load = os.getloadavg()
    print(f"load average after the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")
    for path, runs in by_path.items():
        print(f"\n-- path: {path}")
        _report(runs, len(bodies))
    if len(by_path) == 2:
        _compare(by_path, len(bodies))


def _report(runs: list[dict[str, float]], n: int) -> None:
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
    us = [r[OTHER_THREADS] / n * 1e6 for r in runs]
    print(_row(f"({OTHER_THREADS}, whole run)", us, [r[OTHER_THREADS] / r["parse"] for r in runs]))
    worker = statistics.median(sum(r[p] for p in STAGES if p != "insert") / n for r in runs)
    print(f"=> the worker (all but insert) on one core: ~{1 / worker:,.0f} documents/s")
    print(f"traces reloaded from the store per run: {[int(r[RELOADED]) for r in runs]}")


def _compare(by_path: dict[str, list[dict[str, float]]], n: int) -> None:
    """Each stage's median on both paths and their ratio (per run, then the median)."""
    (old, before), (new, after) = by_path.items()
    print(f"\n-- {new} against {old}, same runs (ratio < 1: {new} is cheaper)")
    print(f"{'stage':<26} {old + ' µs':>12} {new + ' µs':>12} {'ratio (median)':>15}")
    groups: list[tuple[str, tuple[str, ...]]] = [(stage, (stage,)) for stage in STAGES]
    groups.append(("parse+validate", ("parse", "validate")))
    groups.append(("all (worker + insert)", STAGES))
    groups.append(("worker (all but insert)", tuple(s for s in STAGES if s != "insert")))
    groups.append((f"({OTHER_THREADS})", (OTHER_THREADS,)))
    for label, parts in groups:
        a = [sum(r[p] for p in parts) for r in before]
        b = [sum(r[p] for p in parts) for r in after]
        ratios = [y / x if x else 0.0 for x, y in zip(a, b, strict=True)]
        print(
            f"{label:<26} {statistics.median(a) / n * 1e6:>12.2f} "
            f"{statistics.median(b) / n * 1e6:>12.2f} {statistics.median(ratios):>15.2f}"
        )


if __name__ == "__main__":
    main()
