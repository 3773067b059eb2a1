"""PutTraceSegments behind a UDP backlog: a client waiting on the API waits for its own
documents, not for the datagrams queued before them (issue: 0.19 s idle became 4.4 s
behind a 70k-datagram backlog).

One run starts ``fluoroscope server`` on a free loopback port and measures the latency of a
one-document PutTraceSegments (keep-alive, the ingest benchmark's ``Api``):

1. idle, ``--calls`` times (the reference, same run);
2. while a sender process pours ``--backlog`` realistic datagrams into the UDP port as fast
   as it can, one call every 50 ms until every datagram is stored or counted.

Prints both distributions and the ratio of the p99 behind the backlog to the idle p99, and
whether every datagram received was stored or counted (kernel drops included).

    python -m benchmarks.ack_latency --backlog 70000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.ingest import Api, free_port, make_trace, percentile, start_server

HEADER = b'{"format":"json","version":1}\n'


def _pour(port: int, count: int) -> None:
    """Send ``count`` datagrams of realistic traces to ``port`` as fast as possible."""
    rng = random.Random(7)
    now = time.time()
    datagrams: list[bytes] = []
    while len(datagrams) < count:
        datagrams += [HEADER + json.dumps(d).encode() for d in make_trace(rng, now)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * 1024 * 1024)
        for datagram in datagrams[:count]:
            sock.sendto(datagram, ("127.0.0.1", port))


def _one_call(api: Api) -> float:
    now = time.time()
    doc = {
        "name": "ack",
        "id": f"{random.getrandbits(64):016x}",
        "trace_id": f"1-{int(now):08x}-{random.getrandbits(96):024x}",
        "start_time": now,
        "end_time": now + 0.01,
    }
    started = time.perf_counter()
    answer = api.call("POST", "/TraceSegments", {"TraceSegmentDocuments": [json.dumps(doc)]})
    elapsed = time.perf_counter() - started
    if answer.get("UnprocessedTraceSegments"):
        raise RuntimeError(f"refused: {answer}")
    return elapsed


def _accounted(counters: dict[str, Any]) -> tuple[int, int]:
    received = int(counters.get("udp_received", 0))
    done = int(counters.get("stored_documents", 0)) - int(counters.get("http_received", 0))
    done += sum(
        int(v)
        for k, v in counters.items()
        if k.startswith(("udp_invalid_", "udp_dropped_")) and k != "udp_dropped_kernel"
    )
    return received, done


def _summary(name: str, values: list[float]) -> str:
    return (
        f"{name}: {len(values)} calls, p50 {percentile(values, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(values, 0.99) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=70_000)
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args(argv)
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        server = start_server(port, Path(scratch))
        try:
            api = Api(port)
            idle = [_one_call(api) for _ in range(args.calls)]
            sender = mp.get_context("spawn").Process(target=_pour, args=(port, args.backlog))
            sender.start()
            behind: list[float] = []
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                behind.append(_one_call(api))
                received, done = _accounted(api.status())
                if not sender.is_alive() and received and done >= received:
                    break
                time.sleep(0.05)
            sender.join()
            counters = api.status()
        finally:
            server.terminate()
            server.wait(60)
    received, done = _accounted(counters)
    print(_summary("idle", idle))
    print(_summary(f"behind {args.backlog} datagrams", behind))
    ratio = percentile(behind, 0.99) / percentile(idle, 0.99)
    print(f"p99 behind the backlog / idle p99: {ratio:.1f}x")
    kernel = int(counters.get("udp_dropped_kernel", 0))
    print(
        f"datagrams: {received} received ({kernel} dropped by the kernel before that), "
        f"{done} stored or counted"
    )
    return 0 if done >= received else 1


if __name__ == "__main__":
    sys.exit(main())
