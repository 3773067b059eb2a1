"""Logs Insights query latency over one hour of stored log events (issue 17 item 8).

Targets (DESIGN.md §7) at 10M stored events: ``filter @message like /timeout/ | stats
count() by bin(1m)`` over one hour p50 < 500 ms; a ``parse`` + ``stats pct(...)`` query
over the same hour p50 < 1 s.

What one run does:

1. opens a fresh embedded store and loads ``--events`` lines (default 1,000,000; use
   ``--events 10000000`` for the issue's figure) through the log store's real write path -
   ``ingest.logwriter.encode`` (the per-line extraction) then ``LogStore.write`` - in
   batches of ``--batch``: Python runtime text lines (``[INFO]\\t<time>\\t<request
   id>\\t... latency=<n> ms``), ~2 % of them timeouts, and a Lambda REPORT line per ten;
   80 % of the events in the measured hour, 20 % in the hour before it (so the window must
   prune);
2. measures each query compiled by ``fluoroscope.query.insights`` and run with
   ``LogStore.query`` (what StartQuery runs), ``--runs`` times after a warm-up;
3. measures in the same run, as references: the same answers written by hand as plain
   SQL (regex extraction, as one would write it), a scan testing every message of the
   hour for a substring (the floor for any question about the message text) and
   ``SELECT 1`` (the per-statement floor). The figure judged is the compiled p50; the
   ratios to the hand-written SQL and to the scan say what the compiler costs.

Usage: ``python benchmarks/logs_queries.py [--events 10000000]``. Never run by pytest.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Final

from fluoroscope.ingest.logwriter import encode
from fluoroscope.query.insights import compile, parse
from fluoroscope.store.logs import LogStore
from fluoroscope.store.store import Store

GROUP: Final = "/aws/lambda/checkout"
HOUR_MS: Final = 3_600_000
TARGETS_MS: Final = {"timeout by minute": 500.0, "parse + pct": 1000.0}
QUERIES: Final = {
    "timeout by minute": "filter @message like /timeout/ | stats count() by bin(1m)",
    "parse + pct": (
        'parse @message "latency=* ms" as latency '
        "| stats pct(latency, 50) as p50, pct(latency, 99) as p99 by bin(5m)"
    ),
}
REFERENCES: Final = {
    "timeout by minute": (
        "SELECT toStartOfMinute(ts) AS m, count() FROM {db}.log_events WHERE log_group = "
        "{g:String} AND ts >= fromUnixTimestamp64Milli({s:Int64}, 'UTC') AND ts <= "
        "fromUnixTimestamp64Milli({e:Int64}, 'UTC') AND match(message, 'timeout') "
        "GROUP BY m ORDER BY m DESC"
    ),
    "parse + pct": (
        "SELECT toStartOfInterval(ts, INTERVAL 5 MINUTE) AS b, quantiles(0.5, 0.99)("
        "toFloat64OrNull(extract(message, 'latency=(.*?) ms'))) FROM {db}.log_events "
        "WHERE log_group = {g:String} AND ts >= fromUnixTimestamp64Milli({s:Int64}, 'UTC') "
        "AND ts <= fromUnixTimestamp64Milli({e:Int64}, 'UTC') GROUP BY b ORDER BY b DESC"
    ),
}


SCAN: Final = (
    "SELECT count() FROM {db}.log_events WHERE log_group = {g:String} AND ts >= "
    "fromUnixTimestamp64Milli({s:Int64}, 'UTC') AND ts <= fromUnixTimestamp64Milli({e:Int64}, "
    "'UTC') AND position(message, 'latency=') > 0"
)


def lines(
    count: int, start_ms: int, span_ms: int, rng: random.Random
) -> tuple[list[int], list[str]]:
    """``count`` lines spread evenly over ``[start_ms, start_ms + span_ms)``, in time order."""
    stamps: list[int] = []
    messages: list[str] = []
    step = span_ms / max(count, 1)
    request = uuid.UUID(int=rng.getrandbits(128))
    for i in range(count):
        ms = start_ms + int(i * step)
        if i % 10 == 0:
            request = uuid.UUID(int=rng.getrandbits(128))
            messages.append(
                f"REPORT RequestId: {request}\tDuration: {rng.uniform(1, 900):.2f} ms\t"
                f"Billed Duration: {rng.randint(1, 900)} ms\tMemory Size: 128 MB\t"
                f"Max Memory Used: {rng.randint(40, 120)} MB\t\n"
            )
        elif rng.random() < 0.02:
            messages.append(f"{request} Task timed out after 3.00 seconds: upstream timeout\n")
        else:
            when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000))
            messages.append(
                f"[INFO]\t{when}.{ms % 1000:03d}Z\t{request}\tProcessed order o-{i} "
                f"latency={int(rng.expovariate(1 / 80))} ms\n"
            )
        stamps.append(ms)
    return stamps, messages


def load(logs: LogStore, total: int, end_ms: int, batch: int) -> float:
    rng = random.Random(17)
    hot = int(total * 0.8)
    began = time.perf_counter()
    seq = 1
    for count, start in ((total - hot, end_ms - 2 * HOUR_MS), (hot, end_ms - HOUR_MS)):
        stamps, messages = lines(count, start, HOUR_MS, rng)
        for i in range(0, count, batch):
            chunk = messages[i : i + batch]
            table = encode(
                [(GROUP, "2026/12/03/[$LATEST]abc", stamps[i : i + batch], chunk, 30, end_ms)], seq
            )
            logs.write(table)
            seq += len(chunk)
    return time.perf_counter() - began


def timed(run: Callable[[], Any], runs: int) -> tuple[float, Any]:
    result = run()  # warm-up
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        result = run()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fluoro-logq-"))
    try:
        store = Store.open("chdb", tmp, 30)
        logs = LogStore(store, 30)
        end_ms = (int(time.time() * 1000) // 60_000) * 60_000
        seconds = load(logs, args.events, end_ms, args.batch)
        print(
            f"loaded {args.events:,} events in {seconds:.1f} s "
            f"({args.events / seconds:,.0f} events/s)"
        )
        window = {"g": GROUP, "s": end_ms - HOUR_MS, "e": end_ms}
        floor, _ = timed(lambda: logs.query("SELECT 1", {}), args.runs)
        print(f"reference SELECT 1: p50 {floor:.1f} ms")
        db = f"`{store.database}`"
        scan_sql = SCAN.replace("{db}", db)
        scan, _ = timed(partial(logs.query, scan_sql, window), args.runs)
        print(
            f"reference scan (one substring test on every message of the hour): p50 {scan:.0f} ms"
        )
        for name, text in QUERIES.items():
            compiled = compile(
                parse(text),
                database=store.database,
                groups=[GROUP],
                start_ms=end_ms - HOUR_MS,
                end_ms=end_ms,
            )
            p50, result = timed(
                partial(logs.query, compiled.sql, compiled.params, compiled.settings), args.runs
            )
            ref_sql = REFERENCES[name].replace("{db}", db)
            ref, expected = timed(partial(logs.query, ref_sql, window), args.runs)
            if result.num_rows != expected.num_rows:
                raise SystemExit(
                    f"{name}: {result.num_rows} rows, hand-written SQL {expected.num_rows}"
                )
            target = TARGETS_MS[name]
            print(
                f"{name}: `{text}` over 1 h of {int(args.events * 0.8):,} events "
                f"({args.events:,} stored): p50 {p50:.0f} ms (target at 10M < {target:.0f} ms); "
                f"hand-written SQL p50 {ref:.0f} ms, ratio {p50 / ref:.2f}; "
                f"ratio to the scan {p50 / scan:.2f}; "
                f"{result.num_rows} result rows"
            )
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
