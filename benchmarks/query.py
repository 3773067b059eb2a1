"""Query latency and storage density at scale: trace by id, 1-hour filters, service graph.

Targets (DESIGN.md §7, raised by issue 21 once the first ones were met), at 10M stored
spans: trace by id p99 < 5 ms; a filter expression over a 1-hour window holding 1M traces
p50 < 100 ms; the service graph over 6 hours p50 < 30 ms (independent of span count);
<= 76 bytes on disk per span (what Jaeger on ClickHouse stores).

What one run does:

1. opens a fresh embedded store (``Store.open("chdb", tmpdir, 30)``) and loads ``--spans``
   realistic spans through the real write path - ``Assembler(store).assemble(docs)`` then
   ``store.write(batch)`` - in batches of ~``--batch`` documents, so trace summaries and
   the per-minute node/edge statistics exist exactly as ingest makes them. Documents are
   generated as plain dicts by ``--workers`` processes, in trace-start order (as they
   arrive in production). Every trace's documents go into one batch, so each batch gets a
   fresh Assembler: the result is what one long-lived Assembler would write, without the
   store reloads its eviction rule triggers when a historical load is replayed at once;
2. each trace: an API Gateway stage (entry, with http/user/2-4 annotations), one of
   6 services behind it (EC2/ECS), a second hop (EC2 or a Lambda function with its
   ``AWS::Lambda`` service segment), DynamoDB (``table_name``), S3 (``bucket_name``) and
   remote HTTP hosts as inferred downstreams, ~10 % of traces with a streamed subsegment;
   ~2.5 % faults, ~1 % throttles, ~4 % errors, a latency tail (~3 % > 1 s). 15 % of the
   traces spread over 5 hours, 85 % in the last hour (the "hot hour" the filters scan), so
   at 10M spans that hour holds ~850k traces;
3. measures, after the load (background merges still running, as in production):
   ``get_traces(store, [id])`` for random ids; ``store.summaries`` over the hot hour with
   the first page and no filter, then with the conditions of a handful of expressions from
   ``filter_condition``; a page of 1,000 summaries without a filter (GetTraceSummaries'
   largest page: what reading summaries costs per row, engine and Python apart);
   ``service_graph`` over 6 hours - each repetition's window ending at another instant of
   the last hour, since what it reads depends on how its bounds fall on the hours and
   10-minute buckets (21 buckets per node and edge for four starts in five, 12 or 7 for
   the rest) - and ``filtered_graph`` (a
   group's graph, recomputed from its traces' spans); bytes on disk per span (active
   parts, and the data dir) before and after ``OPTIMIZE TABLE ... FINAL``; load rate;
4. same-run references: ``SELECT 1`` (the engine's per-statement floor) and raw scans (a
   ``count()`` over spans and a full scan of the hot hour's summary rows), so the ratios
   survive a noisy machine;
5. a profile: time in the engine (statement incl. Arrow result) vs in Python, and
   ``EXPLAIN indexes = 1`` (parts/granules selected) for each measured statement; and for
   each figure the share of its repetitions that began while the engine was merging
   (``system.merges``, asked before each, untimed) with their p50 against the others'.

Usage: ``python benchmarks/query.py --spans 10000000``. Never run by pytest.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.graph import ServiceGraph, Statistics
from fluoroscope.query.compile import filter_condition
from fluoroscope.query.graph import filtered_graph, service_graph
from fluoroscope.query.groups import GroupService
from fluoroscope.query.groupstats import GroupStats, TrackedGroup
from fluoroscope.query.traces import get_traces
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.graphstats import cover
from fluoroscope.store.store import Store
from fluoroscope.store.transport import Transport

TARGET_BY_ID_MS: Final = 5.0  # p99
TARGET_FILTER_MS: Final = 100.0
TARGET_GRAPH_MS: Final = 30.0
TARGET_BYTES_PER_SPAN: Final = 76.0
HOUR: Final = 3600.0
COLD_FRACTION: Final = 0.15  # of the traces, spread over the 5 hours before the hot hour
COLD_HOURS: Final = 5.0
END_MARGIN: Final = 120.0  # the newest trace starts this long before the load begins
EXPRESSIONS: Final = (
    "fault",
    "responsetime > 2",
    'service("orders") { fault OR responsetime > 1 }',
    'annotation.customer = "c-123"',
    'http.url CONTAINS "/checkout"',
    'edge("orders", "payments") { fault }',
    "rootcause.fault.entity { last and remote }",
    'service(id(account.id: "123456789012")) { fault }',
)
GROUP_FILTER: Final = "fault"
GROUP_NAME: Final = "faults"
# What-if (not production SQL): the service() expression above written as a lambda over
# zipped arrays instead of arrayEnumerate + service_names[i] (see the report).
WHAT_IF_SERVICE: Final = (
    "arrayExists((n, b, r) -> n = {f0:String} AND (bitAnd(b, 2) != 0 OR r > {f1:Float64}), "
    "service_names, svc_bits, svc_max_rt)"
)
_MP: Final = mp.get_context("fork")
BUDGET: list[float] = [60.0]  # seconds of repetitions per figure (--budget)

# -- the application being traced ---------------------------------------------------------

GATEWAY: Final = "shop-api/prod"
HOST: Final = "api.shop.example.com"
# route -> (first service, method, second service or "", second is a Lambda function)
ROUTES: Final = (
    ("/checkout", "checkout", "POST", "payments", True),
    ("/orders/{n}", "orders", "GET", "inventory", False),
    ("/cart", "cart", "PUT", "pricing", True),
    ("/search", "search", "GET", "inventory", False),
    ("/users/{n}", "users", "GET", "", False),
    ("/orders", "orders", "POST", "payments", True),
)
ROUTE_WEIGHTS: Final = (14, 26, 14, 24, 12, 10)
TABLES: Final = {
    "checkout": ("carts", "orders"),
    "orders": ("orders",),
    "cart": ("carts",),
    "search": ("catalog",),
    "users": ("users", "sessions"),
    "inventory": ("stock",),
    "payments": ("payments",),
    "pricing": ("prices",),
}
BUCKETS: Final = {"payments": "shop-receipts", "inventory": "shop-stock-exports"}
REMOTE_HOSTS: Final = {
    "payments": "api.stripe.com",
    "pricing": "fx.example.net",
    "users": "auth.example.com",
    "inventory": "warehouse.partner.example",
}
ORIGINS: Final = {
    "checkout": "AWS::ECS::Container",
    "orders": "AWS::EC2::Instance",
    "cart": "AWS::ECS::Container",
    "search": "AWS::EC2::Instance",
    "users": "AWS::EC2::Instance",
    "inventory": "AWS::ECS::Container",
}
AGENTS: Final = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "okhttp/4.12.0",
    "python-requests/2.32.3",
)
TIERS: Final = ("free", "pro", "enterprise")
SDK: Final = {"sdk_version": "2.14.0", "sdk": "X-Ray for Python"}
CUSTOMERS: Final = 300
USERS: Final = 5000


def _id(rng: random.Random) -> str:
    return f"{rng.getrandbits(64):016x}"


def _latency(rng: random.Random) -> float:
    """Seconds: lognormal around 120 ms, with a tail (~3 % above 1 s, ~1 % above 2 s)."""
    base = math.exp(rng.gauss(math.log(0.12), 0.55))
    roll = rng.random()
    if roll < 0.012:
        return base + rng.uniform(2.0, 6.0)
    if roll < 0.032:
        return base + rng.uniform(0.9, 2.0)
    return base


def _cause(rng: random.Random, kind: str, message: str) -> dict[str, Any]:
    return {
        "working_directory": "/srv/app",
        "exceptions": [
            {
                "id": _id(rng),
                "message": message,
                "type": kind,
                "stack": [
                    {
                        "path": "/srv/app/handlers.py",
                        "line": rng.randrange(20, 400),
                        "label": "call",
                    }
                ],
            }
        ],
    }


def _aws_call(
    rng: random.Random, service: str, start: float, dur: float, resource: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": _id(rng),
        "name": service,
        "start_time": start,
        "end_time": start + dur,
        "namespace": "aws",
        "http": {"response": {"status": 200, "content_length": rng.randrange(60, 4000)}},
        "aws": {
            "region": "us-east-1",
            "request_id": f"{rng.getrandbits(128):032X}",
            "retries": 0,
            **resource,
        },
    }


def _remote(rng: random.Random, host: str, start: float, dur: float, path: str) -> dict[str, Any]:
    return {
        "id": _id(rng),
        "name": host,
        "start_time": start,
        "end_time": start + dur,
        "namespace": "remote",
        "http": {
            "request": {"method": "POST", "url": f"https://{host}{path}"},
            "response": {"status": 200, "content_length": rng.randrange(100, 3000)},
        },
    }


def _fail(entity: dict[str, Any], status: int, kind: str) -> None:
    """Mark ``entity`` as failed the way the SDK does for ``status``."""
    if status >= 500:
        entity["fault"] = True
    elif status == 429 or kind == "throttle":
        entity["error"] = True
        entity["throttle"] = True
    else:
        entity["error"] = True
    http = entity.get("http")
    if isinstance(http, dict):
        http.setdefault("response", {})["status"] = status


def make_trace(rng: random.Random, t: float) -> list[dict[str, Any]]:
    """One trace starting at ``t``: its documents in the order an SDK would send them."""
    trace_id = f"1-{int(t):08x}-{rng.getrandbits(96):024x}"
    route, first, method, second, second_lambda = rng.choices(ROUTES, ROUTE_WEIGHTS)[0]
    path = route.replace("{n}", str(rng.randrange(100_000)))
    total = _latency(rng)
    roll = rng.random()
    outcome = "ok"
    if roll < 0.025:
        outcome = "fault"
    elif roll < 0.035:
        outcome = "throttle"
    elif roll < 0.075:
        outcome = "error"
    gw_status = {"ok": 200, "fault": 502, "throttle": 429, "error": 404}[outcome]
    if method == "POST" and outcome == "ok":
        gw_status = 201

    # API Gateway stage: the entry point, carrying http, user and annotations.
    gw_id = _id(rng)
    annotations: dict[str, Any] = {
        "customer": f"c-{rng.randrange(CUSTOMERS)}",
        "tier": rng.choice(TIERS),
    }
    if rng.random() < 0.6:
        annotations["cart_items"] = rng.randrange(1, 40)
    if rng.random() < 0.4:
        annotations["beta"] = rng.random() < 0.2
    gw: dict[str, Any] = {
        "id": gw_id,
        "trace_id": trace_id,
        "name": GATEWAY,
        "origin": "AWS::ApiGateway::Stage",
        "start_time": t,
        "end_time": t + total,
        "resource_arn": "arn:aws:apigateway:us-east-1::/restapis/a1b2c3d4e5/stages/prod",
        "http": {
            "request": {
                "method": method,
                "url": f"https://{HOST}/prod{path}",
                "client_ip": f"203.0.{rng.randrange(256)}.{rng.randrange(256)}",
                "user_agent": rng.choice(AGENTS),
                "x_forwarded_for": True,
            },
            "response": {"status": gw_status, "content_length": rng.randrange(100, 9000)},
        },
        "annotations": annotations,
        "aws": {"api_gateway": {"account_id": "123456789012", "rest_api_id": "a1b2c3d4e5"}},
    }
    if rng.random() < 0.5:
        gw["user"] = f"user-{rng.randrange(USERS)}"
    gw_call = _remote(rng, first, t + 0.001, total - 0.002, path)
    gw_call["http"]["request"]["method"] = method
    gw_call["traced"] = True
    gw["subsegments"] = [gw_call]

    # The first service behind the gateway.
    a_start = t + 0.002
    a_dur = total - 0.004
    a: dict[str, Any] = {
        "id": _id(rng),
        "trace_id": trace_id,
        "parent_id": gw_call["id"],
        "name": first,
        "origin": ORIGINS[first],
        "start_time": a_start,
        "end_time": a_start + a_dur,
        "http": {
            "request": {
                "method": method,
                "url": f"http://{first}.internal:8080{path}",
                "client_ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
            },
            "response": {"status": 200, "content_length": rng.randrange(100, 9000)},
        },
        "aws": {
            "xray": SDK,
            "ec2": {
                "instance_id": f"i-{rng.getrandbits(68):017x}",
                "availability_zone": rng.choice(("us-east-1a", "us-east-1b", "us-east-1c")),
            },
        },
        "service": {"version": "1.8.2", "runtime": "CPython", "runtime_version": "3.12.4"},
        "metadata": {"default": {"request_id": f"{rng.getrandbits(128):032x}"}},
    }
    a_subs: list[dict[str, Any]] = [
        {
            "id": _id(rng),
            "name": rng.choice(("validate_request", "load_profile", "render")),
            "start_time": a_start + 0.0005,
            "end_time": a_start + 0.0005 + rng.uniform(0.0003, 0.004),
            "metadata": {"default": {"items": rng.randrange(50)}},
        }
    ]
    tables = TABLES[first]
    for i in range(rng.choice((1, 1, 2))):
        op = rng.choice(("GetItem", "Query", "PutItem", "UpdateItem"))
        dyn = _aws_call(
            rng,
            "DynamoDB",
            a_start + 0.004 + i * 0.01,
            rng.uniform(0.003, 0.02),
            {"operation": op, "table_name": tables[i % len(tables)]},
        )
        a_subs.append(dyn)
    host = REMOTE_HOSTS.get(first)
    docs: list[dict[str, Any]] = []
    b_docs: list[dict[str, Any]] = []
    if second:
        b_start = a_start + 0.02
        b_dur = max(a_dur * 0.6, 0.005)
        if second_lambda:
            call = _aws_call(
                rng,
                "Lambda",
                b_start,
                b_dur,
                {"operation": "Invoke", "function_name": second},
            )
        else:
            call = _remote(rng, second, b_start, b_dur, "/v1/" + second)
            call["traced"] = True
        a_subs.append(call)
        b_docs = _second_hop(rng, trace_id, second, second_lambda, call["id"], b_start, b_dur)
    elif host:
        a_subs.append(_remote(rng, host, a_start + 0.02, max(a_dur * 0.5, 0.004), "/oauth/token"))
    a["subsegments"] = a_subs

    if outcome == "fault":
        # the deepest call fails with a 5xx, its segment faults, so does everything above
        culprit = b_docs[0]["subsegments"][-1] if b_docs else a_subs[-1]
        _fail(culprit, 503 if b_docs else 500, "fault")
        culprit["cause"] = _cause(rng, "ServiceUnavailable", "upstream returned 503")
        for doc in b_docs:
            _fail(doc, 500, "fault")
        if b_docs:
            _fail(a_subs[-1], 500, "fault")
        _fail(a, 500, "fault")
        a["cause"] = _cause(rng, "UpstreamError", f"{second or host} failed")
        _fail(gw_call, 500, "fault")
        _fail(gw, 502, "fault")
    elif outcome == "throttle":
        dyn = a_subs[1]
        _fail(dyn, 400, "throttle")
        dyn["cause"] = _cause(rng, "ProvisionedThroughputExceededException", "Rate exceeded")
        _fail(a, 429, "throttle")
        _fail(gw_call, 429, "throttle")
    elif outcome == "error":
        _fail(a, 404, "error")
        a["cause"] = _cause(rng, "NotFound", f"no such item {path}")
        _fail(gw_call, 404, "error")

    if rng.random() < 0.1:
        # a streamed subsegment: sent on its own, before its segment is complete
        streamed = a_subs.pop(1)
        streamed["type"] = "subsegment"
        streamed["trace_id"] = trace_id
        streamed["parent_id"] = a["id"]
        docs.append(streamed)
    docs.extend(b_docs)
    docs.append(a)
    docs.append(gw)
    return docs


def _second_hop(
    rng: random.Random,
    trace_id: str,
    name: str,
    is_lambda: bool,
    parent: str,
    start: float,
    dur: float,
) -> list[dict[str, Any]]:
    """The second service's segments (a Lambda function also gets its service segment)."""
    subs: list[dict[str, Any]] = []
    t = start + 0.003
    table = TABLES[name][0]
    subs.append(
        _aws_call(
            rng,
            "DynamoDB",
            t,
            rng.uniform(0.003, 0.015),
            {"operation": rng.choice(("GetItem", "Query", "UpdateItem")), "table_name": table},
        )
    )
    bucket = BUCKETS.get(name)
    if bucket and rng.random() < 0.7:
        op = rng.choice(("GetObject", "PutObject"))
        subs.append(
            _aws_call(
                rng,
                "S3",
                t + 0.012,
                rng.uniform(0.005, 0.03),
                {"operation": op, "bucket_name": bucket, "key": f"r/{rng.randrange(10**6)}.json"},
            )
        )
    host = REMOTE_HOSTS.get(name)
    if host:
        subs.append(_remote(rng, host, t + 0.02, max(dur * 0.5, 0.002), "/v1/charges"))
    function: dict[str, Any] = {
        "id": _id(rng),
        "trace_id": trace_id,
        "name": name,
        "start_time": start + 0.001,
        "end_time": start + dur - 0.001,
        "subsegments": subs,
    }
    if not is_lambda:
        function.update(
            parent_id=parent,
            origin="AWS::ECS::Container",
            http={
                "request": {"method": "POST", "url": f"http://{name}.internal:8080/v1/{name}"},
                "response": {"status": 200},
            },
            aws={"xray": SDK, "ecs": {"container": f"{name}-{rng.randrange(8)}"}},
        )
        return [function]
    service: dict[str, Any] = {
        "id": _id(rng),
        "trace_id": trace_id,
        "parent_id": parent,
        "name": name,
        "origin": "AWS::Lambda",
        "start_time": start,
        "end_time": start + dur,
        "http": {"response": {"status": 200}},
        "aws": {"request_id": f"{rng.getrandbits(128):032x}"},
        "resource_arn": f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
    }
    function.update(
        parent_id=service["id"],
        origin="AWS::Lambda::Function",
        aws={
            "xray": SDK,
            "function_arn": f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
            "resource_names": [name],
            "account_id": "123456789012",
        },
    )
    return [function, service]


