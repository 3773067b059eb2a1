"""Starting, stopping and restarting the server: nothing acknowledged is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fluoroscope.model.ids import new_entity_id
from tests.support import (
    find_summary,
    free_port,
    get_documents,
    segment,
    start_server,
    udp_load,
    wait_for,
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stop_and_restart_keeps_everything_acknowledged(tmp_path: Path, sig: int) -> None:
    port = free_port()
    first = start_server(tmp_path, port=port)
    http_docs = [segment() for _ in range(20)]
    response = first.xray().put_trace_segments(
        TraceSegmentDocuments=[json.dumps(d) for d in http_docs]
    )
    assert response["UnprocessedTraceSegments"] == []
    # Streamed subsegment first, its segment later: the trace completes across the restart.
    parent = segment(name="checkout")
    streamed = {
        "name": "dynamodb", "id": new_entity_id(), "trace_id": parent["trace_id"], "type": "subsegment",
        "parent_id": parent["id"], "namespace": "aws", "start_time": parent["start_time"] + 0.01,
        "end_time": parent["start_time"] + 0.02, "aws": {"table_name": "orders", "operation": "PutItem"},
    }  # fmt: skip
    udp_docs = [segment(name="udp") for _ in range(200)]
    first.send_documents(streamed, *udp_docs)
    wait_for(lambda: first.counter("stored_documents") >= 221)
    output = first.stop(sig)
    assert first.process.returncode == 0, output
    assert "Stopped. Stored 221 documents; nothing dropped." in output

    second = start_server(tmp_path, port=port)
    try:
        client = second.xray()
        for doc in http_docs + udp_docs[::40]:
            assert get_documents(client, doc["trace_id"]) == [doc]
        second.send_documents(parent)

        def merged() -> list[dict[str, Any]] | None:
            docs = get_documents(client, parent["trace_id"])
            return docs if docs and "subsegments" in docs[0] else None

        docs = wait_for(merged)
        assert len(docs) == 2
        assert docs[0]["subsegments"] == [streamed]
        assert (docs[1]["name"], docs[1]["origin"], docs[1]["inferred"]) == (
            "orders",
            "AWS::DynamoDB::Table",
            True,
        )
        summary = wait_for(
            lambda: (
                (
                    found := find_summary(
                        client, parent["trace_id"], time.time() - 60, time.time() + 1
                    )
                )
                and found.get("EntryPoint")
                and found
            )
        )
        # The state from before the restart was reloaded: one trace, both services, revision moved on.
        assert summary["EntryPoint"]["Name"] == "checkout"
        assert {s["Name"] for s in summary["ServiceIds"]} == {"checkout", "orders"}
        assert summary["Revision"] == 2
    finally:
        second.stop()


def test_udp_accepted_right_before_stop_is_stored(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    docs = [segment() for _ in range(500)]
    server.send_documents(*docs)
    wait_for(lambda: server.counter("udp_received") >= 500)
    server.stop(signal.SIGTERM)  # no waiting for a flush: stop must store what it holds
    again = start_server(tmp_path)
    try:
        client = again.xray()
        for doc in docs[::50]:
            assert get_documents(client, doc["trace_id"]) == [doc]
    finally:
        again.stop()


def test_two_servers_cannot_share_a_data_directory(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "fluoroscope", "server", "--listen", f"127.0.0.1:{free_port()}",
             "--data-dir", str(tmp_path)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2
        assert "is in use by another Fluoroscope server" in result.stderr
    finally:
        first.stop()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    first = start_server(tmp_path / "a")
    try:
        result = subprocess.run(
            [sys.executable, "-m", "fluoroscope", "server", "--listen", f"127.0.0.1:{first.port}",
             "--data-dir", str(tmp_path / "b")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert result.returncode == 2
        assert f"cannot listen on 127.0.0.1:{first.port}" in result.stderr
    finally:
        first.stop()


def test_environment_configures_the_server(tmp_path: Path) -> None:
    port = free_port()
    env = dict(
        os.environ, FLUOROSCOPE_LISTEN=f"127.0.0.1:{port}", FLUOROSCOPE_DATA_DIR=str(tmp_path)
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "server"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        first_line = proc.stdout.readline()
        assert f"udp://127.0.0.1:{port}" in first_line and f"http://127.0.0.1:{port}" in first_line
        assert str(tmp_path) in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0


def _children(pid: int) -> list[int]:
    """``pid``'s child processes, from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.extend(int(x) for x in (task / "children").read_text().split())
    return found


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for its new parent counts)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_kill_9_ends_every_helper_at_once_and_a_restart_works(tmp_path: Path) -> None:
    """However the server dies, its helpers (receiver, workers) end with it, quietly and
    at once, even with work in hand; the data directory and the port are free again."""
    port = free_port()
    first = start_server(tmp_path, "--ingest-workers", "2", port=port)
    pid = first.process.pid
    helpers = wait_for(lambda: found if len(found := _children(pid)) == 3 else None)
    docs = [segment() for _ in range(30)]
    reply = first.xray().put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
    assert reply["UnprocessedTraceSegments"] == []
    stop = threading.Event()
    sender = threading.Thread(target=udp_load, args=(port, stop))
    sender.start()
    try:
        wait_for(lambda: first.counter("udp_received") >= 2_000, timeout=30)
        killed = time.monotonic()
        first.process.kill()
        wait_for(lambda: all(_gone(p) for p in helpers), timeout=30, interval=0.01)
        took = time.monotonic() - killed
    finally:
        stop.set()
        sender.join()
    output = first.stop()  # everything the server and its helpers printed (one pipe)
    assert took < 1.0, f"helpers outlived the server by {took:.2f} s"
    assert "Traceback" not in output and "gone away" not in output, output

    second = start_server(tmp_path, port=port)  # same directory, same port, right away
    try:
        client = second.xray()
        for doc in docs:  # acknowledged before the kill: stored
            assert get_documents(client, doc["trace_id"]) == [doc]
        late = segment()
        second.send_documents(late)  # the port is this server's now
        assert wait_for(lambda: get_documents(client, late["trace_id"])) == [late]
    finally:
        second.stop()
