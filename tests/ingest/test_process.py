"""The server's processes: the ingest worker and its UDP receiver, under real signals."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

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


def _helpers(server_pid: int) -> list[int] | None:
    """The server's two helper processes once both run (for :func:`wait_for`)."""
    found = _descendants(server_pid)
    return found if len(found) == 2 else None


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_ctrl_c_to_the_process_group_stores_everything(tmp_path: Path) -> None:
    """A terminal's Ctrl-C signals the server and its helper processes together."""
    server = start_server(tmp_path / "data")
    helpers = wait_for(lambda: _helpers(server.process.pid))
    assert any("fluoroscope.ingest.worker" in _cmdline(p) for p in helpers)
    assert any("fluoroscope.ingest.receiver" in _cmdline(p) for p in helpers)
    server.send_documents(*(segment() for _ in range(200)))
    wait_for(lambda: server.counter("udp_received") == 200)
    for pid in helpers:  # as a terminal would (the test runner shares their group)
        os.kill(pid, signal.SIGINT)
    time.sleep(0.3)
    assert not any(_gone(p) for p in helpers), "helpers must leave stopping to the server"
    output = server.stop(signal.SIGINT)
    assert "Stored 200 documents; nothing dropped." in output
    # The worker ends on its own, exit code 0: no abort, no restart on the way out.
    assert "Fatal Python error" not in output and "restarting it" not in output, output
    assert all(_gone(p) for p in helpers)


def test_helpers_exit_when_the_server_dies(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    helpers = wait_for(lambda: _helpers(server.process.pid))
    server.process.kill()
    server.stop()  # collects what it printed
    wait_for(lambda: all(_gone(p) for p in helpers), timeout=10)


def test_a_killed_worker_is_replaced_and_ingest_goes_on(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        client = server.xray()
        first = segment()
        server.send_documents(first)
        wait_for(lambda: get_documents(client, first["trace_id"]))
        (worker,) = _children(server.process.pid)
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


def test_read_ahead_hands_out_waiting_batches_in_order_and_stays_bounded() -> None:
    from fluoroscope.ingest.frames import write_frame
    from fluoroscope.ingest.process import _ReadAhead
    from fluoroscope.ingest.worker import ACK, BATCH

    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "rb") as reader, os.fdopen(write_fd, "wb") as writer:
        ahead = _ReadAhead(reader, max_bytes=10_000)
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
