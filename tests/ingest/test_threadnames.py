"""Python threads carry their names to the kernel (``top -H``, ``/proc``) after ``install``.

The hook is process-wide, so it is installed in child processes here, never in the test
process; the server's and a worker's own threads are checked on a real server.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path

import pytest

from fluoroscope.ingest.threadnames import os_name
from tests.support import start_server, wait_for

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="thread names are set through Linux /proc"
)


def _kernel_names(pid: int) -> list[str]:
    names = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:  # the thread ended meanwhile
            continue
    return names


def _has_thread(pid: int, name: str) -> bool:
    return name in _kernel_names(pid)


def _child(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter; the lines it printed."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout.splitlines()


def test_a_name_loses_the_product_prefix_and_fits_the_kernel() -> None:
    assert os_name("fluoroscope-hub-0") == b"py-hub-0"
    assert os_name("asyncio_0") == b"py-asyncio_0"
    assert os_name("AnyIO worker thread") == b"py-AnyIO worker"
    assert len(os_name("fluoroscope-" + "x" * 40)) == 15
    assert os_name("x" + "é" * 6) == "py-xééééé".encode()  # never half a character


def test_threads_started_before_and_after_are_named_and_the_main_thread_is_not() -> None:
    lines = _child(
        """
        import threading
        from fluoroscope.ingest.threadnames import install

        def comm(thread):
            with open(f"/proc/self/task/{thread.native_id}/comm") as f:
                return f.read().strip()

        done = threading.Event()
        started = []
        def run():
            started.append(threading.current_thread())
            done.wait()
        early = threading.Thread(target=run, name="fluoroscope-early", daemon=True)
        early.start()
        print(install(), install())
        late = threading.Thread(target=run, name="late-one", daemon=True)
        late.start()
        while len(started) < 2:
            pass
        print(comm(early), comm(late), comm(threading.main_thread()) != "py-MainThread")
        """
    )
    assert lines == ["True True", "py-early py-late-one True"]


def test_a_profiler_already_hooked_is_left_alone() -> None:
    lines = _child(
        """
        import threading
        from fluoroscope.ingest.threadnames import install

        def profiler(frame, event, arg):
            pass
        threading.setprofile(profiler)
        print(install(), threading.getprofile() is profiler)
        """
    )
    assert lines == ["False True"]


def test_a_server_and_its_workers_name_their_python_threads(tmp_path: Path) -> None:
    server = start_server(tmp_path, "--ingest-workers", "2")
    try:
        # the hubs talk to the two workers; the engine's statements run in its ThreadPool
        wanted = {"py-hub-0", "py-hub-1", "py-to-worker-0", "ThreadPool"}
        wait_for(lambda: wanted <= set(_kernel_names(server.process.pid)), 60)
        workers = [
            int(pid)
            for task in Path(f"/proc/{server.process.pid}/task").iterdir()
            for pid in (task / "children").read_text().split()
            if b"fluoroscope.ingest.worker" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(workers) == 2
        for worker in workers:  # each names its threads once it has started them
            wait_for(partial(_has_thread, worker, "py-stdin"), 60)
    finally:
        server.stop()
