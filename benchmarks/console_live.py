"""Live tail freshness: a segment sent over UDP -> its row on the console's Traces view.

Target (DESIGN.md §7, issue: the console is live within a second): p99 < 1 s from the
datagram leaving the sender to the trace's row being in the page, with live tail on.

What one run does:

1. starts ``fluoroscope server`` on a free loopback port with a fresh data dir;
2. opens ``#/traces?range=5m&live=1`` in headless Chromium (Playwright), with a
   MutationObserver stamping each row's arrival time (``Date.now()``, the same clock);
3. sends ``--traces`` whole traces (a segment with two subsegments, as the X-Ray SDKs
   send them), one every ``--interval`` seconds, while ``--background`` other documents per
   second flow in from another process;
4. for each trace, polls BatchGetTraces until it is visible through the API: the reference,
   measured in the same run, since the console can be no fresher than the API it reads;
5. reports p50 / p99 / max of send -> row, the same for send -> API, and the ratios against
   the 1 s target and against the API.

Usage: ``python -m benchmarks.console_live --traces 60`` (from the repository's root). Never run by pytest. Needs
Chromium (``scripts/install-browser``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import secrets
import socket
import statistics
import tempfile
import time
import urllib.parse
from pathlib import Path

from playwright.sync_api import sync_playwright

from benchmarks.ingest import Api, free_port, percentile, start_server

TARGET_P99 = 1.0
HEADER = b'{"format": "json", "version": 1}\n'
OBSERVER = """
() => {
  window.__rows = {};
  const stamp = () => {
    const now = Date.now();
    for (const row of document.querySelectorAll('#trace-list tbody tr[data-id]')) {
      if (!(row.dataset.id in window.__rows)) window.__rows[row.dataset.id] = now;
    }
  };
  stamp();
  new MutationObserver(stamp).observe(document.getElementById('view'), {childList: true, subtree: true});
}
"""


def trace_documents(service: str) -> tuple[str, list[bytes]]:
    """A finished trace of one segment with two subsegments, as daemon datagrams."""
    now = time.time()
    trace_id = f"1-{int(now):08x}-{secrets.token_hex(12)}"
    segment_id = secrets.token_hex(8)
    subsegments = [
        {"id": secrets.token_hex(8), "name": name, "start_time": now - 0.04 + i * 0.015,
         "end_time": now - 0.03 + i * 0.015, "namespace": "remote",
         "http": {"request": {"method": "GET", "url": f"https://{name}/x"},
                  "response": {"status": 200}}}
        for i, name in enumerate(("inventory.example.com", "pricing.example.com"))
    ]  # fmt: skip
    segment = {
        "trace_id": trace_id,
        "id": segment_id,
        "name": service,
        "start_time": now - 0.05,
        "end_time": now,
        "http": {
            "request": {
                "method": "GET",
                "url": f"https://{service}/orders/{random.randint(1, 999)}",
            },
            "response": {"status": 200},
        },
        "subsegments": subsegments,
    }
    return trace_id, [HEADER + json.dumps(segment).encode()]


def background(port: int, rate: float, stop_at: float) -> None:
    """Other traffic: ``rate`` documents per second until ``stop_at``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = 0
    start = time.time()
    while time.time() < stop_at:
        _, docs = trace_documents("background-svc")
        for doc in docs:
            sock.sendto(doc, ("127.0.0.1", port))
        sent += 1
        pause = start + sent / rate - time.time()
        if pause > 0:
            time.sleep(pause)
    sock.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=60)
    parser.add_argument("--interval", type=float, default=0.3, help="seconds between traces")
    parser.add_argument("--background", type=float, default=200, help="other documents/s")
    parser.add_argument(
        "--chromium", default=os.environ.get("FLUOROSCOPE_CHROMIUM", "/usr/bin/chromium")
    )
    args = parser.parse_args()

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="fluoroscope-live-") as tmp:
        server = start_server(port, Path(tmp))
        noise: mp.Process | None = None
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=args.chromium,
                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--no-proxy-server"],
                )  # fmt: skip
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"http://127.0.0.1:{port}/#/traces?range=5m&live=1&filter=" +
                          urllib.parse.quote('service("live-svc")'))  # fmt: skip
                page.wait_for_selector("#trace-list[data-polled]")
                page.evaluate(OBSERVER)
                duration = args.traces * args.interval + 5
                if args.background > 0:
                    noise = mp.Process(
                        target=background, args=(port, args.background, time.time() + duration)
                    )
                    noise.start()
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                client = Api(port)
                sent: dict[str, float] = {}
                api: dict[str, float] = {}
                for _ in range(args.traces):
                    trace_id, docs = trace_documents("live-svc")
                    began = time.time()
                    for doc in docs:
                        sock.sendto(doc, ("127.0.0.1", port))
                    sent[trace_id] = began
                    while time.time() - began < 10:
                        if client.call("POST", "/Traces", {"TraceIds": [trace_id]})["Traces"]:
                            api[trace_id] = time.time()
                            break
                        time.sleep(0.005)
                    rest = began + args.interval - time.time()
                    if rest > 0:
                        page.wait_for_timeout(rest * 1000)
                page.wait_for_timeout(3000)
                rows: dict[str, float] = page.evaluate("window.__rows")
                browser.close()
                sock.close()
        finally:
            if noise is not None:
                noise.join()
            server.terminate()
            server.wait(60)

    console = [rows[t] / 1000 - sent[t] for t in sent if t in rows]
    reference = [api[t] - sent[t] for t in sent if t in api]
    missing = len(sent) - len(console)
    print(f"machine: {os.cpu_count()} CPUs; {len(sent)} traces, 1 every {args.interval} s, "
          f"{args.background:.0f} other documents/s")  # fmt: skip
    if not console:
        print("no trace appeared in the console")
        return
    p50, p99 = statistics.median(console), percentile(console, 0.99)
    r50, r99 = statistics.median(reference), percentile(reference, 0.99)
    print(f"reference: sent -> visible through BatchGetTraces: p50 {r50 * 1000:.0f} ms, "
          f"p99 {r99 * 1000:.0f} ms")  # fmt: skip
    print(f"console live tail: sent -> row in the page: p50 {p50 * 1000:.0f} ms, "
          f"p99 {p99 * 1000:.0f} ms, max {max(console) * 1000:.0f} ms; never shown: {missing}")  # fmt: skip
    print(f"  target p99 < {TARGET_P99 * 1000:.0f} ms: ratio {p99 / TARGET_P99:.2f}; "
          f"against the API: p50 {p50 / r50:.1f}x, p99 {p99 / r99:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
