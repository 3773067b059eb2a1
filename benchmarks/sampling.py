"""Sampling: the what-if replay and GetSamplingTargets under many clients.

Two figures, each judged by a ratio measured in the same run:

* what-if: ``POST /api/sampling/whatif`` (a proposed set of 5 rules, replayed in the
  engine over every stored trace of the last hour) against GetTraceSummaries' first
  page (100 summaries) over the same window: p50 of each and their ratio.
* targets: GetSamplingTargets answered in-process by the sampling service with
  ``--clients`` clients active on the rule, against the same call with one client
  active: microseconds per call and their ratio (near 1 means the cost does not grow
  with the number of clients).

Usage: ``python -m benchmarks.sampling`` (from the repository's root). Never run by
pytest; runs in well under 3 minutes.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from benchmarks.ingest import Api, free_port, make_trace, percentile, start_server
from fluoroscope.server.sampling import SamplingService

RULES = [
    {"RuleName": f"r{i}", "ResourceARN": "*", "Priority": i + 1, "FixedRate": 0.1,
     "ReservoirSize": 2, "ServiceName": "*", "ServiceType": "*", "Host": "*",
     "HTTPMethod": method, "URLPath": f"/{i}*", "Version": 1}
    for i, method in enumerate(("GET", "POST", "*", "GET", "PUT"))
]  # fmt: skip


def _timed(call: Any, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def _targets_cost(clients: int, calls: int) -> float:
    clock = [1000.0]
    service = SamplingService(None, lambda: clock[0])

    def body(client: int) -> dict[str, Any]:
        return {"SamplingStatisticsDocuments": [
            {"RuleName": "Default", "ClientID": f"{client:024x}", "Timestamp": clock[0],
             "RequestCount": 50, "SampledCount": 3, "BorrowCount": 0}]}  # fmt: skip

    for client in range(clients):  # every client active
        clock[0] = 1000.0 + client * 5.0 / clients
        service.targets(body(client))
    started = time.perf_counter()
    for i in range(calls):
        clock[0] = 1005.0 + i * 5.0 / calls
        service.targets(body(i % clients))
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--clients", type=int, default=10_000)
    args = parser.parse_args()

    many = _targets_cost(args.clients, 20_000)
    one = _targets_cost(1, 20_000)
    print(f"GetSamplingTargets in-process: {many * 1e6:.0f} us/call with {args.clients} "
          f"clients, {one * 1e6:.0f} us/call with 1; ratio {many / one:.2f}")  # fmt: skip

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, Path(tmp))
        try:
            api = Api(port)
            rng = random.Random(20)
            now = time.time()
            batch: list[str] = []
            for _ in range(args.traces):
                docs = make_trace(rng, now - rng.random() * 3000)
                batch += [orjson.dumps(d).decode() for d in docs]
                if len(batch) >= 500:
                    api.call("POST", "/TraceSegments", {"TraceSegmentDocuments": batch})
                    batch = []
            if batch:
                api.call("POST", "/TraceSegments", {"TraceSegmentDocuments": batch})
            window = {"StartTime": now - 3600, "EndTime": now + 60}
            answer = api.call("POST", "/api/sampling/whatif", {**window, "Rules": RULES})
            print(f"what-if replayed {answer['traces']} stored traces")
            whatif = _timed(
                lambda: api.call("POST", "/api/sampling/whatif", {**window, "Rules": RULES}),
                args.runs,
            )
            summaries = _timed(lambda: api.call("POST", "/TraceSummaries", window), args.runs)
        finally:
            server.terminate()
            server.wait(60)
    w, s = percentile(whatif, 0.5) * 1000, percentile(summaries, 0.5) * 1000
    print(f"what-if p50 {w:.0f} ms; GetTraceSummaries (first page) p50 {s:.0f} ms; "
          f"ratio {w / s:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