@dataclass(frozen=True)
class Layout:
    """Where trace ``k`` of ``traces`` starts: 15 % over 5 cold hours, 85 % in the hot hour."""

    traces: int
    t0: float  # start of the 6 hours

    def start(self, k: int) -> float:
        u = k / self.traces
        if u < COLD_FRACTION:
            return self.t0 + u / COLD_FRACTION * COLD_HOURS * HOUR
        return self.t0 + COLD_HOURS * HOUR + (u - COLD_FRACTION) / (1 - COLD_FRACTION) * HOUR

    @property
    def hot(self) -> tuple[float, float]:
        return self.t0 + COLD_HOURS * HOUR, self.t0 + (COLD_HOURS + 1) * HOUR


def generate(job: tuple[int, int, int, Layout]) -> list[dict[str, Any]]:
    """Documents of traces ``[first, first + count)`` (a worker process's unit of work)."""
    seed, first, count, layout = job
    rng = random.Random(seed * 1_000_003 + first)
    docs: list[dict[str, Any]] = []
    for k in range(first, first + count):
        docs.extend(make_trace(rng, round(layout.start(k), 6)))
    return docs


def entities(doc: Mapping[str, Any]) -> int:
    return 1 + sum(entities(child) for child in doc.get("subsegments", ()))


