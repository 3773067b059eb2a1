"""The server's processes: the ingest workers and the UDP receiver, under real signals."""

from __future__ import annotations

import json
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support import find_summary, get_documents, segment, start_server, wait_for


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(x) for x in (task / "children").read_text().split())
    return found


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    for child in _children(pid):
        out.append(child)
        out.extend(_descendants(child))
    return out


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def _helpers(server_pid: int, workers: int = 2) -> list[int] | None:
    """The server's helper processes once all run (for :func:`wait_for`)."""
    found = _descendants(server_pid)
    return found if len(found) == workers + 1 else None


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def _workers(server_pid: int) -> list[int]:
    return [p for p in _children(server_pid) if "fluoroscope.ingest.worker" in _cmdline(p)]


def test_ctrl_c_to_the_process_group_stores_everything(tmp_path: Path) -> None:
    """A terminal's Ctrl-C signals the server and its helper processes together."""
    server = start_server(tmp_path / "data", "--ingest-workers", "2")
    helpers = wait_for(lambda: _helpers(server.process.pid))
    assert sum("fluoroscope.ingest.worker" in _cmdline(p) for p in helpers) == 2
    assert sum("fluoroscope.ingest.receiver" in _cmdline(p) for p in helpers) == 1
    server.send_documents(*(segment() for _ in range(200)))
    # Stored: both workers run (each owns some of the traces) and ignore signals by now.
    wait_for(lambda: server.counter("stored_documents") == 200)
    server.send_documents(*(segment() for _ in range(200)))
    wait_for(lambda: server.counter("udp_received") == 400)
    for pid in helpers:  # as a terminal would (the test runner shares their group)
        os.kill(pid, signal.SIGINT)
    time.sleep(0.3)
    assert not any(_gone(p) for p in helpers), "helpers must leave stopping to the server"
    output = server.stop(signal.SIGINT)
    assert "Stored 400 documents; nothing dropped." in output
    # The worker ends on its own, exit code 0: no abort, no restart on the way out.
    assert "Fatal Python error" not in output and "restarting it" not in output, output
    assert all(_gone(p) for p in helpers)


