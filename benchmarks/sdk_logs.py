"""LogsHandler's cost to the application, and its delivery, against a real server.

Logs ``RECORDS`` records (inside a traced segment, so each carries the trace and entity
ids) through :class:`fluoroscope.sdk.LogsHandler` to a ``fluoroscope server`` started
here on a free loopback port, and measures:

- the application thread's time per ``log.info`` call (formatting to a JSON line,
  stamping, queueing; the sender thread runs meanwhile, as in an application);
- the reference, in the same run: the same calls through the standard library's
  ``logging.StreamHandler`` writing ``LOG_FORMAT`` lines (trace ids stamped by
  ``TraceContextFilter``) to ``/dev/null`` — what an application pays to log at all;
- all-in: until ``flush()`` returns, i.e. every record accepted by the server, and the
  number the server holds afterwards (a Logs Insights ``stats count()``): zero loss.

Prints each figure and the ratio ours / reference. Run:
``python benchmarks/sdk_logs.py [records]`` (default 50,000; < 1 min). Not part of pytest.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from fluoroscope.sdk import InMemoryEmitter, LogsHandler, Tracer
from fluoroscope.sdk.instrument.logging import LOG_FORMAT, TraceContextFilter

RECORDS = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "server", "--listen", f"127.0.0.1:{port}",
         "--data-dir", str(data_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start")


def _timed(log: logging.Logger, tracer: Tracer) -> float:
    """Seconds per ``log.info`` call, on this thread, inside one segment."""
    with tracer.segment("bench"):
        began = time.perf_counter()
        for i in range(RECORDS):
            log.info("order %d loaded from %s in %.1f ms", i, "orders-table", 12.5)
        return (time.perf_counter() - began) / RECORDS


def _count(url: str, group: str) -> int:
    def call(operation: str, body: dict[str, object]) -> dict[str, object]:
        request = urllib.request.Request(
            url + "/",
            data=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": f"Logs_20140328.{operation}",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return dict(json.loads(response.read()))

    end = int(time.time()) + 5
    query = call(
        "StartQuery",
        {"logGroupName": group, "startTime": end - 3600, "endTime": end,
         "queryString": "stats count(*) as n"},
    )  # fmt: skip
    while True:
        reply = call("GetQueryResults", {"queryId": query["queryId"]})
        if reply["status"] == "Complete":
            rows = reply["results"]
            assert isinstance(rows, list)
            return int(rows[0][0]["value"]) if rows else 0
        time.sleep(0.1)


def main() -> None:
    tracer = Tracer(service="bench", emitter=InMemoryEmitter(), sampling=False)
    with tempfile.TemporaryDirectory() as data_dir, open(os.devnull, "w") as devnull:
        proc, url = _start_server(Path(data_dir))
        try:
            reference = logging.getLogger("bench.reference")
            reference.propagate = False
            stream = logging.StreamHandler(devnull)
            stream.setFormatter(logging.Formatter(LOG_FORMAT))
            stream.addFilter(TraceContextFilter())
            reference.addHandler(stream)
            reference.setLevel(logging.INFO)
            ref = _timed(reference, tracer)  # with the server up, as ours runs
            handler = LogsHandler(url, log_group="bench", max_queue=RECORDS + 10)
            ours_log = logging.getLogger("bench.ours")
            ours_log.propagate = False
            ours_log.addHandler(handler)
            ours_log.setLevel(logging.INFO)
            began = time.perf_counter()
            ours = _timed(ours_log, tracer)
            delivered = handler.flush(timeout=120)
            all_in = (time.perf_counter() - began) / RECORDS
            stats = handler.stats()
            handler.close()
            stored = _count(url, "bench")
        finally:
            proc.terminate()
            proc.wait(30)
    print(f"records: {RECORDS}, batches: {stats['batches']}, dropped: {stats['dropped']}")
    print(f"reference (StreamHandler to /dev/null): {ref * 1e6:.1f} µs/record")
    print(f"LogsHandler, application thread:        {ours * 1e6:.1f} µs/record")
    print(f"LogsHandler, all-in until flush():      {all_in * 1e6:.1f} µs/record")
    print(f"ratio ours / reference (application thread): {ours / ref:.2f}")
    print(f"flush: {delivered}; stored on the server: {stored} of {RECORDS}")


if __name__ == "__main__":
    main()
