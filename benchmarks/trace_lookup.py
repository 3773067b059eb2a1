"""The engine's CPU per lookup of a few traces by id, on a store as live ingest leaves it.

``benchmarks/query.py`` times one trace by id at 10M spans, mostly in one merged part;
BatchGetTraces asks for up to 5 traces at once, and the benchmark's freshness poller (and
a console following fresh traces) asks while ingest writes, among the parts of the last
rounds. This one builds such a store: ``--docs`` documents of fresh traces
(``benchmarks/ingest.py``'s mix, epochs advancing with ``--rate`` as live traffic's do),
merged and encoded as the ingest worker does, inserted in rounds of ``--batch`` documents
with the engine's merges running; then merges stop, so every lookup sees the same parts.
Then ``Store.entities`` looks up ``--lookups`` batches of 1, 5 and 50 traces of
neighbouring epochs (as the poller's oldest pending ones are), timed by the process's CPU
(the engine's threads included) and by wall clock.

The reference, in the same run, alternating with it batch set by batch set: the same
lookups with only a single trace read by one thread (``_FEW_TRACES = 1``), as before
several traces were; medians over ``--rounds`` and the ratio.

Usage: ``python benchmarks/trace_lookup.py [--docs 150000] [--batch 5000] [--rounds 3]``.
Never run by pytest.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fluoroscope.store.store as store_module
from benchmarks.ingest import make_trace
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.store import Store

_SIZES = (1, 5, 50)


def build(store: Store, docs: int, batch: int, rate: float) -> list[str]:
    """Insert the rounds; the trace ids, ordered by epoch."""
    now = time.time()
    rng = random.Random(1)
    assembler = Assembler(store, capacity=20_000, clock=lambda: now, outcome_rows=True)
    made = 0
    ids: list[str] = []
    while made < docs:
        chunk: list[dict[str, object]] = []
        while len(chunk) < batch:
            trace = make_trace(rng, now - docs / rate + (made + len(chunk)) / rate)
            ids.append(str(trace[0]["trace_id"]))
            chunk.extend(trace)
        store.insert_tables(encode_batch(assembler.assemble(chunk)))
        made += len(chunk)
    return ids


def timed(store: Store, batches: list[list[str]]) -> tuple[float, float]:
    """(CPU ms per lookup, p50 wall ms) over ``batches``."""
    walls = []
    cpu = time.process_time()
    for ids in batches:
        started = time.perf_counter()
        store.entities(ids)
        walls.append(time.perf_counter() - started)
    return (time.process_time() - cpu) * 1e3 / len(batches), statistics.median(walls) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=150_000)
    parser.add_argument("--batch", type=int, default=5_000, help="documents per insert round")
    parser.add_argument("--rate", type=float, default=15_000.0, help="documents per second")
    parser.add_argument("--lookups", type=int, default=200, help="batches per size and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fluoroscope-lookup-") as tmp:
        store = Store.open("chdb", Path(tmp), 30)
        try:
            ids = build(store, args.docs, args.batch, args.rate)
            store.transport.execute("SYSTEM STOP MERGES")
            parts = store.transport.query_arrow(
                "SELECT count() FROM system.parts WHERE database = {db:String} "
                "AND table = 'spans' AND active",
                {"db": store.database},
            ).column(0)[0]
            print(f"{args.docs:,} documents in rounds of {args.batch:,}; spans in {parts} parts")
            few = store_module._FEW_TRACES
            rng = random.Random(2)
            figures: dict[tuple[int, int], list[tuple[float, float]]] = {}
            for turn in range(args.rounds):
                for size in _SIZES:
                    batches = []
                    for _ in range(args.lookups):
                        at = rng.randrange(len(ids) - 500)
                        batches.append(rng.sample(ids[at : at + 500], size))
                    for limit in (1, few) if turn % 2 == 0 else (few, 1):
                        store_module._FEW_TRACES = limit  # type: ignore[misc]
                        figures.setdefault((size, limit), []).append(timed(store, batches))
            store_module._FEW_TRACES = few  # type: ignore[misc]
        finally:
            store.close()
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'traces per lookup':<18} {'reference CPU ms':>17} {'now CPU ms':>11} {'ratio':>6}"
          f" {'wall p50 ms (ref, now)':>24}")  # fmt: skip
    for size in _SIZES:
        ref, now = figures[(size, 1)], figures[(size, few)]
        ratio = statistics.median(b[0] / a[0] for a, b in zip(ref, now, strict=True))
        print(f"{size:<18} {statistics.median(r[0] for r in ref):>17.2f} "
              f"{statistics.median(r[0] for r in now):>11.2f} {ratio:>6.2f} "
              f"{statistics.median(r[1] for r in ref):>11.2f}, "
              f"{statistics.median(r[1] for r in now):.2f}")  # fmt: skip
    print(
        "(reference: several traces read by the engine's thread pool; now: up to "
        f"{few} by one thread, reading the files directly)"
    )


if __name__ == "__main__":
    main()