def spans_per_trace(seed: int, traces: int = 4000) -> float:
    """The mean number of entities (spans) per trace, from a sample."""
    rng = random.Random(seed - 1)
    return sum(entities(d) for _ in range(traces) for d in make_trace(rng, 1.7e9)) / traces


# -- measurement --------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass
class Figure:
    """Latencies (seconds) of one measured operation."""

    name: str
    runs: list[float] = field(default_factory=list)
    engine: list[float] = field(default_factory=list)  # time inside transport calls
    target_ms: float | None = None
    target_q: float = 0.5  # the percentile the target bounds
    note: str = ""
    merging: list[bool] = field(default_factory=list)  # a merge ran as the rep began

    def p(self, q: float) -> float:
        return percentile(self.runs, q) * 1000

    def engine_share(self) -> float:
        total = sum(self.runs)
        return sum(self.engine) / total if total else float("nan")

    def merges_note(self) -> str:
        """How many reps began while the engine merged, and their p50 against the rest's."""
        busy = [r for r, m in zip(self.runs, self.merging, strict=True) if m]
        if not busy:
            return "merging 0 %"
        quiet = [r for r, m in zip(self.runs, self.merging, strict=True) if not m]
        return (
            f"merging {len(busy) * 100 // len(self.runs)} % (p50 {percentile(busy, 0.5) * 1000:.2f}"
            f" ms against {percentile(quiet, 0.5) * 1000:.2f} quiet)"
        )


