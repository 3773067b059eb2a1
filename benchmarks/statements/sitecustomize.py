"""The server's engine CPU by statement kind, while a benchmark drives it (Linux).

chDB keeps no ``system.query_log``, so this splits it from outside the engine: put this
directory on ``PYTHONPATH`` and every ``fluoroscope server`` process started meanwhile
(benchmarks start theirs with the same environment) times each statement of its embedded
engine: the CPU of the calling thread, and of the engine's own threads while it runs
(statements run one at a time, so those are its own), merges (``MergeMutate``, in the
background) apart. By kind (``insert <table>``, ``read <table>``), with the calling
thread's name. Written as JSON to ``$FLUOROSCOPE_STATEMENTS_OUT`` (a path per server
process: ``{pid}`` is replaced) every 100 statements and at exit; reading ``/proc``
around each statement costs the server a little CPU of its own.

Usage::

    FLUOROSCOPE_STATEMENTS_OUT=/tmp/statements-{pid}.json \\
    PYTHONPATH=src:benchmarks/statements python benchmarks/ingest.py --rate 15000 \\
        --duration 10 --no-api-count --no-reference
    python benchmarks/statements/sitecustomize.py /tmp/statements-*.json --docs 150000

Never run by pytest.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

_TASKS = "/proc/self/task"
_ENGINE_MERGES = "MergeMutate"


def _kind(sql: str) -> str:
    words = " ".join(sql.split())
    insert = re.match(r"INSERT INTO (\S+)", words)
    if insert:
        return "insert " + insert.group(1).split(".")[-1].strip("`")
    read = re.search(r"\bFROM (\S+)", words)
    return "read " + read.group(1).split(".")[-1].strip("`") if read else words[:40]


def _engine_threads(python: set[int]) -> dict[int, tuple[str, int]]:
    """Each thread's (name, CPU ns) but the interpreter's."""
    found: dict[int, tuple[str, int]] = {}
    for task in os.listdir(_TASKS):
        tid = int(task)
        if tid in python:
            continue
        try:
            with open(f"{_TASKS}/{task}/schedstat") as stat, open(f"{_TASKS}/{task}/comm") as comm:
                found[tid] = (comm.read().strip(), int(stat.read().split()[0]))
        except OSError:  # ended meanwhile
            continue
    return found


class _Recorder:
    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        # (thread, kind) -> [statements, calling thread s, engine s, merges meanwhile s, wall s]
        self._figures: dict[tuple[str, str], list[float]] = {}
        self._count = 0

    def wrap(self, query: Callable[..., Any]) -> Callable[..., Any]:
        def timed(transport: Any, sql: str, fmt: str, params: Mapping[str, Any] | None) -> Any:
            python = {t.native_id for t in threading.enumerate() if t.native_id is not None}
            before = _engine_threads(python)
            cpu, wall = time.thread_time(), time.perf_counter()
            try:
                return query(transport, sql, fmt, params)
            finally:
                wall = time.perf_counter() - wall
                cpu = time.thread_time() - cpu
                after = _engine_threads(python)
                engine = merges = 0.0
                for tid, (name, ns) in after.items():
                    spent = (ns - before.get(tid, (name, 0))[1]) / 1e9
                    if name.startswith(_ENGINE_MERGES):
                        merges += spent
                    else:
                        engine += spent
                self._add(threading.current_thread().name, _kind(sql), cpu, engine, merges, wall)

        return timed

    def _add(self, thread: str, kind: str, *figures: float) -> None:
        with self._lock:
            row = self._figures.setdefault((re.sub(r"\d+$", "N", thread), kind), [0.0] * 5)
            row[0] += 1
            for i, value in enumerate(figures, start=1):
                row[i] += value
            self._count += 1
            if self._count % 100:
                return
        self.write()

    def write(self) -> None:
        with self._lock:
            rows = [[thread, kind, *row] for (thread, kind), row in self._figures.items()]
        with open(self._path + ".tmp", "w") as out:
            json.dump(rows, out)
        os.replace(self._path + ".tmp", self._path)


def _install() -> None:
    out = os.environ.get("FLUOROSCOPE_STATEMENTS_OUT")
    if not out or not os.path.isdir(_TASKS):
        return
    with open("/proc/self/cmdline", "rb") as cmdline:
        if b"fluoroscope\x00server" not in cmdline.read():
            return
    from fluoroscope.store import transport

    recorder = _Recorder(out.replace("{pid}", str(os.getpid())))
    transport.ChdbTransport._query = recorder.wrap(  # type: ignore[method-assign]
        transport.ChdbTransport._query
    )
    atexit.register(recorder.write)


def report(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description="Print what the servers' statements cost.")
    parser.add_argument("files", nargs="+")
    parser.add_argument("--docs", type=int, default=0, help="documents stored: µs per document")
    args = parser.parse_args(argv)
    totals: dict[tuple[str, str], list[float]] = {}
    for path in args.files:
        with open(path) as source:
            for thread, kind, *row in json.load(source):
                into = totals.setdefault((thread, kind), [0.0] * 5)
                for i, value in enumerate(row):
                    into[i] += value
    print(f"{'statements':>10} {'calling s':>10} {'engine s':>9} {'ms each':>8} "
          f"{'µs/doc':>7}  thread: kind")  # fmt: skip
    ordered = sorted(totals.items(), key=lambda item: -(item[1][1] + item[1][2]))
    for (thread, kind), (count, cpu, engine, _merges, _wall) in ordered:
        per_doc = f"{(cpu + engine) * 1e6 / args.docs:7.1f}" if args.docs else "      -"
        print(f"{count:>10.0f} {cpu:>10.2f} {engine:>9.2f} "
              f"{(cpu + engine) * 1e3 / max(count, 1):>8.2f} {per_doc}  {thread}: {kind}")  # fmt: skip


if __name__ == "__main__":
    report(sys.argv[1:])
else:
    try:
        _install()
    except Exception as exc:  # never stop the interpreter's start
        print(f"statement timing not installed: {exc}", file=sys.stderr)
