"""PutLogEvents end to end through the CloudWatch Logs API (issue 17 items 2 and 8).

A real ``fluoroscope server`` subprocess (embedded engine, temporary directory) takes
PutLogEvents calls of ``--batch`` ~200-byte events from ``--clients`` threads, each on a
keep-alive HTTP connection sending JSON 1.1 exactly as boto3 would (without boto3's own
per-call cost), for ``--seconds``. Figure: events stored per second, with zero loss
checked afterwards by a Logs Insights ``stats count(*)`` over the group. **Reference**,
same run, same clients: the same calls with every event older than 14 days, which the
API parses, validates and rejects (``tooOldLogEventEndIndex``) without storing - what the
HTTP and validation path alone sustains. The ratio says how much of that the store keeps.

Usage: ``python benchmarks/logs_api.py [--seconds 20] [--clients 4] [--batch 1000]``.
Never run by pytest; takes under 2 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

TARGET = "Logs_20140328."


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(client: httpx.Client, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/",
        content=json.dumps(body),
        headers={"X-Amz-Target": TARGET + operation, "Content-Type": "application/x-amz-json-1.1"},
    )
    answer: dict[str, Any] = response.json()
    if response.status_code != 200:
        raise RuntimeError(f"{operation}: {response.status_code} {answer}")
    return answer


def _line(i: int) -> str:
    text = (
        f"[INFO]\t2026-12-03T18:29:55.{i % 1000:03d}Z\t8f507cfc-xmpl-4697-b07a-{i:012d}\t"
        f"Processing order o-{i} for customer c-{i % 977} total=42.{i % 100:02d} items=3"
    )
    return text + " " * max(0, 200 - len(text))


def _phase(url: str, group: str, clients: int, batch: int, seconds: float, old: bool) -> int:
    """Events sent in ``seconds`` by ``clients`` threads (each on its own stream)."""
    sent = [0] * clients
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        stream = f"{'old' if old else 'new'}-{index}"
        with httpx.Client(base_url=url, timeout=60) as http:
            _call(http, "CreateLogStream", {"logGroupName": group, "logStreamName": stream})
            n = 0
            while time.monotonic() < stop:
                now = int(time.time() * 1000) - (20 * 86_400_000 if old else 0)
                events = [{"timestamp": now, "message": _line(n + i)} for i in range(batch)]
                answer = _call(
                    http,
                    "PutLogEvents",
                    {"logGroupName": group, "logStreamName": stream, "logEvents": events},
                )
                rejected = answer.get("rejectedLogEventsInfo", {})
                if old != bool(rejected):
                    raise RuntimeError(f"unexpected answer {answer}")
                n += batch
            sent[index] = n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(sent)


def _stored(url: str, group: str) -> int:
    with httpx.Client(base_url=url, timeout=60) as http:
        now = int(time.time())
        query = _call(
            http,
            "StartQuery",
            {"logGroupName": group, "startTime": now - 3600, "endTime": now + 60,
             "queryString": "stats count(*) as n"},
        )["queryId"]  # fmt: skip
        while True:
            answer = _call(http, "GetQueryResults", {"queryId": query})
            if answer["status"] not in ("Scheduled", "Running"):
                break
            time.sleep(0.2)
        if answer["status"] != "Complete":
            raise RuntimeError(f"count query ended {answer['status']}")
        return int(answer["results"][0][0]["value"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    port = _port()
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [sys.executable, "-m", "fluoroscope", "server", "--listen", f"127.0.0.1:{port}",
             "--data-dir", str(Path(data))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ),
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{url}/api/status", timeout=2)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the server did not start") from None
                    time.sleep(0.2)
            with httpx.Client(base_url=url) as http:
                _call(http, "CreateLogGroup", {"logGroupName": "/bench/api"})
            started = time.monotonic()
            sent = _phase(url, "/bench/api", args.clients, args.batch, args.seconds, old=False)
            stored_rate = sent / (time.monotonic() - started)
            started = time.monotonic()
            checked = _phase(url, "/bench/api", args.clients, args.batch, args.seconds, old=True)
            reference = checked / (time.monotonic() - started)
            stored = _stored(url, "/bench/api")
        finally:
            server.terminate()
            server.wait(60)
    print(f"PutLogEvents stored: {stored_rate:,.0f} events/s ({sent:,} sent, {stored:,} stored)")
    print(f"reference, validated and rejected only: {reference:,.0f} events/s")
    print(f"ratio stored/reference: {stored_rate / reference:.2f}")
    if stored != sent:
        print(f"LOSS: {sent - stored} events", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
