"""What encoding Arrow results serially costs (store/transport.py's session setting).

chDB 26.5 encodes a result's chunks to Arrow in a pool of worker threads unless
``output_format_arrow_parallel_encoding = 0``; that pool's backpressure wait can hang a
query for good (chdb-core issue #212), so every embedded session turns it off. This
measures what that costs: results shaped like ``LogStore.events`` pages (stream, two
timestamps, seq, a ~120-byte message), read from a MergeTree table ordered by time, at
``--rows`` sizes, in Arrow, with the encoder serial and parallel - each setting in its own
child process, ``--pairs`` interleaved pairs, ``--reps`` queries each (median). The same
run's reference: ``SELECT 1`` (the per-statement floor). A child that does not finish in
``--timeout`` seconds is reported as hung (the parallel encoder under CPU contention).

Usage: ``python benchmarks/arrow_encoding.py [--rows 1000,100000,1000000]``. Never run by
pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any


def child(parallel: int, sizes: list[int], reps: int) -> None:
    from chdb import session

    with tempfile.TemporaryDirectory() as where:
        s: Any = session.Session(where)  # type: ignore[no-untyped-call]
        s.query(f"SET output_format_arrow_parallel_encoding = {parallel}")
        s.query(
            "CREATE TABLE e (stream String, ts DateTime64(3), ingest_ts DateTime64(3), "
            "seq UInt64, message String) ENGINE = MergeTree ORDER BY (ts, seq)"
        )
        s.query(
            f"INSERT INTO e SELECT concat('stream-', toString(number % 7)), "
            f"toDateTime64(1700000000 + number / 1000, 3), toDateTime64(1700000000, 3), "
            f"number, concat('[INFO] request ', toString(number), ' ', repeat('x', 100)) "
            f"FROM numbers({max(sizes)})"
        )
        s.query("OPTIMIZE TABLE e FINAL")
        figures: dict[str, float] = {}
        for name, sql in [("SELECT 1", "SELECT 1")] + [
            (
                str(n),
                f"SELECT stream, ts, ingest_ts, seq, message FROM e ORDER BY ts, seq LIMIT {n}",
            )
            for n in sizes
        ]:
            s.query(sql, "ArrowTable")  # warm-up
            took = []
            for _ in range(reps):
                began = time.perf_counter()
                s.query(sql, "ArrowTable")
                took.append(time.perf_counter() - began)
            figures[name] = statistics.median(took) * 1000
        print(json.dumps(figures))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default="1000,100000,1000000", help="result sizes, comma-separated")
    ap.add_argument("--reps", type=int, default=9, help="queries per size and child (median)")
    ap.add_argument("--pairs", type=int, default=3, help="interleaved serial/parallel pairs")
    ap.add_argument("--timeout", type=float, default=120, help="seconds before a child is hung")
    ap.add_argument("--child", type=int, choices=(0, 1), help=argparse.SUPPRESS)
    args = ap.parse_args()
    sizes = [int(n) for n in args.rows.split(",")]
    if args.child is not None:
        child(args.child, sizes, args.reps)
        return
    runs: dict[int, list[dict[str, float]]] = {0: [], 1: []}
    hung = {0: 0, 1: 0}
    for _ in range(args.pairs):
        for parallel in (0, 1):
            command = [sys.executable, __file__, "--child", str(parallel)]
            command += ["--rows", args.rows, "--reps", str(args.reps)]
            try:
                done = subprocess.run(
                    command, capture_output=True, text=True, timeout=args.timeout, check=True
                )
            except subprocess.TimeoutExpired:
                hung[parallel] += 1
                continue
            runs[parallel].append(json.loads(done.stdout.strip().splitlines()[-1]))
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; median ms per query")
    print(f"{'result':>12} {'serial':>22} {'parallel':>22}")
    for name in ["SELECT 1"] + [str(n) for n in sizes]:
        cells = []
        for parallel in (0, 1):
            values = [run[name] for run in runs[parallel]]
            cells.append(", ".join(f"{v:.1f}" for v in values) or "-")
        label = name if name == "SELECT 1" else f"{int(name):,} rows"
        print(f"{label:>12} {cells[0]:>22} {cells[1]:>22}")
    print(f"children hung (> {args.timeout:.0f} s): serial {hung[0]}, parallel {hung[1]}")


if __name__ == "__main__":
    main()
