"""The critical path across traces, in the engine: p50 latency over a set of 10k traces.

Target (issue 22 item 3): p50 < 1 s over 10k traces. One run:

1. loads ``--traces`` generated traces (an API segment with 3-8 subsegments: DynamoDB and
   S3 calls, some concurrent, a remote call answered by a second service's segment with
   its own subsegments; ~13 entities a trace, 3 % with a slow query) through the real
   write path (``Assembler(store).assemble`` then ``store.write``) into a fresh embedded
   store in a temporary directory;
2. measures ``critical_path_across`` over the whole set (``--runs`` times) and over its
   slowest 1 %; and, as the same-run reference, GetTraceSummaries over the same set
   (``store.summaries`` page by page, 1,000 a page, until every summary is read);
3. prints p50 of each and the ratio critical path / summaries, in wall time and in the
   process's CPU time (the engine runs in this process): on a machine shared with
   other work the wall time follows the load, the CPU time much less.

Usage: ``python benchmarks/critical_path.py [--traces 10000] [--runs 5]``. Never run by pytest.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.query.investigate import critical_path_across
from fluoroscope.store.store import Store


def _trace(rng: random.Random, start: float) -> list[dict[str, Any]]:
    tid = new_trace_id(start)
    t = start + 0.002
    subs: list[dict[str, Any]] = []
    callee: list[dict[str, Any]] = []
    for _ in range(rng.randint(3, 8)):
        kind = rng.random()
        d = rng.uniform(0.002, 0.03) * (40 if rng.random() < 0.03 else 1)
        sub: dict[str, Any] = {"id": new_entity_id(), "start_time": t, "end_time": t + d}
        if kind < 0.4:
            sub.update(
                name="DynamoDB",
                namespace="aws",
                aws={"operation": rng.choice(["GetItem", "Query"])},
            )
        elif kind < 0.6:
            sub.update(name="S3", namespace="aws", aws={"operation": "GetObject"})
        elif kind < 0.8:
            sub.update(
                name="billing", namespace="remote", http={"request": {"url": "http://billing/x"}}
            )
            callee.append({
                "id": new_entity_id(), "trace_id": tid, "parent_id": sub["id"], "name": "billing",
                "start_time": t + 0.001, "end_time": t + d - 0.001,
                "subsegments": [{"id": new_entity_id(), "name": "postgres@db", "namespace": "remote",
                                 "start_time": t + 0.002, "end_time": t + d * 0.8}],
            })  # fmt: skip
        else:
            sub.update(name="render", namespace="local")
        subs.append(sub)
        t += d * (0.5 if rng.random() < 0.3 else 1.0)  # some calls overlap the next
    root = {"id": new_entity_id(), "trace_id": tid, "name": "api", "start_time": start,
            "end_time": t + 0.003, "subsegments": subs, "http": {"request": {"url": "/cart"}}}  # fmt: skip
    return [root, *callee]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open("chdb", Path(tmp), 30)
        now = time.time()
        start = now - 1800
        began = time.perf_counter()
        docs: list[dict[str, Any]] = []
        entities = 0
        for i in range(args.traces):
            trace = _trace(rng, start + i * 1500 / args.traces)
            entities += sum(1 + len(d.get("subsegments", [])) for d in trace)
            docs += trace
            if len(docs) >= 2000 or i == args.traces - 1:
                store.write(Assembler(store).assemble(docs))
                docs = []
        print(
            f"loaded {args.traces} traces ({entities} entities) in {time.perf_counter() - began:.1f} s"
        )
        lo, hi = now - 3600, now

        cpu: dict[str, list[float]] = {"cp": [], "sl": [], "ref": []}

        def timed(fn: Any, kind: str) -> tuple[float, Any]:
            t0, c0 = time.perf_counter(), time.process_time()
            result = fn()
            cpu[kind].append(time.process_time() - c0)
            return time.perf_counter() - t0, result

        def summaries() -> int:
            token, n = None, 0
            while True:
                page = store.summaries(lo, hi, limit=1000, token=token)
                n += len(page.summaries)
                token = page.next_token
                if not token:
                    return n

        cp_times, sl_times, ref_times = [], [], []
        for _ in range(args.runs):
            t, found = timed(lambda: critical_path_across(store, lo, hi, None), "cp")
            cp_times.append(t)
            t, _ = timed(lambda: critical_path_across(store, lo, hi, None, slowest_percent=1), "sl")
            sl_times.append(t)
            t, n = timed(summaries, "ref")
            ref_times.append(t)
        cp, sl, ref = (statistics.median(x) for x in (cp_times, sl_times, ref_times))
        print(f"critical path over {found.analysed} traces: p50 {cp * 1000:.0f} ms "
              f"(target < 1000 ms); slowest 1 %: p50 {sl * 1000:.0f} ms")  # fmt: skip
        print(f"reference GetTraceSummaries over the same {n} traces: p50 {ref * 1000:.0f} ms")
        print(f"ratio critical path / summaries: {cp / ref:.2f}")
        ccp, csl, cref = (statistics.median(cpu[k]) for k in ("cp", "sl", "ref"))
        print(f"CPU time p50: critical path {ccp * 1000:.0f} ms, slowest 1 % {csl * 1000:.0f} ms, "
              f"summaries {cref * 1000:.0f} ms; ratio {ccp / cref:.2f}")  # fmt: skip
        for e in found.entries[:6]:
            print(f"  {e.service:10} {e.name:12} {e.operation:10} p50 {e.at_p50 * 1000:7.1f} ms"
                  f"  p99 {e.at_p99 * 1000:7.1f} ms")  # fmt: skip
        store.close()


if __name__ == "__main__":
    main()
