"""The server gives the memory it freed back to the OS: the embedded engine's allocator
(jemalloc) purges its freed pages, and the releaser does so on its own thread."""

from __future__ import annotations

import platform
import re
import time
from pathlib import Path

import pytest

from fluoroscope.ingest.heap import malloc_trim
from fluoroscope.server.memory import MemoryReleaser
from fluoroscope.store.store import Store
from tests.server.logs_helpers import logs_client
from tests.support import find_summary, get_documents, segment, start_server, wait_for

MB = 1 << 20
NUMPY = re.compile(r"/numpy(\.libs)?/|openblas")  # its modules, its libraries


def engine_memory(store: Store) -> tuple[int, int]:
    """The engine allocator's (active, resident) bytes, from ``system.jemalloc_stats``."""
    text = store.transport.query_arrow("SELECT * FROM system.jemalloc_stats").column(0)[0]
    found = re.search(r"active: (\d+),.*?resident: (\d+),", text.as_py())
    assert found is not None, "system.jemalloc_stats has no summary line"
    return int(found[1]), int(found[2])


def test_release_returns_the_pages_a_query_freed(store: Store) -> None:
    store.transport.query_arrow("SELECT uniqExact(number) FROM numbers(3000000)")  # ~100 MB
    active, resident = engine_memory(store)
    # The allocator keeps the hash table's pages for seconds after the query frees it
    # (measured: 199 MB resident, 21 MB active).
    assert resident - active > 32 * MB
    store.release_memory()
    active, resident = engine_memory(store)
    assert resident - active < 32 * MB


def test_the_releaser_releases_until_closed(store: Store) -> None:
    releaser = MemoryReleaser(store, interval=0.01)
    releaser.start()
    deadline = time.monotonic() + 30
    while releaser.releases < 3:  # three rounds of releasing, on the releaser's thread
        assert time.monotonic() < deadline, "the releaser did not run"
        time.sleep(0.01)
    releaser.close()
    releases = releaser.releases
    releaser.close()  # idempotent
    assert releaser.releases == releases  # nothing runs after close
    assert store.transport.query_arrow("SELECT 1 AS x").to_pylist() == [{"x": 1}]


def test_malloc_trim_runs_where_the_c_library_has_it() -> None:
    trim = malloc_trim()
    if trim is None:
        assert platform.libc_ver()[0] != "glibc", "glibc has malloc_trim"
        pytest.skip("this C library has no malloc_trim")
    trim()


def test_the_server_stores_and_answers_without_loading_numpy_or_pandas(tmp_path: Path) -> None:
    """pyarrow would import numpy as it loads (~11 MB, and OpenBLAS's threads); pandas
    at the server's first Arrow conversion of a list, and chDB at its first insert
    through Python() or result as "ArrowTable" (~38 MB of anonymous memory, ~30 MB of
    file pages); pyarrow.acero pyarrow.dataset at its first group-by (log streams'
    times). The server keeps them out and stores, reads and logs as before."""
    server = start_server(tmp_path / "data")
    try:
        client = server.xray()
        docs = [segment() for _ in range(20)]
        server.send_documents(*docs)
        wait_for(lambda: server.counter("stored_documents") == 20)
        assert get_documents(client, docs[0]["trace_id"]) == [docs[0]]
        now = time.time()
        assert find_summary(client, docs[0]["trace_id"], now - 600, now + 60) is not None
        wait_for(
            lambda: client.get_service_graph(StartTime=now - 600, EndTime=now + 60)["Services"]
        )
        logs = logs_client(server)
        logs.create_log_group(logGroupName="g")
        logs.create_log_stream(logGroupName="g", logStreamName="s")
        event = {"timestamp": int(now * 1000), "message": "hello"}
        logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[event])
        got = logs.get_log_events(logGroupName="g", logStreamName="s")["events"]
        assert [e["message"] for e in got] == ["hello"]
        maps = Path(f"/proc/{server.process.pid}/maps").read_text()
        assert "pyarrow" in maps  # the checks below look where they would see them
        assert "/pandas/" not in maps, "the server loaded pandas"
        assert not NUMPY.search(maps), "the server loaded numpy"
        assert "pyarrow/_dataset" not in maps, "the server loaded pyarrow.dataset"
    finally:
        server.stop()


def _arena_heaps(pid: int) -> int:
    """How many heaps of glibc's secondary malloc arenas process ``pid`` maps: anonymous
    read-write mappings at a 64 MiB boundary that, with the reserved rest after them,
    span 64 MiB (glibc's HEAP_MAX_SIZE on 64-bit)."""
    rows = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        rows.append((start, end, fields[1], len(fields) > 5))
    heaps = 0
    for i, (start, end, perms, named) in enumerate(rows):
        if named or perms != "rw-p" or start % (64 * MB):
            continue
        after = rows[i + 1] if i + 1 < len(rows) else None
        if after and after[0] == end and after[2] == "---p" and not after[3]:
            end = after[1]
        heaps += end - start == 64 * MB
    return heaps


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc arenas")
def test_the_ingest_workers_allocate_from_one_malloc_arena(tmp_path: Path) -> None:
    """Each ingest worker calls ``one_malloc_arena`` as it starts: its threads (pipeline,
    store, pipe) share glibc's main arena, where ``malloc_trim`` returns what they freed.
    With glibc's default, a worker that stored a few batches maps 4-5 arenas' heaps."""
    server = start_server(tmp_path / "data")
    try:
        docs = [segment() for _ in range(2000)]
        for at in range(0, len(docs), 200):
            server.send_documents(*docs[at : at + 200])
        wait_for(lambda: server.counter("stored_documents") == len(docs), timeout=60)
        tasks = Path(f"/proc/{server.process.pid}/task").iterdir()
        children = [int(pid) for task in tasks for pid in (task / "children").read_text().split()]
        workers = [
            pid
            for pid in children
            if b"fluoroscope.ingest.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert workers
        assert [_arena_heaps(pid) for pid in workers] == [0] * len(workers)
    finally:
        server.stop()