def test_helpers_exit_when_the_server_dies(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--ingest-workers", "2")
    helpers = wait_for(lambda: _helpers(server.process.pid))
    server.process.kill()
    server.stop()  # collects what it printed
    wait_for(lambda: all(_gone(p) for p in helpers), timeout=10)


def test_a_killed_worker_is_replaced_and_ingest_goes_on(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--ingest-workers", "1")
    try:
        client = server.xray()
        first = segment()
        server.send_documents(first)
        wait_for(lambda: get_documents(client, first["trace_id"]))
        (worker,) = _workers(server.process.pid)
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: server.counter("worker_restarts") == 1, timeout=15)
        second = segment()

        def stored() -> object:
            server.send_documents(second)  # the new worker may not be receiving yet
            return get_documents(client, second["trace_id"])

        assert wait_for(stored, timeout=20, interval=0.5) == [second]
        assert get_documents(client, first["trace_id"]) == [first]
    finally:
        output = server.stop()
    assert "restarting it" in output


def test_the_workers_store_without_loading_numpy_or_pandas(tmp_path: Path) -> None:
    """pyarrow would import numpy as a worker loads it (~11 MB, and OpenBLAS's threads),
    pandas at its first Arrow conversion (~43 MB each) and pyarrow.dataset at its first
    group-by (~11 MB); the workers keep them out and store as before, graph statistics
    included (summed with Arrow compute)."""
    server = start_server(tmp_path / "data", "--ingest-workers", "2")
    try:
        client = server.xray()
        docs = [segment() for _ in range(50)]
        server.send_documents(*docs)
        wait_for(lambda: server.counter("stored_documents") == 50)
        assert get_documents(client, docs[0]["trace_id"]) == [docs[0]]
        now = time.time()
        wait_for(
            lambda: client.get_service_graph(StartTime=now - 600, EndTime=now + 60)["Services"]
        )
        workers = _workers(server.process.pid)
        assert len(workers) == 2
        for pid in workers:
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "pyarrow" in maps  # the checks below look where they would see them
            assert "/pandas/" not in maps, f"worker {pid} loaded pandas"
            assert not re.search(r"/numpy(\.libs)?/|openblas", maps), f"worker {pid} loaded numpy"
            # its group-bys without pyarrow.dataset (and the filesystems it loads)
            assert "pyarrow/_dataset" not in maps, f"worker {pid} loaded pyarrow.dataset"
    finally:
        server.stop()


def test_read_ahead_hands_out_waiting_batches_in_order_and_stays_bounded() -> None:
    from fluoroscope.ingest.frames import write_frame
    from fluoroscope.ingest.readahead import ReadAhead
    from fluoroscope.ingest.worker import ACK, BATCH

    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        ahead = ReadAhead(reader, max_bytes=10_000)
        for i in range(3):
            write_frame(writer, BATCH, b"b%d" % i + b"." * 4000)
        write_frame(writer, ACK, b"ack")
        write_frame(writer, BATCH, b"late")
        time.sleep(0.2)
        assert len(ahead._items) == 3, "reads stop once more than max_bytes wait"
        first = ahead.next()
        assert first is not None and first[0] == BATCH and first[1].startswith(b"b0")
        # The next batches are taken without waiting; the ACK stops the run.
        assert (second := wait_for(ahead.next_batch)) is not None and second.startswith(b"b1")
        assert (third := wait_for(ahead.next_batch)) is not None and third.startswith(b"b2")
        assert ahead.next_batch() is None
        assert ahead.next() == (ACK, b"ack")
        assert ahead.next() == (BATCH, b"late")
        writer.close()
        assert ahead.next() is None  # end of stream
        ahead.close()


def test_a_small_trace_cache_holds_its_bound_and_late_segments_still_merge(
    tmp_path: Path,
) -> None:
    """``--cached-traces`` reaches the worker; a segment of a trace that left the cache is
    merged with what the store holds (the summary names both services)."""
    server = start_server(tmp_path / "data", "--cached-traces", "100")
    try:
        client = server.xray()
        first = segment(name="api")
        server.send_documents(first)
        server.send_documents(*(segment() for _ in range(300)))
        wait_for(lambda: server.counter("stored_documents") == 301, timeout=30)
        assert wait_for(lambda: 0 < server.status()["cached_traces"] <= 100)
        late = segment(first["trace_id"], name="billing", parent_id=first["id"])
        server.send_documents(late)
        wait_for(lambda: server.counter("stored_documents") == 302, timeout=30)

        def services() -> set[str] | None:
            found = find_summary(client, first["trace_id"], time.time() - 60, time.time() + 60)
            names = {s["Name"] for s in found["ServiceIds"]} if found else set()
            return names if names == {"api", "billing"} else None

        assert wait_for(services, timeout=15) == {"api", "billing"}
        docs = get_documents(client, first["trace_id"])
        assert docs is not None and sorted(d["name"] for d in docs) == ["api", "billing"]
    finally:
        server.stop()


def _misrouted(trace_id: str, parent_id: str, shards: int) -> dict[str, object]:
    """A subsegment of ``trace_id`` whose body names another trace id first, one the
    receiving process routes to a worker that does not own ``trace_id``."""
    from fluoroscope.ingest.shards import shard_of

    owner = shard_of(trace_id.encode(), shards)
    decoy = next(
        d for d in (f"decoy-{i}" for i in range(100)) if shard_of(d.encode(), shards) != owner
    )
    now = time.time()
    doc: dict[str, object] = {"metadata": {"default": {"trace_id": decoy}}}  # key order kept
    doc.update(segment(trace_id, type="subsegment", parent_id=parent_id, name="call"))
    doc["start_time"], doc["end_time"] = now, now + 0.1
    return doc


def test_every_document_of_a_trace_is_merged_by_its_owner(tmp_path: Path) -> None:
    """Two workers: a document routed to the wrong one from its bytes is handed back and
    merged with its trace; PutTraceSegments batches spanning both workers are stored."""
    server = start_server(tmp_path / "data", "--ingest-workers", "2")
    try:
        client = server.xray()
        root = segment()
        stray = _misrouted(root["trace_id"], root["id"], 2)
        server.send_documents(stray, root)

        def merged() -> list[dict[str, Any]] | None:
            docs = get_documents(client, root["trace_id"])
            return docs if docs and "subsegments" in docs[0] else None

        docs = wait_for(merged)  # the handed-back subsegment may come a round later
        assert [d["id"] for d in docs] == [root["id"]]
        assert [s["id"] for s in docs[0]["subsegments"]] == [stray["id"]]
        assert docs[0]["subsegments"][0]["metadata"] == stray["metadata"]
        # workers report their counters after storing, so the count may lag the rows
        wait_for(lambda: server.counter("udp_rerouted") >= 1)
        assert server.counter("udp_rerouted") == 1
        summary = find_summary(client, root["trace_id"], root["start_time"] - 60, time.time() + 60)
        assert summary is not None and summary["Duration"] == 0.25

        batch = [segment() for _ in range(40)]  # ~20 per worker
        reply = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in batch])
        assert reply["UnprocessedTraceSegments"] == []
        for doc in batch:  # acknowledged means stored, on both workers
            assert get_documents(client, doc["trace_id"]) == [doc]

        # Handed back while stopping: stored before the workers stop.
        late = [segment() for _ in range(30)]
        strays = [_misrouted(d["trace_id"], d["id"], 2) for d in late]
        server.send_documents(*strays, *late)
        wait_for(lambda: server.counter("udp_received") == 62)
    finally:
        output = server.stop()
    assert "Stored 102 documents; nothing dropped." in output, output


