"""A full disk and a read-only store, made for real with mounts (root only).

The server says so once, refuses writes with a retryable error (503, at once, never a
hang), counts UDP documents it cannot store as dropped, keeps answering reads, and
writes again once the disk can take it, without a restart. A stop under a full disk
and UDP load is bounded and says truthfully what was dropped.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from tests.support import (
    ServerProcess,
    get_documents,
    segment,
    start_server,
    udp_load,
    wait_for,
)

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="needs root: a full disk is a small tmpfs, a read-only store a read-only bind mount",
)

_REFUSED = "the store cannot take writes"
_RECOVERED = "the store takes writes again"


def _mount(*args: str) -> None:
    result = subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} is not possible here: {result.stderr.strip()}")


def _unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, timeout=30).returncode:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB file system of its own."""
    disk = tmp_path / "disk"
    disk.mkdir()
    _mount("-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk))
    try:
        yield disk
    finally:
        _unmount(disk)


def _fill(disk: Path) -> Path:
    """Fill ``disk`` up to the last byte; the file to delete to give the room back."""
    filler = disk / "filler"
    chunk = b"\0" * (1 << 20)
    with filler.open("wb", buffering=0) as out:
        while True:
            try:
                out.write(chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                break
        for size in (4096, 1):  # the last partial chunk
            while True:
                try:
                    out.write(chunk[:size])
                except OSError:
                    break
    assert os.statvfs(disk).f_bavail == 0
    return filler


def _client(server: ServerProcess, **retries: Any) -> Any:
    """boto3's xray client; no retries unless ``retries`` says otherwise."""
    return boto3.client(
        "xray",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries=retries or {"total_max_attempts": 1}, read_timeout=30),
    )


def _put_refused(client: Any, reason: str) -> float:
    """PutTraceSegments of 20 documents, which must be refused as retryable; seconds taken."""
    started = time.monotonic()
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.put_trace_segments(TraceSegmentDocuments=[json.dumps(segment()) for _ in range(20)])
    took = time.monotonic() - started
    error = caught.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert error["Error"]["Code"] == "ServiceUnavailable"
    assert f"({reason})" in error["Error"]["Message"]
    return took


def _put_stored(server: ServerProcess) -> dict[str, Any]:
    """A document put with PutTraceSegments (retried while refused) and read back."""
    client = _client(server)
    doc = segment()

    def put() -> bool:
        try:
            reply = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(doc)])
        except botocore.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] != "ServiceUnavailable":
                raise
            return False
        assert reply["UnprocessedTraceSegments"] == []
        return True

    wait_for(put, timeout=30, interval=0.2)
    assert get_documents(client, doc["trace_id"]) == [doc]
    return doc


def _reads_answer(server: ServerProcess, stored: list[dict[str, Any]]) -> None:
    client = _client(server)
    for doc in stored:
        assert get_documents(client, doc["trace_id"]) == [doc]
    now = time.time()
    found = client.get_trace_summaries(StartTime=now - 600, EndTime=now + 60)["TraceSummaries"]
    assert {d["trace_id"] for d in stored} <= {s["Id"] for s in found}


def _udp_counted(server: ServerProcess, count: int) -> None:
    """``count`` UDP documents sent now are counted as dropped, none stored."""
    before = server.status()["counters"]
    server.send_documents(*(segment() for _ in range(count)))

    def delta(name: str, counters: dict[str, int]) -> int:
        return int(counters.get(name, 0)) - int(before.get(name, 0))

    def counted() -> dict[str, int] | None:
        now = server.status()["counters"]
        dropped = delta("udp_dropped_store_unwritable", now) + delta(
            "dropped_store_unwritable", now
        )
        return now if delta("udp_received", now) == count and dropped == count else None

    after = wait_for(counted, timeout=30)
    assert delta("stored_documents", after) == 0