@dataclass
class Call:
    sql: str
    params: dict[str, Any]
    seconds: float


class TimingTransport:
    """Passes every call to ``inner`` and records the SQL and its time (the engine part:
    statement plus conversion of the result to Arrow)."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.calls: list[Call] = []

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        t = time.perf_counter()
        self.inner.execute(sql, params)
        self.calls.append(Call(sql, dict(params or {}), time.perf_counter() - t))

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        t = time.perf_counter()
        table = self.inner.query_arrow(sql, params)
        self.calls.append(Call(sql, dict(params or {}), time.perf_counter() - t))
        return table

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        t = time.perf_counter()
        self.inner.insert_arrow(table, data)
        self.calls.append(Call(f"INSERT INTO {table}", {}, time.perf_counter() - t))

    @property
    def compression_configured(self) -> bool:
        return self.inner.compression_configured

    def close(self) -> None:
        self.inner.close()


def measure(
    figure: Figure, timing: TimingTransport, reps: int, fn: Callable[[int], object]
) -> Figure:
    """Run ``fn(i)`` ``reps`` times (after one warm-up) recording total and engine time;
    stop early, after at least 3 runs, once ``BUDGET`` seconds have passed. Before each
    run (untimed) it asks the engine whether a background merge is running: the figures
    are taken after the load, while its merges compete for the two cores."""
    fn(-1)
    began = time.perf_counter()
    for i in range(reps):
        if i >= 3 and time.perf_counter() - began > BUDGET[0]:
            break
        figure.merging.append(merges_running(timing.inner) > 0)
        timing.calls.clear()
        t = time.perf_counter()
        fn(i)
        figure.runs.append(time.perf_counter() - t)
        figure.engine.append(sum(c.seconds for c in timing.calls))
    return figure


def merges_running(raw: Transport) -> int:
    """How many merges the engine is running now (``system.merges``)."""
    return int(raw.query_arrow("SELECT count() FROM system.merges").column(0)[0].as_py())


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def part_bytes(raw: Transport, db: str) -> dict[str, tuple[int, int, int]]:
    """Per table: active bytes on disk, active parts, rows."""
    table = raw.query_arrow(
        "SELECT table, sum(bytes_on_disk), count(), sum(rows) FROM system.parts "
        "WHERE active AND database = {db:String} GROUP BY table ORDER BY table",
        {"db": db},
    )
    names, sizes, parts, rows = (table.column(i).to_pylist() for i in range(4))
    return {
        n: (int(s), int(p), int(r)) for n, s, p, r in zip(names, sizes, parts, rows, strict=True)
    }


def _id_params(call: Call, trace_id: str) -> dict[str, Any]:
    """The by-id statement's parameters for another trace id (and its epoch, if used)."""
    if "id" in call.params:  # the one-trace form
        params = {**call.params, "id": trace_id}
        if "epoch" in params:
            params["epoch"] = int(trace_id[2:10], 16)
        return params
    params = {**call.params, "ids": [trace_id]}
    if "epochs" in params:
        params["epochs"] = [int(trace_id[2:10], 16)]
    return params


