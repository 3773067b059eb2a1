"""What the demo's AWS services write to CloudWatch Logs, shipped to the server's Logs API.

:class:`LogShipper` takes lines from the local Lambda runtime and API Gateway stage
(``put(group, stream, timestamp_ms, message)``: never blocks on the network, never
raises) and a background thread sends them every ``interval`` seconds with
``PutLogEvents`` (``POST /`` with ``X-Amz-Target: Logs_20140328.PutLogEvents``, the
awsJson1_1 protocol, unsigned: a local Fluoroscope server), creating each group and
stream on first use as the real services do. A server that is down or refuses loses
the lines (counted in ``dropped``); the queue is bounded (``max_queued`` lines, the
oldest dropped first). ``close`` sends what is queued, within its timeout.

The line formats themselves (Lambda's START/END/REPORT, the Python runtime's text
lines, API Gateway's JSON access line) are made by the callers, as reference logs.md §5
shows them.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import math
import threading
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "LogShipper",
    "end_line",
    "init_start_line",
    "lambda_stream_name",
    "report_line",
    "start_line",
]

_TARGET: Final = "Logs_20140328."
_MAX_BATCH: Final = 5_000  # events per PutLogEvents (the API takes 10,000)


def lambda_stream_name(day: str, instance: str) -> str:
    """Lambda's stream name for one function instance: ``YYYY/MM/DD/[$LATEST]<32 hex>``."""
    return f"{day}/[$LATEST]{instance}"


class LogShipper:
    """See the module docstring. ``url``: the server's base URL (``http://host:port``)."""

    def __init__(self, url: str, *, interval: float = 0.2, max_queued: int = 100_000) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self.interval = interval
        self._queue: collections.deque[tuple[str, str, int, str]] = collections.deque(
            maxlen=max_queued
        )
        self._created: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self.sent = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="demo-logs", daemon=True)
        self._thread.start()

    def put(self, group: str, stream: str, timestamp_ms: int, message: str) -> None:
        """Queue one line (the oldest queued line is dropped when the queue is full)."""
        if self._closed.is_set():
            return
        with self._lock:
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append((group, stream, int(timestamp_ms), message))

    def flush(self) -> None:
        """Send what is queued now (on the caller's thread)."""
        self._send_queued()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread after sending what is queued."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self._send_queued()
        self._send_queued()

    def _send_queued(self) -> None:
        with self._lock:
            queued = list(self._queue)
            self._queue.clear()
        batches: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for group, stream, ts, message in queued:
            batches.setdefault((group, stream), []).append((ts, message))
        for (group, stream), events in batches.items():
            events.sort(key=lambda e: e[0])
            for i in range(0, len(events), _MAX_BATCH):
                chunk = events[i : i + _MAX_BATCH]
                if self._put(group, stream, chunk):
                    self.sent += len(chunk)
                else:
                    self.dropped += len(chunk)

    def _put(
        self, group: str, stream: str, events: list[tuple[int, str]], *, again: bool = True
    ) -> bool:
        if (group, stream) not in self._created:
            for op, body in (
                ("CreateLogGroup", {"logGroupName": group}),
                ("CreateLogStream", {"logGroupName": group, "logStreamName": stream}),
            ):
                status, kind = self._call(op, body)
                if status != 200 and kind != "ResourceAlreadyExistsException":
                    return False
            self._created.add((group, stream))
        request: dict[str, object] = {
            "logGroupName": group,
            "logStreamName": stream,
            "logEvents": [{"timestamp": ts, "message": m} for ts, m in events],
        }
        status, kind = self._call("PutLogEvents", request)
        if status != 200 and kind == "ResourceNotFoundException" and again:
            self._created.discard((group, stream))  # deleted meanwhile: once more
            return self._put(group, stream, events, again=False)
        return status == 200

    def _call(self, operation: str, body: Mapping[str, object]) -> tuple[int, str]:
        try:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=10)
            try:
                connection.request(
                    "POST",
                    "/",
                    body=json.dumps(body).encode(),
                    headers={
                        "Content-Type": "application/x-amz-json-1.1",
                        "X-Amz-Target": _TARGET + operation,
                    },
                )
                response = connection.getresponse()
                raw = response.read()
            finally:
                connection.close()
        except (OSError, http.client.HTTPException):
            return 0, ""
        kind = ""
        if response.status != 200:
            with contextlib.suppress(ValueError, AttributeError):
                kind = str(json.loads(raw).get("__type", "")).rsplit("#", 1)[-1]
        return response.status, kind


# -- the lines Lambda's platform writes (reference logs.md §5.1) -----------------------

PYTHON_RUNTIME: Final = "python:3.12.v36"


def init_start_line() -> str:
    arn = "arn:aws:lambda:us-east-1::runtime:" + "0" * 64
    return f"INIT_START Runtime Version: {PYTHON_RUNTIME}\tRuntime Version ARN: {arn}\n"


def start_line(request_id: str) -> str:
    return f"START RequestId: {request_id} Version: $LATEST\n"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}\n"


def report_line(
    request_id: str,
    *,
    duration_ms: float,
    memory_mb: int,
    max_memory_mb: int,
    init_ms: float | None,
    trace_header: str | None,
    segment_id: str | None,
) -> str:
    """REPORT, with ``Init Duration`` on a cold start and the ``XRAY`` line (inside the
    same event) when the invocation was sampled."""
    billed = max(1, math.ceil(duration_ms))
    text = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {billed} ms\tMemory Size: {memory_mb} MB\t"
        f"Max Memory Used: {min(max_memory_mb, memory_mb)} MB\t"
    )
    if init_ms is not None:
        text += f"Init Duration: {init_ms:.2f} ms\t"
    text += "\n"
    fields = dict(p.split("=", 1) for p in (trace_header or "").split(";") if "=" in p)
    if fields.get("Sampled") == "1" and fields.get("Root") and segment_id:
        text += f"XRAY TraceId: {fields['Root']}\tSegmentId: {segment_id}\tSampled: true\t\n"
    return text
