"""OTLP/HTTP protobuf ingest against the UDP JSON path, in the same run.

Target (DESIGN.md §7): OTLP protobuf ingest per span no costlier than the UDP JSON path.

What one run does:

1. builds ``--spans`` spans shaped like OpenTelemetry instrumentation's (traces of a SERVER
   span with a DynamoDB call, an HTTP call and an internal span; HTTP and AWS attributes
   of the new semantic conventions, a request id unique to each call; a resource of 6
   attributes), as OTLP protobuf
   requests of ``--batch`` spans, and the very segment documents the server makes of them
   (:mod:`fluoroscope.ingest.otlp`) as UDP daemon datagrams - so both paths store the
   same documents;
2. starts a fresh ``fluoroscope server`` per attempt and sends everything as fast as it
   is taken: the requests from ``--connections`` keep-alive connections (each answer
   waits until its spans are stored); the datagrams from one process paced to an offered
   rate, starting at ``--udp-rate`` and lowered by a third after each attempt that lost
   datagrams (UDP has no back-pressure: the kernel drops what a full socket buffer
   cannot hold), so UDP's figure is the best rate it took without loss; then OTLP again,
   paced to that same rate, so that both paths' CPU per span is measured under the same
   load;
3. polls ``GET /api/status`` until every span is stored, and reports spans stored per
   second from the first send and the server's CPU time (all its processes, from when
   it is idle before the first send until it is idle again: the engine's merges of what
   was stored included) per span stored, with the counters of anything dropped or refused (zero loss is required: a
   run with losses prints them and fails). On a shared machine CPU per span is the
   steadier of the two figures.

Usage: ``python benchmarks/otlp.py [--spans 60000]``; ~1 minute. Never run by pytest.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ingest import process_cpu, tree_pids
from fluoroscope.ingest.otlp import Translator, documents_of

HEADER = b'{"format":"json","version":1}\n'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _attr(span: Any, key: str, value: Any) -> None:
    kv = span.attributes.add()
    kv.key = key
    if isinstance(value, int):
        kv.value.int_value = value
    else:
        kv.value.string_value = value


def build(spans: int, batch: int) -> tuple[list[bytes], list[bytes]]:
    """OTLP requests of ``batch`` spans, and the same spans' documents as datagrams."""
    requests: list[bytes] = []
    datagrams: list[bytes] = []
    now = time.time_ns()
    made = 0
    while made < spans:
        message = ExportTraceServiceRequest()
        rs = message.resource_spans.add()
        value: str | int
        for key, value in (
            ("service.name", "checkout"), ("service.version", "1.4.2"),
            ("telemetry.sdk.name", "opentelemetry"), ("telemetry.sdk.language", "python"),
            ("telemetry.sdk.version", "1.45.2"), ("host.name", "web-1"),
        ):  # fmt: skip
            _attr(rs.resource, key, value)
        scope = rs.scope_spans.add()
        for _ in range(min(batch, spans - made) // 4):
            trace_id, root_id = os.urandom(16), os.urandom(8)
            start = now + made * 1000
            root = scope.spans.add(trace_id=trace_id, span_id=root_id, name="POST /orders", kind=2)
            root.start_time_unix_nano, root.end_time_unix_nano = start, start + 40_000_000
            for key, value in (
                ("http.request.method", "POST"), ("url.scheme", "https"),
                ("server.address", "shop.example.com"), ("url.path", "/orders"),
                ("http.response.status_code", 201), ("user_agent.original", "curl/8.5"),
                ("client.address", "10.1.2.3"), ("http.route", "/orders"),
            ):  # fmt: skip
                _attr(root, key, value)
            db = scope.spans.add(trace_id=trace_id, span_id=os.urandom(8), name="DynamoDB.PutItem")
            db.parent_span_id, db.kind = root_id, 3
            db.start_time_unix_nano, db.end_time_unix_nano = start + 1_000_000, start + 9_000_000
            for key, value in (
                ("rpc.system", "aws-api"), ("rpc.service", "DynamoDB"), ("rpc.method", "PutItem"),
                ("aws.region", "us-east-1"), ("aws.request_id", os.urandom(12).hex()),
                ("http.response.status_code", 200),
            ):  # fmt: skip
                _attr(db, key, value)
            kv = db.attributes.add()
            kv.key = "aws.dynamodb.table_names"
            kv.value.array_value.values.add().string_value = "orders"
            call = scope.spans.add(trace_id=trace_id, span_id=os.urandom(8), name="GET")
            call.parent_span_id, call.kind = root_id, 3
            call.start_time_unix_nano = start + 10_000_000
            call.end_time_unix_nano = start + 30_000_000
            for key, value in (
                ("http.request.method", "GET"), ("url.full", "http://payments:8080/charge"),
                ("server.address", "payments"), ("server.port", 8080),
                ("http.response.status_code", 200),
            ):  # fmt: skip
                _attr(call, key, value)
            work = scope.spans.add(trace_id=trace_id, span_id=os.urandom(8), name="render")
            work.parent_span_id, work.kind = root_id, 1
            work.start_time_unix_nano = start + 31_000_000
            work.end_time_unix_nano = start + 39_000_000
            made += 4
        requests.append(message.SerializeToString())
        valid, _, out = documents_of(message, Translator(), now=time.time(), max_age=None)
        assert not out.rejected, out.message
        datagrams += [HEADER + raw for _, raw in valid]
    return requests, datagrams


def start(port: int, data_dir: Path, otlp_port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUOROSCOPE_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "server", "--listen", f"127.0.0.1:{port}",
         "--data-dir", str(data_dir), "--otlp-http-listen", f"127.0.0.1:{otlp_port}",
         "--otlp-grpc-listen", "off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status(port)
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the server did not start")


def status(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=10) as r:
        return dict(json.loads(r.read())["counters"])


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and its descendants still running (Linux)."""
    return sum(cpu_by_process(pid).values())


def cpu_by_process(pid: int) -> dict[int, float]:
    """CPU time (user + system) of ``pid`` and of each descendant still running."""
    return {p: process_cpu(p) for p in tree_pids(pid)}


def settle(pid: int, timeout: float = 60.0) -> None:
    """Wait until the server and its workers are idle. Their start-up (imports, the
    workers' first Arrow conversion, the store's first merges) went on for ~4 s after
    the server first answered, at ~0.4 core, on a machine loaded ~2x (measured): the
    fixed 1 s pause this replaces charged ~1 s of it (~50 us per span of a 20,000-span
    run) to whichever path ran then."""
    deadline = time.monotonic() + timeout
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = cpu_seconds(pid)
        if now - before < 0.015:  # a clock tick at most (10 ms) over a quarter second
            return
        before = now


def losses(counters: dict[str, int]) -> dict[str, int]:
    return {
        k: v
        for k, v in counters.items()
        if v and ("dropped" in k or "invalid" in k or "lost" in k or "rejected" in k)
    }


def wait_stored(port: int, count: int, timeout: float = 150) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counters = status(port)
        if counters.get("stored_documents", 0) >= count or losses(counters):
            return counters
        # Each poll costs the server ~1 ms of CPU: polled 50 times a second, that was
        # charged to the slower path as ~25 us per span of a 20,000-span run.
        time.sleep(0.1)
    return status(port)


def send_udp(port: int, datagrams: list[bytes], rate: float) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        started = time.perf_counter()
        for index in range(0, len(datagrams), 64):
            for datagram in datagrams[index : index + 64]:
                sock.sendto(datagram, ("127.0.0.1", port))
            ahead = started + (index + 64) / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)


def send_otlp(
    port: int, requests: list[bytes], connections: int, rate: float = 0.0, per_request: int = 1
) -> None:
    """Send ``requests`` over ``connections``; with ``rate``, no faster than that many
    spans a second (``per_request`` spans each)."""
    pending = list(reversed(requests))
    lock = threading.Lock()
    failures: list[str] = []
    started = time.perf_counter()
    sent = [0]

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not pending:
                    break
                body = pending.pop()
                due = started + sent[0] * per_request / rate if rate else 0.0
                sent[0] += 1
            if (ahead := due - time.perf_counter()) > 0:
                time.sleep(ahead)
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            response = conn.getresponse()
            answer = response.read()
            if response.status != 200 or answer:
                failures.append(f"{response.status} {answer[:200]!r}")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"OTLP requests failed: {failures[:3]}")


def run(path: str, requests: list[bytes], datagrams: list[bytes], args: Any) -> tuple[float, float]:
    port, otlp_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="fluoroscope-bench-otlp-") as tmp:
        proc = start(port, Path(tmp), otlp_port)
        try:
            settle(proc.pid)  # start-up work (imports, migrations) out of the CPU figure
            cpu = cpu_seconds(proc.pid)
            main_cpu = cpu_by_process(proc.pid)[proc.pid]
            started = time.perf_counter()
            if path == "udp":
                send_udp(port, datagrams, args.udp_rate)
            else:
                send_otlp(
                    otlp_port,
                    requests,
                    args.connections,
                    args.otlp_rate,
                    len(datagrams) // len(requests),
                )
            counters = wait_stored(port, len(datagrams))
            elapsed = time.perf_counter() - started
            settle(proc.pid)  # the merges the run caused are its cost too
            cpu = cpu_seconds(proc.pid) - cpu
            main_cpu = cpu_by_process(proc.pid)[proc.pid] - main_cpu
        finally:
            proc.send_signal(2)
            proc.wait(60)
    stored = counters.get("stored_documents", 0)
    lost = losses(counters)
    rate = stored / elapsed
    per_span = cpu / max(stored, 1) * 1e6
    offered = ""
    if path == "udp" or args.otlp_rate:
        offered = f" (offered {args.udp_rate:,.0f}/s)"
    print(f"{path:>5}{offered}: {stored} of {len(datagrams)} spans stored in {elapsed:.2f} s = "
          f"{rate:,.0f} spans/s, server CPU {per_span:.0f} us/span "
          f"({main_cpu / max(stored, 1) * 1e6:.0f} in the main process)"
          + (f"  LOSSES {lost}" if lost else ""))  # fmt: skip
    if lost or stored < len(datagrams):
        return 0.0, 0.0
    return rate, per_span


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=512, help="spans per OTLP request")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--udp-rate", type=float, default=20_000, help="datagrams/s offered at first"
    )
    args = parser.parse_args(argv)
    args.otlp_rate = 0.0
    requests, datagrams = build(args.spans, args.batch)
    size = sum(map(len, requests)) / len(datagrams)
    print(f"{len(datagrams)} spans: {len(requests)} OTLP requests ({size:.0f} B/span), "
          f"datagrams {sum(map(len, datagrams)) / len(datagrams):.0f} B/span")  # fmt: skip
    udp = (0.0, 0.0)
    for _ in range(4):
        udp = run("udp", requests, datagrams, args)
        if udp[0]:
            break
        args.udp_rate *= 2 / 3
    args.otlp_rate = 0.0
    otlp = run("otlp", requests, datagrams, args)
    args.otlp_rate = args.udp_rate  # the same offered rate as UDP's: the same contention
    paced = run("otlp", requests, datagrams, args)
    if not udp[0] or not otlp[0] or not paced[0]:
        raise SystemExit("a path lost spans at every rate tried")
    print(f"OTLP/HTTP protobuf vs UDP JSON: spans/s stored {otlp[0] / udp[0]:.2f}x; "
          f"server CPU per span {otlp[1] / udp[1]:.2f}x, {paced[1] / udp[1]:.2f}x at UDP's "
          "offered rate (target: <= 1.00; UDP's rate is bounded by what it takes without "
          "loss, so CPU per span at the same rate is the fairer figure)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