def test_counters_between_a_workers_batches_do_not_keep_them_apart(store: Any) -> None:
    """A worker sends its counters every 0.1 s and a batch every 0.2 s beat. Queued
    between its batches, the counters ended each run of batches going in together after
    the first, so behind a slow engine (a loaded machine) the batches went in one per
    insert and queued up without bound. The reader thread takes counters as it reads."""
    from fluoroscope.ingest.frames import write_frame
    from fluoroscope.ingest.process import IngestProcess
    from fluoroscope.ingest.readahead import ReadAhead
    from fluoroscope.ingest.udp import open_udp_socket
    from fluoroscope.ingest.worker import BATCH, COUNTERS
    from tests.support import free_port

    sock = open_udp_socket("127.0.0.1", free_port())
    shard = IngestProcess(store, sock, retention_seconds=86_400, workers=2)._shards[0]
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        ahead = ReadAhead(reader, max_bytes=1 << 20, urgent=shard._take_at_once)
        for i in range(3):
            write_frame(writer, BATCH, b"b%d" % i)
            snapshot = {"counters": {"udp_invalid_json": i}, "cached_traces": 7 + i}
            write_frame(writer, COUNTERS, json.dumps(snapshot).encode())
        writer.close()
        assert ahead.next() == (BATCH, b"b0")
        assert wait_for(ahead.next_batch) == b"b1"
        assert wait_for(ahead.next_batch) == b"b2"
        assert ahead.next() is None  # every counters frame was taken as read
        ahead.close()
    sock.close()
    assert shard.cached_now == 9 and shard.worker == {"udp_invalid_json": 2}


def test_documents_handed_back_after_the_stop_are_counted(store: Any) -> None:
    """Only when a close barrier timed out can a worker hand documents back once every
    worker was told to stop: they cannot be stored any more, so they are counted."""
    from fluoroscope.ingest.frames import pack_bodies
    from fluoroscope.ingest.process import IngestProcess
    from fluoroscope.ingest.udp import open_udp_socket
    from tests.support import free_port

    ingest = IngestProcess(
        store, open_udp_socket("127.0.0.1", free_port()), retention_seconds=86_400, workers=2
    )
    ingest.start()
    try:
        doc = segment()
        ingest.submit([(doc["trace_id"], json.dumps(doc).encode())], 100).result(30)
    finally:
        ingest.close()
    stray = pack_bodies([b"1-5759e988-bd862e3fe1be46a994272793", b'{"name":"late"}'])
    ingest._reroute(b"".join(stray))  # as a hub would on a late STRAY frame
    counters = ingest.counters
    assert counters["stored_documents"] == 1
    assert counters["udp_dropped_stopping"] == 1


def test_the_stop_line_lists_what_was_dropped(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data", "--ingest-workers", "1")
    server.send_udp(b"no header at all", b'{"format":"json","version":1}\n{"name": 1}')
    server.send_documents(segment())
    wait_for(lambda: server.counter("stored_documents") == 1)
    wait_for(lambda: server.counter("udp_invalid_missing_field") == 1)
    output = server.stop()
    assert (
        "Stored 1 documents; dropped: udp_dropped_no_header=1, udp_invalid_missing_field=1."
        in output
    )


@pytest.mark.parametrize("share_up_to", [2, 1])
def test_an_otlp_request_is_translated_once_per_span_whether_shared_or_handed_on(
    store: Any, share_up_to: int
) -> None:
    """Two workers, each sent the request (translating the spans of its own traces), or
    one translating it all and handing the others' documents on: either way each span
    becomes its documents once, stored by its trace's owner, and each refused span is
    counted once."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from fluoroscope.ingest.process import IngestProcess
    from fluoroscope.ingest.shards import span_shard
    from fluoroscope.ingest.udp import open_udp_socket
    from tests.support import free_port

    message = ExportTraceServiceRequest()
    spans = message.resource_spans.add().scope_spans.add().spans
    now = time.time_ns()
    traces = [os.urandom(16) for _ in range(40)]
    assert {span_shard(t, 2) for t in traces} == {0, 1}
    for n, trace_id in enumerate(traces * 3):
        span = spans.add(trace_id=trace_id, span_id=os.urandom(8), name=f"s{n}", kind=1)
        span.start_time_unix_nano, span.end_time_unix_nano = now, now + 1000
    for bad in (b"", bytes(16), b"\x01" * 5):  # no trace: refused by exactly one worker
        spans.add(trace_id=bad, span_id=os.urandom(8), name="bad", start_time_unix_nano=now)
    late = spans.add(trace_id=traces[1], span_id=os.urandom(8), name="late")
    late.start_time_unix_nano, late.end_time_unix_nano = now, now - 1  # its owner refuses it

    ingest = IngestProcess(
        store,
        open_udp_socket("127.0.0.1", free_port()),
        retention_seconds=86_400,
        workers=2,
        share_otlp_up_to=share_up_to,
    )
    ingest.start()
    try:
        translated = ingest.translate(message.SerializeToString()).result(60)
        assert translated.stored is not None
        translated.stored.result(60)
    finally:
        ingest.close()
    assert (translated.documents, translated.rejected) == (120, 4)
    assert len(translated.reasons.split("\n")) == 4
    assert "end_time" in translated.reasons and "trace_id" in translated.reasons
    assert ingest.counters["stored_documents"] == 120
    stored = store.entities([f"1-{t.hex()[:8]}-{t.hex()[8:]}" for t in traces])
    assert sorted(len(rows) for rows in stored.values()) == [3] * 40
