"""Sustained UDP ingest: segments sent -> stored -> queryable through the X-Ray API.

Target (DESIGN.md §7): >= 50,000 segments/s with zero loss on 2 cores, freshness p99 < 1 s,
server RSS <= 600 MB at a steady 10k segments/s.

What one run does, per ``--rate``:

1. starts ``fluoroscope server`` as a subprocess on a free loopback port with a fresh data dir;
2. sender processes (``--senders``) pre-serialize ``--count`` realistic daemon datagrams
   (whole traces of 1-3 documents, as aws-xray-sdk emits them), then send them paced to the
   offered rate, recording when each batch left and reporting a sample of finished traces;
3. a side thread polls BatchGetTraces (``POST /Traces``) for the sampled traces and records when
   each becomes visible with all its segments (freshness = last document sent -> visible);
4. the main thread polls ``GET /api/status`` until every received document is stored, then
   counts the traces through GetTraceSummaries (paged, ``TimeRangeType=TraceId``), stops the
   server (which stores what it accepted), and counts the stored entities in its data dir.

Alongside, a reference is measured in the same run so the ratios survive a noisy machine: the
ceiling of a bare uvloop UDP receiver that only runs ``orjson.loads`` on each body, fed the same
datagrams as fast as one sender process can send them.

``--group FILTER`` (repeatable) creates groups first, so the cost of keeping their
statistics at ingest shows in the figures.

``--api N`` sends the same documents through PutTraceSegments instead (``POST
/TraceSegments``, N documents a call, ``--connections`` calls in flight per sender, each
answered once its documents are stored), paced the same way; received then means the
documents of the calls the server took (``http_received``). A sender then sends at most
``--connections`` x N documents per acknowledgement's latency (a round, ~0.2-0.4 s):
with 16 connections and 50 a call, ~2-4k documents/s, whatever the server could take.
The UDP reference means nothing for it (``--no-reference``).

``--arrival-delay S`` stamps each trace id with a second up to ``S`` seconds (uniformly)
before the trace is sent, as real traffic arrives: the X-Ray daemon batches about a
second, and a trace's documents leave its services seconds after its id's second
(without it, every id holds the second its trace is sent in). ``--cached-traces N`` is
the server's option of that name. Together they reproduce a trace cache that holds less
time than the arrival delay (issue 21): the ingest workers' reloads of traces they take
for maybe stored are printed (``reloaded_traces``, and ``reload_misses``, those the store
did not hold: new traces reloaded for nothing).

``--window S`` (default 10; 0: none) prints the run by windows of ``S`` seconds while it
sends: stored/s, CPU µs per stored document by process, the engine's merges and the
server's insert threads among the server's, and the RSS of all processes. The engine's
merges grow with the store (a row is rewritten about once per level of its partition's
parts), and near capacity the workers' backlogs grow: a run of 10 seconds describes its
first minute only. The windows after the first third of the run are summed into a
steady-state line, the figure to quote for a sustained rate (issue 21: take it over
minutes, e.g. ``--duration 180``).

Usage: ``python benchmarks/ingest.py --rate 10000,25000,50000 --duration 10``. Never run by pytest.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing as mp
import os
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import orjson

TARGET_RATE: Final = 50_000.0
TARGET_P99: Final = 1.0
TARGET_RSS_MB: Final = 600.0
HEADER: Final = b'{"format":"json","version":1}\n'
SERVICES: Final = (
    "frontend", "orders-api", "payments", "inventory", "users-svc", "search", "checkout",
)  # fmt: skip
TABLES: Final = ("orders", "users", "inventory", "sessions")
BATCH: Final = 32  # datagrams sent between two pacing checks
POLL_INTERVAL: Final = 0.05  # seconds between two BatchGetTraces polls for freshness
_MP: Final = mp.get_context("fork")


# -- documents -------------------------------------------------------------------------


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _http(rng: random.Random, method: str, url: str, status: int) -> dict[str, Any]:
    return {
        "request": {
            "method": method,
            "url": url,
            "client_ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Safari/537.36",
            "x_forwarded_for": True,
        },
        "response": {"status": status, "content_length": rng.randrange(100, 9000)},
    }


def _outcome(rng: random.Random) -> tuple[int, dict[str, Any]]:
    """An HTTP status and the flags X-Ray sets for it: ~3 % faults, ~5 % errors, 1 % throttles."""
    roll = rng.random()
    if roll < 0.03:
        return 500, {
            "fault": True,
            "cause": {
                "working_directory": "/srv/app",
                "exceptions": [
                    {
                        "id": _hex(rng, 16),
                        "message": "upstream timed out",
                        "type": "TimeoutError",
                        "stack": [{"path": "/srv/app/handlers.py", "line": 88, "label": "get"}],
                    }
                ],
            },
        }
    if roll < 0.04:
        return 429, {"error": True, "throttle": True}
    if roll < 0.09:
        return 404, {"error": True}
    return 200, {}


def _segment(
    rng: random.Random,
    trace_id: str,
    name: str,
    start: float,
    duration: float,
    parent_id: str | None,
) -> dict[str, Any]:
    status, flags = _outcome(rng)
    method = rng.choice(("GET", "GET", "POST", "PUT"))
    doc: dict[str, Any] = {
        "id": _hex(rng, 16),
        "trace_id": trace_id,
        "name": name,
        "start_time": round(start, 6),
        "end_time": round(start + duration, 6),
        "origin": "AWS::EC2::Instance",
        "http": _http(
            rng, method, f"http://{name}.internal:8080/v1/items/{rng.randrange(10**6)}", status
        ),
        "aws": {
            "xray": {"sdk_version": "2.15.0", "sdk": "X-Ray for Python"},
            "ec2": {"instance_id": f"i-{_hex(rng, 17)}", "availability_zone": "us-east-1a"},
        },
        "service": {"runtime": "CPython", "runtime_version": "3.11.9"},
        "annotations": {
            "customer_tier": rng.choice(("free", "pro", "enterprise")),
            "region": "us-east-1",
            "cart_items": rng.randrange(1, 20),
        },
        "metadata": {"default": {"request_id": _hex(rng, 32)}},
        **flags,
    }
    if rng.random() < 0.4:
        del doc["annotations"]["cart_items"]
    if rng.random() < 0.3:
        doc["user"] = f"user-{rng.randrange(5000)}"
    if parent_id is not None:
        doc["parent_id"] = parent_id
    return doc


def _dynamodb(rng: random.Random, start: float) -> dict[str, Any]:
    operation = rng.choice(("GetItem", "PutItem", "Query", "UpdateItem"))
    return {
        "id": _hex(rng, 16),
        "name": "DynamoDB",
        "start_time": round(start, 6),
        "end_time": round(start + rng.uniform(0.002, 0.02), 6),
        "namespace": "aws",
        "http": {"response": {"status": 200, "content_length": rng.randrange(50, 900)}},
        "aws": {
            "operation": operation,
            "region": "us-east-1",
            "request_id": _hex(rng, 32).upper(),
            "retries": 0,
            "table_name": rng.choice(TABLES),
        },
    }


def _remote(rng: random.Random, callee: str, start: float, duration: float) -> dict[str, Any]:
    status, flags = _outcome(rng)
    return {
        "id": _hex(rng, 16),
        "name": f"{callee}.internal",
        "start_time": round(start, 6),
        "end_time": round(start + duration, 6),
        "namespace": "remote",
        "traced": True,
        "http": {
            "request": {"method": "POST", "url": f"http://{callee}.internal:8080/v1/call"},
            "response": {"status": status},
        },
        **flags,
    }


def _local(rng: random.Random, start: float) -> dict[str, Any]:
    return {
        "id": _hex(rng, 16),
        "name": rng.choice(("render", "validate_cart", "load_profile")),
        "start_time": round(start, 6),
        "end_time": round(start + rng.uniform(0.0005, 0.004), 6),
        "metadata": {"default": {"items": rng.randrange(50)}},
    }


def make_trace(rng: random.Random, now: float) -> list[dict[str, Any]]:
    """One trace of 1-3 documents in the order an SDK would send them (callees first).

    1 document: a segment with an embedded DynamoDB call and a local subsegment.
    2 documents: the caller's segment with a traced remote call, and the callee's segment
    (``parent_id`` = the remote subsegment) with a DynamoDB call. 3 documents: the same chain
    one level deeper.
    """
    trace_id = f"1-{int(now):08x}-{_hex(rng, 24)}"
    depth = rng.choices((1, 2, 3), weights=(4, 4, 2))[0]
    names = rng.sample(SERVICES, depth)
    start = now - rng.uniform(0.05, 0.3)
    docs: list[dict[str, Any]] = []
    parent: str | None = None
    span = 0.25
    for level, name in enumerate(names):
        seg = _segment(rng, trace_id, name, start, span, parent)
        if level + 1 < depth:
            call = _remote(rng, names[level + 1], start + 0.01, span * 0.8)
            seg["subsegments"] = [call]
            if rng.random() < 0.5:
                seg["subsegments"].append(_local(rng, start + 0.002))
            parent = call["id"]
        else:
            seg["subsegments"] = [_dynamodb(rng, start + 0.005)]
            if rng.random() < 0.5:
                seg["subsegments"].append(_local(rng, start + 0.001))
        docs.append(seg)
        start += 0.011
        span *= 0.7
    docs.reverse()
    return docs


def entities_in(doc: dict[str, Any]) -> int:
    """How many entities (the document and its embedded subsegments, recursively) it holds."""
    return 1 + sum(entities_in(child) for child in doc.get("subsegments", ()))


# -- sender process --------------------------------------------------------------------


@dataclass
class SenderPlan:
    """What one sender process sends: its share of the traces, at its share of the rate."""

    port: int
    seed: int
    documents: int
    rate: float
    sample_every: int  # report every n-th trace to the freshness poller
    reference: bool = False  # blast as fast as possible (the reference run), no pacing
    delay: float = 0.0  # each trace id's second lags its send time by up to this (uniform)
    api: int = 0  # documents per PutTraceSegments call; 0: UDP datagrams
    connections: int = 16  # concurrent PutTraceSegments calls (keep-alive connections)


@dataclass
class SenderResult:
    """What a sender reports back once done."""

    sent: int = 0
    traces: int = 0
    entities: int = 0
    first_send: float = 0.0
    last_send: float = 0.0
    build_seconds: float = 0.0
    trace_ids: list[str] = field(default_factory=list)
    refused: int = 0  # documents of PutTraceSegments calls refused or failed (not retried)


def _build(plan: SenderPlan) -> tuple[list[bytes], list[tuple[int, str, list[str]]], SenderResult]:
    """Datagrams, the sampled traces as (index of their last datagram, trace id, segment ids)."""
    rng = random.Random(plan.seed)
    datagrams: list[bytes] = []
    samples: list[tuple[int, str, list[str]]] = []
    result = SenderResult()
    # Each trace is stamped with the time it is due to be sent (counted from now: a
    # few seconds before it is), as an SDK stamps a trace id with its request's start,
    # so ids and start times advance at the offered rate. One time for all (before):
    # every trace id held the same second, which the ingest workers, once their caches
    # turned over, could not tell from an evicted trace's, so they reloaded nearly
    # every new trace from the store (a query per batch, ~30 µs of the server's CPU
    # per document). ``plan.delay`` moves each stamp back by up to that many seconds.
    start = time.time()
    step = 0.0 if plan.reference else 1.0 / plan.rate
    dumps = orjson.dumps
    lag = random.Random(plan.seed + 1).uniform  # the documents' own draws stay the same
    while len(datagrams) < plan.documents:
        due = start + len(datagrams) * step
        docs = make_trace(rng, due - lag(0.0, plan.delay) if plan.delay else due)
        for doc in docs:
            datagrams.append(HEADER + dumps(doc))
            result.entities += entities_in(doc)
        result.traces += 1
        result.trace_ids.append(docs[0]["trace_id"])
        if result.traces % plan.sample_every == 0:
            samples.append((len(datagrams) - 1, docs[0]["trace_id"], [d["id"] for d in docs]))
    return datagrams, samples, result


def sender_main(plan: SenderPlan, ready: Any, go: Any, out: Connection, samples_q: Any) -> None:
    """Build the datagrams, signal ``ready``, wait for ``go`` (start time), send paced."""
    t0 = time.perf_counter()
    datagrams, samples, result = _build(plan)
    result.build_seconds = time.perf_counter() - t0
    if plan.api:
        _call_api(plan, datagrams, samples, result, ready, go, samples_q)
        out.send(result)
        out.close()
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
    sock.connect(("127.0.0.1", plan.port))
    send = sock.send
    ready.set()
    go.wait()
    start = time.time()
    result.first_send = start
    interval = 0.0 if plan.reference else 1.0 / plan.rate
    next_sample = 0
    total = len(datagrams)
    i = 0
    while i < total:
        end = min(i + BATCH, total)
        for k in range(i, end):
            try:  # noqa: SIM105 - contextlib.suppress costs too much in this loop
                send(datagrams[k])
            except (BlockingIOError, ConnectionRefusedError):
                pass  # counted as lost by the receiver side
        i = end
        now = time.time()
        while next_sample < len(samples) and samples[next_sample][0] < i:
            _, trace_id, seg_ids = samples[next_sample]
            samples_q.put((trace_id, now, seg_ids))
            next_sample += 1
        if interval:
            ahead = start + i * interval - now
            if ahead > 0.0005:
                time.sleep(ahead)
    result.last_send = time.time()
    result.sent = total
    samples_q.put(None)
    out.send(result)
    out.close()


def _call_api(
    plan: SenderPlan,
    datagrams: list[bytes],
    samples: list[tuple[int, str, list[str]]],
    result: SenderResult,
    ready: Any,
    go: Any,
    samples_q: Any,
) -> None:
    """Send the datagrams' documents through PutTraceSegments instead, ``plan.api`` a
    call, the calls paced to the rate and made by ``plan.connections`` threads (each
    call waits until its documents are stored, so a client keeps several in flight, as
    the X-Ray daemon does). A refused or failed call's documents are counted, not
    retried."""
    texts = [d[len(HEADER) :].decode() for d in datagrams]
    calls: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
    lock = threading.Lock()

    def post() -> None:
        api = Api(plan.port)
        while (batch := calls.get()) is not None:
            try:
                body = {"TraceSegmentDocuments": batch}
                refused = len(api.call("POST", "/TraceSegments", body)["UnprocessedTraceSegments"])
            except (RuntimeError, OSError, http.client.HTTPException):
                refused = len(batch)
            if refused:
                with lock:
                    result.refused += refused

    threads = [threading.Thread(target=post, daemon=True) for _ in range(plan.connections)]
    for thread in threads:
        thread.start()
    ready.set()
    go.wait()
    start = time.time()
    result.first_send = start
    interval = 1.0 / plan.rate
    next_sample = 0
    for i in range(0, len(texts), plan.api):
        end = min(i + plan.api, len(texts))
        calls.put(texts[i:end])
        now = time.time()
        while next_sample < len(samples) and samples[next_sample][0] < end:
            _, trace_id, seg_ids = samples[next_sample]
            samples_q.put((trace_id, now, seg_ids))
            next_sample += 1
        ahead = start + end * interval - now
        if ahead > 0.0005:
            time.sleep(ahead)
    result.last_send = time.time()
    for _ in threads:
        calls.put(None)
    for thread in threads:
        thread.join()
    result.sent = len(texts)
    samples_q.put(None)


# -- talking to the server --------------------------------------------------------------


class Api:
    """A keep-alive HTTP connection to the server's API (one per thread)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The decoded JSON answer; raises on a non-2xx status."""
        payload = orjson.dumps(body) if body is not None else None
        for attempt in range(3):
            try:
                self._conn.request(
                    method, path, body=payload, headers={"Content-Type": "application/json"}
                )
                response = self._conn.getresponse()
                data = response.read()
            except (http.client.HTTPException, OSError):
                self._conn.close()
                self._conn = http.client.HTTPConnection("127.0.0.1", self._port, timeout=60)
                if attempt == 2:
                    raise
                continue
            if response.status // 100 != 2:
                raise RuntimeError(f"{path}: HTTP {response.status}: {data[:300]!r}")
            return orjson.loads(data)
        raise RuntimeError("unreachable")

    def status(self) -> dict[str, int]:
        """The server's ingest counters (pipeline and ``udp_``-prefixed listener counters)."""
        counters: dict[str, int] = self.call("GET", "/api/status")["counters"]
        return counters


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port: int = tcp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def start_server(
    port: int, data_dir: Path, options: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    """``fluoroscope server`` on ``port`` (with ``options``); returns once its API answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "server", "--listen", f"127.0.0.1:{port}",
         "--data-dir", str(data_dir), *options],
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "server.log", "wb"),  # noqa: SIM115 - lives as long as the server
    )  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {(data_dir / 'server.log').read_text()[-2000:]}")
        try:
            Api(port).status()
            return proc
        except (OSError, RuntimeError, http.client.HTTPException):
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start within 60 s")


def _proc_kb(path: str, key: str) -> int:
    """The ``key:`` figure, in KiB, of a ``/proc`` file of ``Key:  value kB`` lines (0 if
    the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_status_kb(pid: int, key: str) -> int:
    """A ``VmHWM``/``VmRSS`` figure of process ``pid`` in KiB (0 if gone)."""
    return _proc_kb(f"/proc/{pid}/status", key)


def proc_rollup_kb(pid: int, key: str) -> int:
    """A figure of ``/proc/PID/smaps_rollup`` (``Pss``, ``Anonymous``, ...) in KiB (0 if gone).

    ``VmRSS`` counts every page a process maps, shared file pages (Python, pyarrow,
    chDB's library) in full in each process, so a sum of RSS over processes counts
    them once per process; PSS divides each page among the processes mapping it, so a
    sum of PSS counts each page once (but also shares pages with processes outside the
    tree, e.g. another server mapping chDB: those lower it)."""
    return _proc_kb(f"/proc/{pid}/smaps_rollup", key)


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (those gone while read are left out)."""
    pids = [pid]
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return pids
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            pids += tree_pids(int(child))
    return pids


def tree_kb(pid: int, key: str) -> int:
    """:func:`proc_status_kb` summed over ``pid`` and its descendants (the server's UDP
    receiving process counts towards the server's memory)."""
    return sum(proc_status_kb(p, key) for p in tree_pids(pid))


def _role(pid: int) -> str:
    """What process ``pid`` of the server's tree is: server, receiver or worker N."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    if b"fluoroscope.ingest.receiver" in argv:
        return "receiver"
    if b"fluoroscope.ingest.worker" in argv:
        return f"worker {argv[argv.index(b'--shard') + 1].decode()}"
    return "server" if b"server" in argv else f"pid {pid}"


def tree_by_role(pid: int, key: str) -> dict[str, int]:
    """:func:`proc_status_kb` of ``pid`` and each descendant, by role (:func:`_role`)."""
    return {_role(p): proc_status_kb(p, key) for p in tree_pids(pid)}


def tree_pss_by_role(pid: int) -> dict[str, int]:
    """:func:`proc_rollup_kb` ``Pss`` of ``pid`` and each descendant, by role."""
    return {_role(p): proc_rollup_kb(p, "Pss") for p in tree_pids(pid)}


def _stat_cpu(stat: str) -> tuple[float, float]:
    """(user, system) CPU seconds from a ``/proc`` ``stat`` line (a process's or a
    thread's: its name, in parentheses, may hold spaces)."""
    fields = stat.rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, every thread) the process ``pid`` used so far (Linux
    ``/proc``; 0 when it is gone or elsewhere)."""
    try:
        user, system = _stat_cpu(Path(f"/proc/{pid}/stat").read_text())
    except OSError:
        return 0.0
    return user + system


def cpu_by_role(pid: int) -> dict[str, float]:
    """:func:`process_cpu` of ``pid`` and each descendant, by role (:func:`_role`)."""
    return {_role(p): process_cpu(p) for p in tree_pids(pid)}


def thread_stats(pid: int) -> dict[int, tuple[str, float, float]]:
    """CPU seconds each live thread of process ``pid`` used so far (all, of which kernel),
    with its name in the kernel, by thread id (Linux ``/proc``; empty elsewhere). The
    server names its Python threads ``py-...`` (:mod:`fluoroscope.ingest.threadnames`);
    the engine names its own (``ThreadPool`` runs statements, ``MergeMutate`` merges
    parts)."""
    threads: dict[int, tuple[str, float, float]] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return threads
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        user, system = _stat_cpu(stat)
        threads[int(task.name)] = (name, user + system, system)
    return threads


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """:func:`thread_stats` without the kernel's share: (name, CPU seconds) by thread id."""
    return {tid: (name, total) for tid, (name, total, _) in thread_stats(pid).items()}


def worker_threads(pid: int) -> dict[str, dict[int, tuple[str, float]]]:
    """:func:`thread_cpu` of each ingest worker among ``pid``'s descendants, by role
    (``worker N``, :func:`_role`)."""
    return {role: thread_cpu(p) for p in tree_pids(pid) if (role := _role(p)).startswith("worker ")}


def _threads(
    before: dict[int, tuple[str, float]],
    after: dict[int, tuple[str, float]],
    total: float,
    docs: int,
) -> str:
    """CPU µs per stored document by thread name between two :func:`thread_cpu`
    samples (numbered threads together: ``py-hub-N``); ``total``: the process's CPU
    seconds meanwhile, of which what threads that ended used is the rest."""
    by_name: dict[str, float] = {}
    for tid, (name, seconds) in after.items():
        stem = name.rstrip("0123456789")
        key = stem + "N" if stem != name else name
        by_name[key] = by_name.get(key, 0.0) + seconds - before.get(tid, (name, 0.0))[1]
    by_name["threads that ended"] = total - sum(by_name.values())
    per = sorted(((v * 1e6 / max(docs, 1), k) for k, v in by_name.items()), reverse=True)
    shown = [f"{k} {v:.1f}" for v, k in per if v >= 0.5]
    rest = sum(v for v, _ in per if v < 0.5)
    return ", ".join(shown) + f", others {rest:.1f} µs/document"


def _per_document(before: dict[str, float], after: dict[str, float], docs: int) -> dict[str, float]:
    """CPU µs per stored document by role between two :func:`cpu_by_role` samples, in
    the roles' order."""
    return {k: (after[k] - before.get(k, 0.0)) * 1e6 / max(docs, 1) for k in sorted(after)}


def _cpu(before: dict[str, float], after: dict[str, float], docs: int) -> str:
    """:func:`_per_document`, as a line."""
    per = _per_document(before, after, docs)
    parts = [f"{k} {v:.1f}" for k, v in per.items()]
    return ", ".join(parts) + f"; total {sum(per.values()):.1f} µs/document"


def _mb(by_role: dict[str, int]) -> str:
    parts = [f"{k} {v / 1024:.0f}" for k, v in sorted(by_role.items())]
    return ", ".join(parts) + f"; total {sum(by_role.values()) / 1024:.0f} MB"


# -- freshness ---------------------------------------------------------------------------


class FreshnessPoller(threading.Thread):
    """Polls BatchGetTraces for sampled traces until each shows all its segments."""

    def __init__(self, port: int, samples_q: Any, senders: int) -> None:
        super().__init__(name="freshness", daemon=True)
        self._api = Api(port)
        self._q = samples_q
        self._senders_left = senders
        self.pending: dict[str, tuple[float, set[str]]] = {}
        self.latencies: list[float] = []
        self.calls = 0
        self.stop = threading.Event()

    def _receive(self) -> None:
        while True:
            try:
                item = self._q.get_nowait()
            except Exception:
                return
            if item is None:
                self._senders_left -= 1
                continue
            trace_id, sent, seg_ids = item
            self.pending[trace_id] = (sent, set(seg_ids))

    def run(self) -> None:
        while not self.stop.is_set():
            self._receive()
            if not self.pending:
                if self._senders_left == 0:
                    return
                time.sleep(0.005)
                continue
            oldest = sorted(self.pending, key=lambda t: self.pending[t][0])[:5]
            answer = self._api.call("POST", "/Traces", {"TraceIds": oldest})
            self.calls += 1
            seen = time.time()
            for trace in answer["Traces"]:
                entry = self.pending.get(trace["Id"])
                if entry is not None and entry[1] <= {s["Id"] for s in trace["Segments"]}:
                    self.latencies.append(seen - entry[0])
                    del self.pending[trace["Id"]]
            time.sleep(POLL_INTERVAL)  # light, like a console refreshing


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# -- one run -----------------------------------------------------------------------------


@dataclass
class RunResult:
    """Figures of one run at one offered rate."""

    offered: float
    sent: int = 0
    send_seconds: float = 0.0
    stored: int = 0
    sustained: float = 0.0
    received: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    api_traces: int = -1
    expected_traces: int = 0
    db_entities: int = -1
    expected_entities: int = 0
    p50: float = float("nan")
    p99: float = float("nan")
    fresh_n: int = 0
    fresh_missing: int = 0
    rss_peak_mb: float = 0.0
    rss_steady_mb: float = 0.0
    rss_rest: dict[str, int] = field(default_factory=dict)  # KiB by role, before sending
    rss_sending_peak: dict[str, int] = field(default_factory=dict)  # sample of largest total
    rss_hwm: dict[str, int] = field(default_factory=dict)  # each process's own VmHWM
    pss_rest: dict[str, int] = field(default_factory=dict)  # KiB by role, before sending
    pss_sending_peak: dict[str, int] = field(default_factory=dict)  # largest total PSS sample
    pss_steady_mb: float = 0.0
    cpu_rest: dict[str, float] = field(default_factory=dict)  # CPU seconds by role, at go
    cpu_done: dict[str, float] = field(default_factory=dict)  # ... once all was stored
    threads_rest: dict[int, tuple[str, float]] = field(default_factory=dict)  # the server's
    threads_done: dict[int, tuple[str, float]] = field(default_factory=dict)
    # the ingest workers' threads, by role (:func:`worker_threads`), at go and all stored
    workers_rest: dict[str, dict[int, tuple[str, float]]] = field(default_factory=dict)
    workers_done: dict[str, dict[int, tuple[str, float]]] = field(default_factory=dict)
    rounds: float = 0.0  # insert rounds from go to all stored
    reloaded: int = 0  # trace ids the workers reloaded from the store, from go to all stored
    reload_misses: int = 0  # ... of which the store held nothing (new traces)
    refused: int = 0  # documents of PutTraceSegments calls refused or failed (--api)
    windows: list[Window] = field(default_factory=list)  # --window samples while sending


@dataclass
class Window:
    """What the server's processes had used and stored at a moment of a run."""

    at: float  # seconds since go
    stored: int  # documents stored since go
    cpu: dict[str, float]  # CPU seconds by role (:func:`cpu_by_role`)
    threads: dict[int, tuple[str, float]]  # the server's threads (:func:`thread_cpu`)
    rss: dict[str, int]  # KiB by role


def _thread_share(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], prefix: str
) -> float:
    """CPU seconds the server's threads named ``prefix...`` used between two samples
    (those that ended meanwhile are not counted)."""
    return sum(
        seconds - before.get(tid, (name, 0.0))[1]
        for tid, (name, seconds) in after.items()
        if name.startswith(prefix)
    )


def _window_line(a: Window, b: Window) -> str:
    """One span of a run: stored/s, CPU µs per stored document by role, merges, RSS."""
    docs = max(b.stored - a.stored, 1)
    per = _per_document(a.cpu, b.cpu, docs)
    merges = _thread_share(a.threads, b.threads, "MergeMutate") * 1e6 / docs
    hub = _thread_share(a.threads, b.threads, "py-hub-") * 1e6 / docs
    roles = " ".join(f"{k} {v:5.1f}" for k, v in per.items())
    return (
        f"{a.at:5.0f}-{b.at:<5.0f} {(b.stored - a.stored) / max(b.at - a.at, 1e-9):8,.0f}/s  "
        f"{roles}  (merges {merges:4.1f}, hub {hub:4.1f})  total {sum(per.values()):5.1f}  "
        f"RSS {sum(b.rss.values()) / 1024:5.0f} MB"
    )


def insert_rounds(port: int) -> float:
    """How many insert rounds the server made so far (``/metrics``)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    for line in text.splitlines():
        if line.startswith("fluoroscope_insert_round_documents_count "):
            return float(line.split()[-1])
    return 0.0


def count_summaries(port: int, start: float, end: float) -> int:
    """Traces visible through GetTraceSummaries in ``[start, end]`` (id epochs), all pages.

    Pages through one-second windows in parallel (4 threads) to keep the count quick.
    """
    seconds = list(range(int(start), int(end) + 1))
    total = 0
    lock = threading.Lock()

    def worker(chunk: list[int]) -> None:
        nonlocal total
        api = Api(port)
        for second in chunk:
            token: str | None = None
            while True:
                body: dict[str, Any] = {
                    "StartTime": second, "EndTime": second + 0.999999, "TimeRangeType": "TraceId",
                }  # fmt: skip
                if token:
                    body["NextToken"] = token
                page = api.call("POST", "/TraceSummaries", body)
                with lock:
                    total += len(page["TraceSummaries"])
                token = page.get("NextToken")
                if not token:
                    break

    threads = [threading.Thread(target=worker, args=(seconds[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return total


def count_stored_entities(data_dir: Path) -> int:
    """Distinct (trace_id, id) rows in the stopped server's embedded store (a subprocess)."""
    code = (
        "import sys; from chdb import session; s = session.Session(sys.argv[1]); "
        "print(s.query('SELECT count() FROM (SELECT DISTINCT trace_id, id "
        "FROM fluoroscope.spans)', 'CSV'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(data_dir / "chdb")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        return int(out.stdout.strip())
    except ValueError:
        print(f"  (could not count stored rows: {out.stderr[-500:]})")
        return -1


def run_once(
    rate: float,
    count: int,
    senders: int,
    samples_per_s: float,
    api_count: bool,
    keep: bool,
    groups: list[str],
    delay: float = 0.0,
    cached_traces: int = 0,
    api_batch: int = 0,
    connections: int = 16,
    window: float = 0.0,
) -> RunResult:
    """Start a server, send ``count`` documents at ``rate``, measure (see module docstring)."""
    result = RunResult(offered=rate)
    data_dir = Path(tempfile.mkdtemp(prefix="fluoroscope-bench-"))
    port = free_port()
    options = ("--cached-traces", str(cached_traces)) if cached_traces else ()
    server = start_server(port, data_dir, options)
    print(f"  server pid {server.pid}, data dir {data_dir}", flush=True)
    api = Api(port)
    try:
        for k, expression in enumerate(groups):  # their statistics are kept as segments arrive
            api.call("POST", "/CreateGroup", {"GroupName": f"g{k}", "FilterExpression": expression})
        per_sender = count // senders
        seconds = count / rate
        traces_per_sender = per_sender / 1.6
        sample_every = max(1, int(traces_per_sender / max(1.0, samples_per_s * seconds / senders)))
        samples_q = _MP.Queue()
        readies, pipes, procs = [], [], []
        go = _MP.Event()
        for n in range(senders):
            ready = _MP.Event()
            parent_end, child_end = _MP.Pipe(duplex=False)
            plan = SenderPlan(port, 1000 + n, per_sender, rate / senders, sample_every)
            plan.delay = delay
            plan.api, plan.connections = api_batch, connections
            proc = _MP.Process(target=sender_main, args=(plan, ready, go, child_end, samples_q))
            proc.start()
            readies.append(ready)
            pipes.append(parent_end)
            procs.append(proc)
        for ready in readies:
            ready.wait()
        poller = FreshnessPoller(port, samples_q, senders)
        poller.start()
        base = api.status()
        result.rss_rest = tree_by_role(server.pid, "VmRSS")
        result.pss_rest = tree_pss_by_role(server.pid)
        result.cpu_rest = cpu_by_role(server.pid)
        result.threads_rest = thread_cpu(server.pid)
        result.workers_rest = worker_threads(server.pid)
        rounds_before = insert_rounds(port)
        go.set()
        went = time.monotonic()
        if window > 0:
            result.windows.append(
                Window(0.0, 0, dict(result.cpu_rest), dict(result.threads_rest), result.rss_rest)
            )
        rss_samples: list[int] = []
        pss_samples: list[int] = []
        history: list[tuple[float, int]] = []
        results: list[SenderResult] = []
        while len(results) < senders:
            for pipe in pipes:
                if pipe.poll(0.1):
                    results.append(pipe.recv())
            stored_now = api.status().get("stored_documents", 0)
            history.append((time.time(), stored_now))
            sample = tree_by_role(server.pid, "VmRSS")
            since = time.monotonic() - went
            if window > 0 and since - result.windows[-1].at >= window:
                stored_since = stored_now - base.get("stored_documents", 0)
                result.windows.append(
                    Window(
                        since, stored_since, cpu_by_role(server.pid), thread_cpu(server.pid), sample
                    )
                )
            rss_samples.append(sum(sample.values()))
            if sum(sample.values()) > sum(result.rss_sending_peak.values()):
                result.rss_sending_peak = sample
            pss = tree_pss_by_role(server.pid)
            pss_samples.append(sum(pss.values()))
            if sum(pss.values()) > sum(result.pss_sending_peak.values()):
                result.pss_sending_peak = pss
        for proc in procs:
            proc.join()
        result.sent = sum(r.sent for r in results)
        result.expected_traces = sum(r.traces for r in results)
        result.expected_entities = sum(r.entities for r in results)
        first = min(r.first_send for r in results)
        result.send_seconds = max(r.last_send for r in results) - first
        result.refused = sum(r.refused for r in results)
        # wait until every received document is accounted for and nothing moves for 3 s
        # (through the API: the documents of calls answered; those refused are counted)
        way = "http" if api_batch else "udp"
        last_change = time.time()
        previous: tuple[int, int] = (-1, -1)
        while True:
            counters = api.status()
            stored = counters.get("stored_documents", 0) - base.get("stored_documents", 0)
            received = counters.get(f"{way}_received", 0) - base.get(f"{way}_received", 0)
            now = time.time()
            history.append((now, stored))
            rss_samples.append(tree_kb(server.pid, "VmRSS"))
            if (stored, received) != previous:
                previous, last_change = (stored, received), now
            server_drops = sum(  # the pipeline's udp_dropped_full repeats a listener count
                v - base.get(k, 0)
                for k, v in counters.items()
                if k.startswith(f"{way}_dropped") and k != "udp_dropped_full"
            )
            invalid = sum(
                v - base.get(k, 0) for k, v in counters.items() if k.startswith(f"{way}_invalid_")
            )
            accounted = stored + server_drops + invalid >= received
            if (accounted and received >= result.sent) or now - last_change > 30.0:
                break
            if accounted and now - last_change > 3.0:
                break  # the rest never reached the server
            time.sleep(0.05)
        result.cpu_done = cpu_by_role(server.pid)  # includes the API's polling, ~3 s idle
        result.threads_done = thread_cpu(server.pid)
        result.workers_done = worker_threads(server.pid)
        result.rounds = insert_rounds(port) - rounds_before
        result.stored = stored
        result.received = received
        result.reloaded = counters.get("reloaded_traces", 0) - base.get("reloaded_traces", 0)
        result.reload_misses = counters.get("reload_misses", 0) - base.get("reload_misses", 0)
        result.dropped = {
            k: v - base.get(k, 0)
            for k, v in counters.items()
            if ("drop" in k or "invalid" in k or "lost" in k) and v - base.get(k, 0)
        }
        done_at = next(t for t, s in history if s >= stored)
        result.sustained = stored / max(done_at - first, 1e-9)
        poller.join(timeout=10)
        poller.stop.set()
        result.fresh_n = len(poller.latencies)
        result.fresh_missing = len(poller.pending)
        result.p50 = percentile(poller.latencies, 0.50)
        result.p99 = percentile(poller.latencies, 0.99)
        steady = rss_samples[len(rss_samples) // 3 :] or rss_samples
        result.rss_steady_mb = statistics.median(steady) / 1024 if steady else 0.0
        steady = pss_samples[len(pss_samples) // 3 :] or pss_samples
        result.pss_steady_mb = statistics.median(steady) / 1024 if steady else 0.0
        result.rss_peak_mb = tree_kb(server.pid, "VmHWM") / 1024
        result.rss_hwm = tree_by_role(server.pid, "VmHWM")
        if api_count:
            epochs = [int(t[2:10], 16) for r in results for t in r.trace_ids]  # lags reorder them
            result.api_traces = count_summaries(port, min(epochs) - 1, max(epochs) + 1)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    result.db_entities = count_stored_entities(data_dir)
    if not keep:
        subprocess.run(["rm", "-rf", str(data_dir)], check=False)
    else:
        print(f"  data dir kept: {data_dir}")
    return result


# -- the reference ------------------------------------------------------------------------

_REFERENCE_RECEIVER: Final = r"""
import asyncio, socket, sys, time, orjson, uvloop
port = int(sys.argv[1])
class P(asyncio.DatagramProtocol):
    n = 0; first = 0.0; last = 0.0
    def datagram_received(self, data, addr):
        if not P.n: P.first = time.time()
        orjson.loads(data[data.index(b"\n") + 1:])
        P.n += 1; P.last = time.time()
async def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
    s.bind(("127.0.0.1", port)); s.setblocking(False)
    await asyncio.get_running_loop().create_datagram_endpoint(P, sock=s)
    print("ready", flush=True)
    deadline = time.time() + 300
    while time.time() < deadline and (not P.n or time.time() - P.last < 1.0):
        await asyncio.sleep(0.1)
    print(P.n, P.last - P.first, flush=True)
uvloop.run(main())
"""


def reference_ceiling(count: int) -> tuple[float, float, int]:
    """(parsed docs/s, loss fraction, docs sent) of a bare uvloop+orjson receiver fed
    ``count`` of the same datagrams by one unpaced sender process."""
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-c", _REFERENCE_RECEIVER, str(port)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    if receiver.stdout is None:  # pragma: no cover - Popen contract with stdout=PIPE
        raise RuntimeError("no pipe to the reference receiver")
    receiver.stdout.readline()
    ready, go = _MP.Event(), _MP.Event()
    samples_q = _MP.Queue()
    parent_end, child_end = _MP.Pipe(duplex=False)
    plan = SenderPlan(port, 7, count, 1.0, 10**9, reference=True)
    proc = _MP.Process(target=sender_main, args=(plan, ready, go, child_end, samples_q))
    proc.start()
    ready.wait()
    go.set()
    sent: SenderResult = parent_end.recv()
    proc.join()
    n, elapsed = receiver.communicate(timeout=400)[0].split()
    received, seconds = int(n), float(elapsed)
    if not received:
        return float("nan"), 1.0, sent.sent
    return received / max(seconds, 1e-9), 1 - received / sent.sent, sent.sent


# -- main --------------------------------------------------------------------------------


def _report(r: RunResult, ceiling: float) -> None:
    loss = r.sent - r.stored
    print(f"  offered {r.offered:,.0f}/s; sent {r.sent:,} in {r.send_seconds:.2f} s "
          f"({r.sent / max(r.send_seconds, 1e-9):,.0f}/s achieved)")  # fmt: skip
    against = (
        f"; = {r.sustained / ceiling:.2f} of the uvloop+orjson reference ceiling, "
        f"target is {TARGET_RATE / ceiling:.2f} of it"
        if ceiling == ceiling and ceiling > 0  # not measured with --no-reference (NaN)
        else ""
    )
    print(f"  sustained stored: {r.sustained:,.0f} segments/s "
          f"(target {TARGET_RATE:,.0f}: ratio {r.sustained / TARGET_RATE:.2f}{against})")  # fmt: skip
    print(f"  loss: {loss:,} of {r.sent:,} ({loss / max(r.sent, 1):.3%}); received by the "
          f"server {r.received:,} (kernel/socket drops {r.sent - r.received:,}); "
          f"server drops {r.dropped or 'none'}")  # fmt: skip
    if r.refused:
        print(f"  documents of PutTraceSegments calls refused or failed: {r.refused:,}")
    if r.api_traces >= 0:
        print(f"  traces via GetTraceSummaries: {r.api_traces:,} of {r.expected_traces:,}")
    if r.db_entities >= 0:
        print(f"  entities in the store after shutdown: {r.db_entities:,} of "
              f"{r.expected_entities:,}")  # fmt: skip
    print(f"  freshness (sent -> visible via BatchGetTraces, n={r.fresh_n}, never visible "
          f"{r.fresh_missing}): p50 {r.p50 * 1000:.0f} ms, p99 {r.p99 * 1000:.0f} ms "
          f"(target p99 < {TARGET_P99 * 1000:.0f} ms: ratio {r.p99 / TARGET_P99:.2f})")  # fmt: skip
    print(f"  server RSS (with its receiving process): steady {r.rss_steady_mb:.0f} MB, peak {r.rss_peak_mb:.0f} MB "
          f"(target <= {TARGET_RSS_MB:.0f} MB at 10k/s: ratio {r.rss_peak_mb / TARGET_RSS_MB:.2f})")  # fmt: skip
    print(f"  RSS by process (MB) at rest: {_mb(r.rss_rest)}")
    print(f"  RSS by process (MB) at the largest total while sending: {_mb(r.rss_sending_peak)}")
    print(f"  peak RSS by process (VmHWM, MB): {_mb(r.rss_hwm)}")
    print(f"  PSS (shared pages divided among the processes mapping them) steady "
          f"{r.pss_steady_mb:.0f} MB while sending; by process (MB) at rest: {_mb(r.pss_rest)}; "
          f"at the largest total while sending: {_mb(r.pss_sending_peak)}")  # fmt: skip
    print(
        f"  insert rounds: {r.rounds:,.0f}, {r.stored / max(r.rounds, 1):,.0f} documents each "
        f"on average"
    )
    print(
        f"  traces reloaded from the store by the workers: {r.reloaded:,} "
        f"({r.reloaded / max(r.expected_traces, 1):.1%} of {r.expected_traces:,} traces), "
        f"of which not stored (new, reloaded for nothing): {r.reload_misses:,}"
    )
    print(
        f"  CPU by process per stored document (from go to all stored; the API's status and "
        f"freshness polls included): {_cpu(r.cpu_rest, r.cpu_done, r.stored)}"
    )
    spent = r.cpu_done.get("server", 0.0) - r.cpu_rest.get("server", 0.0)
    print(
        "  the server's CPU by thread per stored document (same span): "
        + _threads(r.threads_rest, r.threads_done, spent, r.stored)
    )
    for role, done in sorted(r.workers_done.items()):
        spent = r.cpu_done.get(role, 0.0) - r.cpu_rest.get(role, 0.0)
        print(
            f"  {role}'s CPU by thread per stored document (same span; of all documents, "
            "the worker handling its shard's): "
            + _threads(r.workers_rest.get(role, {}), done, spent, r.stored)
        )
    if len(r.windows) < 2:
        return
    print(
        "  while sending, by window: seconds since go, stored/s, CPU µs per stored document by "
        "process (of the server's: the engine's merges and the insert threads), RSS of all"
    )
    for a, b in zip(r.windows, r.windows[1:], strict=False):
        print("    " + _window_line(a, b))
    later = [w for w in r.windows if w.at >= r.windows[-1].at / 3]
    if len(later) >= 2:
        print(
            "  steady state (the windows after the run's first third; quote this for a "
            "sustained rate):\n    " + _window_line(later[0], later[-1])
        )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure the reference, run each rate, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rate", default="10000,25000,50000",
                        help="offered segments/s, comma-separated for several runs")  # fmt: skip
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of sending per run (count = rate x duration)")  # fmt: skip
    parser.add_argument("--count", type=int, default=0,
                        help="documents per run (overrides --duration)")  # fmt: skip
    parser.add_argument("--senders", type=int, default=1, help="sender processes")
    parser.add_argument("--samples", type=float, default=20.0,
                        help="traces per second sampled for freshness")  # fmt: skip
    parser.add_argument("--no-api-count", action="store_true",
                        help="skip counting traces through GetTraceSummaries")  # fmt: skip
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the uvloop+orjson reference")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the data directories")
    parser.add_argument("--group", action="append", default=[], metavar="FILTER",
                        help="create a group with this filter first (repeatable)")  # fmt: skip
    parser.add_argument("--arrival-delay", type=float, default=0.0, metavar="S",
                        help="trace ids' seconds lag their send time by 0-S s (uniform)")  # fmt: skip
    parser.add_argument("--cached-traces", type=int, default=0, metavar="N",
                        help="the server's --cached-traces (default: the server's own)")  # fmt: skip
    parser.add_argument("--api", type=int, default=0, metavar="N",
                        help="send through PutTraceSegments, N documents a call, not UDP")  # fmt: skip
    parser.add_argument("--connections", type=int, default=16, metavar="C",
                        help="with --api: calls in flight per sender")  # fmt: skip
    parser.add_argument("--window", type=float, default=10.0, metavar="S",
                        help="print the run by windows of S seconds (0: none)")  # fmt: skip
    args = parser.parse_args(argv)
    rates = [float(x) for x in args.rate.split(",")]
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
    ceiling = float("nan")
    if not args.no_reference:
        ceiling, ref_loss, ref_sent = reference_ceiling(100_000)
        print(f"reference: bare uvloop receive + orjson.loads of the same datagrams, one "
              f"unpaced sender: {ceiling:,.0f} docs/s ({ref_loss:.1%} loss of {ref_sent:,})")  # fmt: skip
    for rate in rates:
        count = args.count or int(rate * args.duration)
        print(f"\nrate {rate:,.0f}/s, {count:,} documents, {args.senders} sender(s), "
              f"arrival delay 0-{args.arrival_delay:g} s, cached traces "
              f"{args.cached_traces or 'default'}")  # fmt: skip
        r = run_once(
            rate, count, args.senders, args.samples, not args.no_api_count, args.keep,
            args.group, args.arrival_delay, args.cached_traces, args.api, args.connections,
            args.window,
        )  # fmt: skip
        _report(r, ceiling)
    return 0


if __name__ == "__main__":
    sys.exit(main())