def test_a_full_disk_refuses_writes_at_once_and_heals_without_a_restart(
    small_disk: Path,
) -> None:
    server = start_server(small_disk / "data")
    try:
        old = [_put_stored(server) for _ in range(3)]
        filler = _fill(small_disk)
        client = _client(server)
        # Refused promptly (the first one tries the engine, the next are refused at once).
        took = [_put_refused(client, "disk full") for _ in range(3)]
        assert max(took) < 5, took
        # A retryable error to boto3 itself: its standard mode retries it.
        retrying = _client(server, mode="standard", total_max_attempts=3)
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            retrying.put_trace_segments(TraceSegmentDocuments=[json.dumps(segment())])
        assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 2
        _reads_answer(server, old)
        _udp_counted(server, 200)

        filler.unlink()  # room again: writes resume, same process
        new = _put_stored(server)
        late = segment()
        server.send_documents(late)
        assert wait_for(lambda: get_documents(client, late["trace_id"]), timeout=30) == [late]
        _reads_answer(server, [*old, new])
    finally:
        output = server.stop(signal.SIGTERM)
    assert server.process.returncode == 0, output
    assert output.count(_REFUSED) == 1, output  # said once, not once per attempt
    assert output.count(_RECOVERED) == 1, output
    assert "disk full" in output and "NOT_ENOUGH_SPACE" in output
    assert "store write failed" not in output and "Traceback" not in output, output
    assert "udp_dropped_store_unwritable=" in output or "dropped_store_unwritable=" in output


def test_a_read_only_store_refuses_writes_and_heals(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server(data)
    mounted = False
    try:
        old = [_put_stored(server)]
        # A read-only view of the data directory from now on (files the engine holds
        # open keep their mount; a remount of a file system with writers is refused).
        _mount("--bind", str(data), str(data))
        mounted = True
        _mount("-o", "remount,bind,ro", str(data))
        client = _client(server)
        assert max(_put_refused(client, "read-only") for _ in range(2)) < 5
        _reads_answer(server, old)
        _udp_counted(server, 100)
        _mount("-o", "remount,bind,rw", str(data))
        _reads_answer(server, [*old, _put_stored(server)])
    finally:
        output = server.stop(signal.SIGTERM)
        if mounted:
            _unmount(data)
    assert server.process.returncode == 0, output
    assert output.count(_REFUSED) == 1 and output.count(_RECOVERED) == 1, output
    assert "Read-only file system" in output and "Traceback" not in output, output


def test_a_stop_under_a_full_disk_and_udp_load_is_bounded_and_truthful(
    small_disk: Path,
) -> None:
    server = start_server(small_disk / "data", "--ingest-workers", "2")
    stop = threading.Event()
    sender = threading.Thread(target=udp_load, args=(server.port, stop))
    try:
        _fill(small_disk)
        sender.start()

        def refused_under_load() -> tuple[int, dict[str, int]] | None:
            now: dict[str, int] = server.status()["counters"]
            refused = now.get("udp_dropped_store_unwritable", 0)
            refused += now.get("dropped_store_unwritable", 0)
            return (refused, now) if refused and now.get("udp_received", 0) >= 5_000 else None

        refused, counters = wait_for(refused_under_load, timeout=60)
        started = time.monotonic()
        output = server.stop(signal.SIGTERM, timeout=120)  # the load goes on meanwhile
        took = time.monotonic() - started
    finally:
        stop.set()
        if sender.is_alive():
            sender.join()
        server.stop(signal.SIGKILL)  # only if still running
    assert server.process.returncode == 0, output
    assert took < 20, f"the stop took {took:.1f} s"
    assert "did not finish" not in output and "Traceback" not in output, output
    (line,) = [line for line in output.splitlines() if line.startswith("Stopped.")]
    assert line.startswith("Stopped. Stored 0 documents; dropped: "), line
    listed = dict(item.split("=") for item in line.removesuffix(".").split(": ")[1].split(", "))
    dropped = int(listed.get("udp_dropped_store_unwritable", 0)) + int(
        listed.get("dropped_store_unwritable", 0)
    )
    assert dropped >= refused, (line, counters)