def explain(raw: Transport, call: Call) -> str:
    """The index analysis of ``call``'s statement, condensed to parts/granules lines."""
    try:
        table = raw.query_arrow("EXPLAIN indexes = 1 " + call.sql, call.params)
    except Exception as exc:
        return f"(EXPLAIN failed: {exc})"
    keep: list[str] = []
    for line in (str(x).strip() for x in table.column(0).to_pylist()):
        wanted = any(k in line for k in ("Parts:", "Granules:", "Type:", "Condition:"))
        if wanted and "Condition: true" not in line and line not in keep:
            keep.append(line)
    return "; ".join(keep)


# -- the run ------------------------------------------------------------------------------


@dataclass
class Loaded:
    layout: Layout
    traces: int
    docs: int
    spans: int
    seconds: float
    sample: list[str]
    group: TrackedGroup  # GROUP_FILTER's group, its statistics kept through the load
    group_seconds: float  # of ``seconds``, keeping them (GroupStats.prepare)


def load(store: Store, spans_wanted: int, batch_docs: int, workers: int, seed: int) -> Loaded:
    """Generate and load, keeping a group's statistics as the server does."""
    traces = max(1, round(spans_wanted / spans_per_trace(seed)))
    now = time.time()
    layout = Layout(traces, now - END_MARGIN - (COLD_HOURS + 1) * HOUR)
    groups = GroupService(store)
    groups.create(GROUP_NAME, GROUP_FILTER, False, False)
    tracker = GroupStats(store, groups, clock=lambda: layout.t0 - 2 * HOUR)  # before the data
    tracker.refresh()
    tracked = tracker.tracked(GROUP_NAME)
    assert tracked is not None
    group_s = 0.0
    per_job = max(1, batch_docs // 4)  # make_trace yields ~4 documents per trace
    jobs = [(seed, f, min(per_job, traces - f), layout) for f in range(0, traces, per_job)]
    rng = random.Random(seed)
    sample: list[str] = []
    n_docs = n_spans = n_traces = 0
    assemble_s = write_s = 0.0
    started = time.perf_counter()
    last_report = started
    pool = _MP.Pool(workers) if workers > 0 else None
    # at most a few chunks generated ahead of the writer: imap alone reads its jobs all at
    # once, and a 10M load on a busy machine held gigabytes of documents waiting
    ahead = threading.Semaphore(max(workers, 1) * 4)

    def paced() -> Iterator[tuple[int, int, int, Layout]]:
        for job in jobs:
            ahead.acquire()
            yield job

    chunks: Iterator[list[dict[str, Any]]] = (
        pool.imap(generate, paced()) if pool is not None else map(generate, jobs)
    )
    try:
        for (_, _, count, _), docs in zip(jobs, chunks, strict=True):
            ahead.release()
            t = time.perf_counter()
            assembler = Assembler(store)
            assembler.track_contributions = True
            batch = assembler.assemble(docs)
            t2 = time.perf_counter()
            tables = encode_batch(batch)
            tg = time.perf_counter()
            (tables,) = tracker.prepare([tables])
            group_s += time.perf_counter() - tg
            store.insert_tables(tables)
            t3 = time.perf_counter()
            assemble_s += t2 - t
            write_s += t3 - t2
            n_docs += len(docs)
            n_spans += len(batch)
            n_traces += count
            for doc in rng.sample(docs, min(20, len(docs))):
                sample.append(str(doc["trace_id"]))
            if t3 - last_report > 30:
                last_report = t3
                el = t3 - started
                print(
                    f"  loaded {n_spans:,} spans / {n_traces:,} traces in {el:.0f} s "
                    f"({n_spans / el:,.0f} spans/s; assemble {assemble_s:.0f} s, write {write_s:.0f} s)",
                    flush=True,
                )
    finally:
        if pool is not None:
            for _ in jobs:  # a feeder waiting for room must not hold up the pool's end
                ahead.release()
            pool.terminate()
    seconds = time.perf_counter() - started
    print(
        f"  load done: {n_spans:,} spans, {n_traces:,} traces, {n_docs:,} documents in {seconds:.1f} s "
        f"(assemble {assemble_s:.1f} s, write {write_s:.1f} s, rest = waiting for generation)",
        flush=True,
    )
    return Loaded(layout, n_traces, n_docs, n_spans, seconds, sample, tracked, group_s)


_LOADED: Final = "loaded.json"  # beside a kept store: what --reuse needs of its load


def _save(loaded: Loaded, data_dir: Path) -> None:
    saved = {
        "traces": loaded.layout.traces, "t0": loaded.layout.t0, "loaded_traces": loaded.traces,
        "docs": loaded.docs, "spans": loaded.spans, "seconds": loaded.seconds,
        "sample": loaded.sample, "group_seconds": loaded.group_seconds,
    }  # fmt: skip
    (data_dir / _LOADED).write_text(json.dumps(saved))


def _reload(store: Store, data_dir: Path) -> Loaded:
    """What :func:`load` returned for the store kept in ``data_dir``; the tracked group
    comes back from the store (its statistics were kept since before the data)."""
    saved = json.loads((data_dir / _LOADED).read_text())
    layout = Layout(saved["traces"], saved["t0"])
    tracker = GroupStats(store, GroupService(store), clock=lambda: layout.t0 - 2 * HOUR)
    tracker.refresh()
    tracked = tracker.tracked(GROUP_NAME)
    assert tracked is not None, "the kept store has no tracked group"
    return Loaded(layout, saved["loaded_traces"], saved["docs"], saved["spans"],
                  saved["seconds"], saved["sample"], tracked, saved["group_seconds"])  # fmt: skip


def _graph_shape(graph: ServiceGraph) -> dict[tuple[str, str], Any]:
    """What two graphs must agree on: each node's and edge's counts and histogram."""

    def counts(st: Statistics | None) -> Any:
        if st is None:
            return None
        return (st.total, st.ok, st.errors, st.throttles, st.faults,
                round(st.response_time, 6), tuple(st.histogram))  # fmt: skip

    nodes = graph.nodes
    return {
        (n.name, n.type): (
            counts(n.statistics),
            sorted(((nodes[e.target].name, nodes[e.target].type), counts(e.statistics))
                   for e in n.edges),
        )
        for n in nodes
    }  # fmt: skip


def _buckets(lo: float, hi: float) -> int:
    """How many buckets (per node and edge) the graph over ``[lo, hi)`` reads."""
    return sum((end - first) // step for step, first, end in cover(int(lo) // 60 * 60, int(hi)))


def report_line(fig: Figure, ref_ms: float | None = None) -> str:
    p50, p99 = fig.p(0.5), fig.p(0.99)
    parts = [f"{fig.name:<58} n={len(fig.runs):<4} p50 {p50:9.2f} ms  p99 {p99:9.2f} ms"]
    if fig.target_ms is not None:
        bound = fig.p(fig.target_q)
        ok = "MET " if bound < fig.target_ms else "MISS"
        name = f"p{fig.target_q * 100:g}"
        parts.append(
            f"target {name} < {fig.target_ms:g} ms  ratio {bound / fig.target_ms:6.3f} {ok}"
        )
    if ref_ms:
        parts.append(f"{p50 / ref_ms:7.1f}x SELECT 1")
    parts.append(f"engine {fig.engine_share() * 100:4.0f} %")
    parts.append(fig.merges_note())
    if fig.note:
        parts.append(fig.note)
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--spans", type=int, default=10_000_000, help="spans to load (default 10M)")
    ap.add_argument("--batch", type=int, default=20_000, help="documents per assemble+write")
    ap.add_argument("--workers", type=int, default=1, help="generator processes (0: inline)")
    # p99 of 200 repetitions is their second slowest, one scheduling hiccup of a shared
    # machine's; of 1,000, the tenth (~4 s at 10M spans)
    ap.add_argument("--reps", type=int, default=1000, help="repetitions of trace by id")
    ap.add_argument("--filter-reps", type=int, default=25, help="repetitions of each filter")
    ap.add_argument("--graph-reps", type=int, default=60, help="repetitions of the graph")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--budget", type=float, default=60.0, help="max seconds of repetitions per figure"
    )
    ap.add_argument("--no-optimize", action="store_true", help="skip OPTIMIZE TABLE ... FINAL")
    ap.add_argument("--keep", type=Path, help="load into this (new) directory and keep it")
    ap.add_argument(
        "--reuse",
        type=Path,
        help="measure the store a run with --keep loaded there, without loading (e.g. load "
        "10M spans once, measure on a quiet machine later); --spans etc. are ignored",
    )
    args = ap.parse_args(argv)
    BUDGET[0] = args.budget

    if args.reuse:
        return run(args, args.reuse)
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=False)
        data_dir = args.keep
    else:
        data_dir = Path(tempfile.mkdtemp(prefix="fluoroscope-query-bench-"))
    try:
        return run(args, data_dir)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def run(args: argparse.Namespace, data_dir: Path) -> int:
    store = Store.open("chdb", data_dir, 30)
    raw: Transport = store._t
    db = store.database
    timing = TimingTransport(raw)
    tstore = Store(timing, db)
    if args.reuse:
        loaded = _reload(store, data_dir)
        print(f"data dir {data_dir}: {loaded.spans:,} spans loaded earlier, not loading")
    else:
        print(
            f"data dir {data_dir}; loading {args.spans:,} spans (batches of ~{args.batch:,} docs)"
        )
        loaded = load(store, args.spans, args.batch, args.workers, args.seed)
        if args.keep:
            _save(loaded, data_dir)
    layout, n_traces, n_docs, n_spans = loaded.layout, loaded.traces, loaded.docs, loaded.spans
    load_s, sample = loaded.seconds, loaded.sample
    rng = random.Random(args.seed + 1)
    hot_lo, hot_hi = layout.hot
    six_lo, six_hi = layout.t0, layout.t0 + (COLD_HOURS + 1) * HOUR
    in_hot = int(
        raw.query_arrow(
            f"SELECT count() FROM `{db}`.traces FINAL "
            "WHERE start_time >= {a:Float64} AND start_time <= {b:Float64}",
            {"a": hot_lo, "b": hot_hi},
        )
        .column(0)[0]
        .as_py()
    )
    parts_loaded = part_bytes(raw, db)
    load_before = os.getloadavg()[0]  # the machine's: other sessions share its two cores

    # -- same-run references --------------------------------------------------------------
    ref_one = measure(
        Figure("ref: SELECT 1"), timing, 200, lambda i: timing.query_arrow("SELECT 1")
    )
    ref_count = measure(
        Figure("ref: SELECT count() FROM spans (part metadata)"),
        timing,
        50,
        lambda i: timing.query_arrow(f"SELECT count() FROM `{db}`.spans"),
    )
    ref_scan = measure(
        Figure("ref: full scan of the hot hour's summaries (no FINAL)"),
        timing,
        15,
        lambda i: timing.query_arrow(
            f"SELECT count(), sum(response_time), countIf(position(http_url, '/checkout') > 0) "
            f"FROM `{db}`.traces WHERE ts >= {{a:UInt32}} AND ts <= {{b:UInt32}}",
            {"a": int(hot_lo), "b": int(hot_hi)},
        ),
    )
    ref_spans_scan = measure(
        Figure("ref: scan of spans.name (all rows)"),
        timing,
        10,
        lambda i: timing.query_arrow(f"SELECT count() FROM `{db}`.spans WHERE name = 'payments'"),
    )
    floor_ms = ref_one.p(0.5)

    # -- trace by id --------------------------------------------------------------------
    ids = [rng.choice(sample) for _ in range(args.reps + 1)]
    by_id = measure(
        Figure("trace by id: get_traces(store, [id])", target_ms=TARGET_BY_ID_MS, target_q=0.99),
        timing,
        args.reps,
        lambda i: get_traces(tstore, [ids[i]]),
    )
    by_id_call = timing.calls[-1]
    found, missing = get_traces(tstore, ids[:20])
    by_id.note = f"({sum(len(t.documents) for t in found) / max(len(found), 1):.1f} segments/trace, {len(missing)} missing of 20)"
    by_id_raw = measure(
        Figure("  profile: the entities statement alone"),
        timing,
        max(args.reps // 2, 10),
        lambda i: timing.query_arrow(by_id_call.sql, _id_params(by_id_call, ids[i])),
    )

    # -- 1-hour filters -------------------------------------------------------------------
    filters: list[tuple[Figure, Call | None, int]] = []

    def window(i: int) -> tuple[float, float]:
        shift = 0.0 if i < 0 else rng.uniform(-60.0, 0.0)  # defeat any result caching
        return hot_lo + shift, hot_hi + shift

    def page(
        where: str | None, params: Mapping[str, Any] | None, limit: int = 100
    ) -> Callable[[int], object]:
        def go(i: int) -> object:
            lo, hi = window(i)
            return tstore.summaries(lo, hi, limit=limit, where_clause=where, where_params=params)

        return go

    def page_split(fig: Figure) -> Figure:
        engine = percentile(fig.engine, 0.5) * 1000
        python = percentile([r - e for r, e in zip(fig.runs, fig.engine, strict=True)], 0.5)
        fig.note = f"(p50 engine {engine:.2f} ms, Python {python * 1000:.2f} ms)"
        return fig

    expressions: list[tuple[str, str | None, dict[str, Any] | None]] = [("(no filter)", None, None)]
    for text in EXPRESSIONS:
        t = time.perf_counter()
        cond = filter_condition(text)
        compile_ms = (time.perf_counter() - t) * 1000
        expressions.append((f"{text}  [compile {compile_ms:.2f} ms]", cond.sql, cond.params))
    expressions.append(
        (
            "what-if: service() as a zipped-array lambda (not production SQL)",
            WHAT_IF_SERVICE,
            {"f0": "orders", "f1": 1.0},
        )
    )
    for label, where, params in expressions:
        fig = measure(
            Figure(f"1-h filter: {label}", target_ms=TARGET_FILTER_MS),
            timing,
            args.filter_reps,
            page(where, params),
        )
        call = timing.calls[-1] if timing.calls else None
        matches = 0
        if where is not None:
            matches = int(
                raw.query_arrow(
                    f"SELECT count() FROM `{db}`.traces WHERE ts >= {{ha:UInt32}} AND ts <= {{hb:UInt32}} AND ({where})",
                    {**(params or {}), "ha": int(hot_lo), "hb": int(hot_hi)},
                )
                .column(0)[0]
                .as_py()
            )
            fig.note = f"({matches:,} matching traces in the hour)"
        filters.append((fig, call, matches))

    big_page = page_split(
        measure(
            Figure("page of 1,000 summaries (no filter)"),
            timing,
            args.filter_reps,
            page(None, None, 1000),
        )
    )

    # -- service graph over 6 hours -------------------------------------------------------
    # Each repetition's 6 hours end at another instant of the last hour: the graph reads
    # 21 buckets per node and edge (hours, 10-minute buckets, minutes) for four starts in
    # five, 12 or 7 for the rest (store/graphstats.py cover), so a window fixed by the
    # run's clock made the figure depend on the minute the run started (12 buckets one
    # night, 21 the next morning)
    shifts = random.Random(args.seed + 2)
    windows = [(six_lo, six_hi)] + [
        (six_lo - d, six_hi - d)
        for d in (shifts.uniform(0.0, HOUR) for _ in range(args.graph_reps))
    ]
    buckets = sorted(_buckets(lo, hi) for lo, hi in windows[1:])
    graph = measure(
        Figure(
            "service graph over 6 h: service_graph(store, start, end)", target_ms=TARGET_GRAPH_MS
        ),
        timing,
        args.graph_reps,
        lambda i: service_graph(tstore, *windows[i + 1]),
    )
    timing.calls.clear()
    g = service_graph(tstore, six_lo, six_hi)
    graph_calls = list(timing.calls)
    graph.note = (
        f"({len(g.nodes)} nodes, {sum(len(n.edges) for n in g.nodes)} edges; windows shifted "
        f"over an hour: {buckets[0]}-{buckets[-1]} buckets, median {buckets[len(buckets) // 2]})"
    )
    # a group's graph: read from the statistics kept for it at ingest
    group_filter = filter_condition(GROUP_FILTER)
    kept = loaded.group
    group_graph = measure(
        Figure(f"group graph over 6 h ({GROUP_FILTER}): kept at ingest", target_ms=TARGET_GRAPH_MS),
        timing,
        args.graph_reps,
        lambda i: filtered_graph(tstore, *windows[i + 1], group_filter, kept),
    )
    gg = filtered_graph(tstore, six_lo, six_hi, group_filter, kept)
    group_graph.note = f"({len(gg.nodes)} nodes)"
    # the same graph recomputed from the spans of the traces the filter selects (any
    # other filter, and a group's minutes before its statistics began)
    spans_graph = measure(
        Figure("  the same recomputed from spans: filtered_graph"),
        timing,
        max(args.graph_reps // 6, 3),
        lambda i: filtered_graph(tstore, six_lo, six_hi, group_filter),
    )
    same = _graph_shape(filtered_graph(tstore, six_lo, six_hi, group_filter)) == _graph_shape(gg)
    spans_graph.note = f"(equal to the kept one: {same}; cost grows with those traces' spans)"

    explained = [("trace by id", explain(raw, by_id_call))]
    explained += [(fig.name, explain(raw, call)) for fig, call, _ in filters if call is not None]
    explained += [(f"graph ({c.seconds * 1000:.1f} ms)", explain(raw, c)) for c in graph_calls]

    measured_load = os.getloadavg()[0]

    # -- bytes per span -------------------------------------------------------------------
    before = part_bytes(raw, db)
    dir_before = dir_bytes(data_dir)
    after: dict[str, tuple[int, int, int]] = {}
    dir_after = 0
    optimize_s = 0.0
    optimized: list[Figure] = []
    if not args.no_optimize:
        t = time.perf_counter()
        for table_name in (
            "spans", "traces", "node_stats", "edge_stats", "group_node_stats", "group_edge_stats",
            "graph_stats", "group_graph_stats",
        ):  # fmt: skip
            raw.execute(f"OPTIMIZE TABLE `{db}`.{table_name} FINAL")
        optimize_s = time.perf_counter() - t
        after = part_bytes(raw, db)
        dir_after = dir_bytes(data_dir)
        # the same reads over fully merged parts (one part per partition)
        reps_after = max(args.filter_reps // 2, 5)
        optimized.append(
            measure(
                Figure("after OPTIMIZE: trace by id", target_ms=TARGET_BY_ID_MS, target_q=0.99),
                timing,
                args.reps,
                lambda i: get_traces(tstore, [ids[i]]),
            )
        )
        optimized.append(
            page_split(
                measure(
                    Figure("after OPTIMIZE: page of 1,000 summaries (no filter)"),
                    timing,
                    reps_after,
                    page(None, None, 1000),
                )
            )
        )
        for label, where, params in expressions:
            optimized.append(
                measure(
                    Figure(f"after OPTIMIZE: 1-h filter: {label}", target_ms=TARGET_FILTER_MS),
                    timing,
                    reps_after,
                    page(where, params),
                )
            )

    # -- report ---------------------------------------------------------------------------
    def total(parts: dict[str, tuple[int, int, int]], only: str | None = None) -> int:
        return sum(v[0] for k, v in parts.items() if only is None or k == only)

    print()
    print("=" * 100)
    print(
        f"command: python benchmarks/query.py --spans {args.spans} --batch {args.batch} --workers {args.workers}"
    )
    print(
        f"scale: {n_spans:,} spans, {n_traces:,} traces ({n_spans / n_traces:.2f} spans/trace), "
        f"{n_docs:,} documents; hot hour holds {in_hot:,} traces "
        f"({in_hot / 1_000_000:.3f} of the 1M target); 6 h window holds all"
    )
    print(
        f"load: {n_spans / load_s:,.0f} spans/s through assemble+write ({load_s:.1f} s, "
        f"{n_docs / load_s:,.0f} documents/s, incl. waiting for generation); keeping the "
        f"group's statistics took {loaded.group_seconds:.1f} s of it "
        f"({loaded.group_seconds * 1e6 / max(n_docs, 1):.1f} µs/document)"
    )
    print(
        "parts after load: "
        + ", ".join(f"{k} {v[1]} parts/{v[2]:,} rows" for k, v in parts_loaded.items())
    )
    print(
        f"machine load (1-minute average): {load_before:.1f} as the measurements began, "
        f"{measured_load:.1f} as they ended (before OPTIMIZE)"
    )
    print()
    print("references (same run):")
    for fig in (ref_one, ref_count, ref_scan, ref_spans_scan):
        print("  " + report_line(fig))
    print()
    print("figures:")
    print("  " + report_line(by_id, floor_ms))
    print("  " + report_line(by_id_raw, floor_ms))
    for fig, _, _ in filters:
        print(
            "  "
            + report_line(fig, floor_ms)
            + f"  {fig.p(0.5) / ref_scan.p(0.5):5.2f}x hot-hour scan"
        )
    print("  " + report_line(big_page, floor_ms))
    print("  " + report_line(graph, floor_ms))
    print("  " + report_line(group_graph, floor_ms))
    print("  " + report_line(spans_graph, floor_ms))
    for fig in optimized:
        print("  " + report_line(fig, floor_ms))
    print()
    b_spans = total(before) / n_spans
    print(
        f"bytes per span (all tables, active parts): {b_spans:,.1f} before OPTIMIZE  "
        f"target <= {TARGET_BYTES_PER_SPAN:g}  ratio {b_spans / TARGET_BYTES_PER_SPAN:.3f}"
    )
    for name, (size, parts, rows) in before.items():
        print(
            f"    {name:<18} {size / n_spans:8.1f} B/span  {size / 1e6:9.1f} MB  {parts} parts  {rows:,} rows"
        )
    print(f"  data dir (du incl. inactive parts, metadata): {dir_before / n_spans:,.1f} B/span")
    if after:
        a_spans = total(after) / n_spans
        print(
            f"bytes per span after OPTIMIZE FINAL ({optimize_s:.1f} s): {a_spans:,.1f}  "
            f"ratio {a_spans / TARGET_BYTES_PER_SPAN:.3f}; data dir {dir_after / n_spans:,.1f} B/span"
        )
        for name, (size, parts, rows) in after.items():
            print(
                f"    {name:<18} {size / n_spans:8.1f} B/span  {size / 1e6:9.1f} MB  {parts} parts  {rows:,} rows"
            )
    print()
    print("profile (EXPLAIN indexes = 1 of each measured statement):")
    for name, text in explained:
        print(f"  {name}: {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
