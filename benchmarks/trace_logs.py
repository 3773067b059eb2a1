"""Opening one trace's logs: ``GET /api/traces/{id}/logs`` among many stored events
(issue 19 item 9: p50 < 50 ms with 10M events stored).

On the embedded engine in a temporary directory, in this process: ``--events`` realistic
lines over one hour (the log store benchmark's generator: API Gateway access and
execution lines, Lambda platform and runtime lines, Powertools JSON, unrelated lines;
default 1,000,000 so a run stays under 3 minutes on the shared machine, ``--events
10000000`` for the goal's size), each traced request's segments stored too (an API
Gateway segment and a Lambda pair naming the function, its request id and the trace's
window, as the demo sends them), then ``--lookups`` random traces opened through the HTTP
route (Starlette's test client over the real app route), p50/p99, and the same traces
through :func:`fluoroscope.query.tracelogs.trace_logs` alone.

**Reference**: :meth:`LogStore.trace_lines` (the store's index lookup of the lines
carrying the id and their invocations', no segments read, no window scan) on the same
traces, p50; the ratio says what reading the trace and the candidate groups' window adds.

Usage: ``python -m benchmarks.trace_logs [--events N]``. Never run by pytest.

Measured with ``--events 10000000`` on the shared 2-core machine (load 9-15): p50 41.8 ms,
p99 64.0 ms (9.2 lines per trace); reference ``LogStore.trace_lines`` p50 19.2 ms (ratio
2.17). Before the index entries were read first and (e) kept to the invocations' own
span (query/tracelogs.py), the same opening read the candidate groups' whole window: on
the same 10M events, 80 ms of engine CPU per trace against 29 ms after.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Final

from starlette.applications import Starlette
from starlette.testclient import TestClient

from benchmarks import logs as gen
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.ingest.logwriter import LogWriter
from fluoroscope.model.errors import Throttled
from fluoroscope.query.tracelogs import trace_logs
from fluoroscope.server.logsops import build_logs_state
from fluoroscope.server.tracelogs import trace_logs_route
from fluoroscope.store.store import Store

TARGET_P50_MS: Final = 50.0


def _segments(trace: str, request: str, group: str, at: float) -> list[dict[str, Any]]:
    fn = group.rsplit("/", 1)[1]
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:{fn}"
    ids = [f"{random.getrandbits(64):016x}" for _ in range(3)]
    return [
        {"id": ids[0], "name": "orders-api/prod", "trace_id": trace, "start_time": at,
         "end_time": at + 0.3, "origin": "AWS::ApiGateway::Stage"},
        {"id": ids[1], "name": fn, "trace_id": trace, "parent_id": ids[0], "start_time": at,
         "end_time": at + 0.25, "origin": "AWS::Lambda", "resource_arn": arn,
         "aws": {"request_id": request}},
        {"id": ids[2], "name": fn, "trace_id": trace, "parent_id": ids[1], "start_time": at,
         "end_time": at + 0.25, "origin": "AWS::Lambda::Function",
         "aws": {"function_arn": arn}},
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=100)
    parser.add_argument(
        "--traces", type=int, default=2_000, help="traces whose segments are stored"
    )
    args = parser.parse_args()
    rng = random.Random(19)
    data = Path(tempfile.mkdtemp(prefix="fluoroscope-tracelogs-bench-"))
    store = Store.open("chdb", data, 30, database="bench")
    state = build_logs_state(store, retention_days=30)
    logs = state.store
    start = int(time.time() * 1000) - gen.HOUR_MS - 60_000
    traces: list[str] = []
    known: set[tuple[str, str]] = set()
    loaded = time.perf_counter()
    writer = LogWriter(logs)
    pending: list[Future[None]] = []
    invocations: dict[str, tuple[str, str, float]] = {}  # trace -> (request id, group, at)
    for group, stream, stamps, messages in gen.batches(
        rng, args.events, start, gen.HOUR_MS, 10_000, traces
    ):
        for at, message in zip(stamps, messages, strict=True):
            if message.startswith("REPORT RequestId: "):
                request = message[18:54]
                trace = message.split("XRAY TraceId: ", 1)[1][:35]
                invocations[trace] = (request, group, at / 1000)
        gen.ensure(logs, group, stream, known)
        while True:
            try:
                pending.append(writer.submit(group, stream, stamps, messages))
                break
            except Throttled:
                time.sleep(0.01)
        if len(pending) > 16:
            pending.pop(0).result()
    for future in pending:
        future.result()
    writer.close()
    sample = rng.sample(sorted(invocations), min(args.traces, len(invocations)))
    documents = [doc for trace in sample for doc in _segments(trace, *invocations[trace])]
    assembler = Assembler(store)
    for i in range(0, len(documents), 3000):
        store.write(assembler.assemble(documents[i : i + 3000]))
    total = gen.count(logs)
    for table in ("log_events", "log_index", "log_requests"):
        logs.query(f"OPTIMIZE TABLE `{logs.database}`.{table} FINAL")
    print(f"load: {total:,} events over one hour in {time.perf_counter() - loaded:.1f} s "
          f"(then merged)")  # fmt: skip
    sys.stdout.flush()

    app = Starlette(routes=[trace_logs_route(store, state)])
    lookups = sample[: args.lookups]
    with TestClient(app) as client:
        for trace in lookups[:5]:
            client.get(f"/api/traces/{trace}/logs")
        api_times, sizes = [], []
        for trace in lookups:
            began = time.perf_counter()
            answer = client.get(f"/api/traces/{trace}/logs")
            api_times.append((time.perf_counter() - began) * 1000)
            sizes.append(len(answer.json()["lines"]))
    fn_times = []
    for trace in lookups:
        began = time.perf_counter()
        trace_logs(store, logs, trace)
        fn_times.append((time.perf_counter() - began) * 1000)
    ref_times = []
    for trace in lookups:
        began = time.perf_counter()
        logs.trace_lines(trace)
        ref_times.append((time.perf_counter() - began) * 1000)
    p50 = statistics.median(api_times)
    p99 = statistics.quantiles(api_times, n=100)[98] if len(api_times) >= 100 else max(api_times)
    ref = statistics.median(ref_times)
    print(f"GET /api/traces/ID/logs among {total:,} events: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"({statistics.mean(sizes):.1f} lines per trace, {len(lookups)} traces); "
          f"trace_logs() alone p50 {statistics.median(fn_times):.1f} ms; reference "
          f"LogStore.trace_lines p50 {ref:.1f} ms (ratio {p50 / ref:.2f}); goal p50 < "
          f"{TARGET_P50_MS:.0f} ms: {'met' if p50 < TARGET_P50_MS else 'NOT met'}")  # fmt: skip
    state.close()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
