"""The server gives the memory it freed back to the OS: the embedded engine's allocator
(jemalloc) purges its freed pages, and the releaser does so on its own thread."""

from __future__ import annotations

import platform
import re
import time

import pytest

from fluoroscope.ingest.pipeline import malloc_trim
from fluoroscope.server.memory import MemoryReleaser
from fluoroscope.store.store import Store

MB = 1 << 20


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
