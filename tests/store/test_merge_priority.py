"""The embedded engine's merge threads merge at :data:`MERGE_NICE`, below the threads that
insert and read (``os_threads_nice_value_merge_mutate`` in ``engine.xml``).

An engine started on its defaults merged at whatever nice value its merge thread was
created with: -20 measured, which starved the ingest workers behind a large merge. Each
check runs the engine in a process of its own (the first transport of a process starts
the engine, and its configuration holds for the process)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from fluoroscope.store.transport import ENGINE_CONFIG, MERGE_NICE
from tests.support import run_python

_SCRIPT = textwrap.dedent(
    """
    import json, os, sys, threading
    from pathlib import Path

    from fluoroscope.store.transport import ChdbTransport

    t = ChdbTransport(Path(sys.argv[1]))
    setting = t.query_arrow(
        "SELECT value FROM system.server_settings "
        "WHERE name = 'os_threads_nice_value_merge_mutate'").column(0)[0].as_py()
    t.execute("CREATE DATABASE IF NOT EXISTS m")
    t.execute("CREATE TABLE m.t (k UInt64, v String) ENGINE = MergeTree ORDER BY k")

    merging = {}  # nice value of a merge thread seen running -> times seen
    done = threading.Event()

    def watch():
        while not done.is_set():
            for tid in os.listdir("/proc/self/task"):
                try:
                    with open(f"/proc/self/task/{tid}/stat") as f:
                        stat = f.read()
                except OSError:
                    continue
                name = stat[stat.index("(") + 1 : stat.rindex(")")]
                fields = stat[stat.rindex(")") + 2 :].split()
                if name.startswith("MergeMutate") and fields[0] == "R":
                    merging[int(fields[16])] = merging.get(int(fields[16]), 0) + 1
            done.wait(0.001)

    watcher = threading.Thread(target=watch)
    watcher.start()
    inserts = 0
    while sum(merging.values()) < 20 and inserts < 3000:  # until merges were seen running
        t.execute(
            f"INSERT INTO m.t SELECT number, repeat('x', 200) FROM numbers({inserts}, 30000)"
        )
        inserts += 1
    done.set()
    watcher.join()
    print(json.dumps({"setting": setting, "merging": merging, "own": os.nice(0)}))
    """
)


def _merges(here: Path) -> dict[str, object]:
    result: dict[str, object] = run_python(_SCRIPT, str(here), timeout=600)
    return result


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads Linux's /proc")
def test_merge_threads_run_at_the_configured_nice_value(tmp_path: Path) -> None:
    found = _merges(tmp_path / "chdb")
    own = found["own"]
    assert isinstance(own, int)
    # Lowering a thread's nice value below the process's takes a privilege (root here);
    # without it the engine's attempt is a no-op and merges keep the process's value.
    expected = MERGE_NICE if os.geteuid() == 0 or own <= MERGE_NICE else own
    seen = found["merging"]  # nice value (as JSON keys are) -> samples of a running merge
    assert isinstance(seen, dict)
    merging = {int(nice): times for nice, times in seen.items()}
    assert sum(merging.values()) >= 20, merging
    # Most samples of a running merge thread: one may be caught running just before its
    # merge sets the value (at the value it was created with: the process's own, or -20)
    # or just after (the engine resets it to 0).
    assert merging.get(expected, 0) > 0.5 * sum(merging.values()), merging
    assert found["setting"] == str(MERGE_NICE)
    assert (tmp_path / "chdb" / "engine.xml").read_text() == ENGINE_CONFIG
