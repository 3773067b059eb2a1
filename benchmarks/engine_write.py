"""The engine's CPU per document for a live stream of insert rounds: inserts and merges.

``benchmarks/ingest_cpu.py`` times each insert; the engine's merges run afterwards, in
its background threads, and grow with the store: every row is rewritten about once per
level of a partition's parts. This benchmark measures both over a stream shaped as the
server writes it: fresh traces (``benchmarks/ingest.py``'s mix) merged and encoded by the
real :class:`~fluoroscope.ingest.assemble.Assembler` and
:func:`~fluoroscope.store.encode.encode_batch` beforehand, then inserted through
``Store.insert_tables`` in rounds of ``--batch`` documents paced at ``--rate``
documents/s, then ``--settle`` seconds for the merges under way. The CPU of every thread
of this process over that time is read from ``/proc`` and printed per document by
thread kind (``benchmarks/logs_api.py``'s ``thread_cpu``: ``merges`` chDB's merge threads,
``insert`` its insert pipelines, ``python`` the inserting thread, which converts the Arrow
tables and, since inserts read their rows as their own input, runs their parsing and
part writing, ``other`` the engine's other threads; ``total`` their sum), ``process`` the
CPU of the whole process over the same time from ``getrusage``, which also counts threads
that ended meanwhile (an engine pipeline thread that exits takes its CPU out of the
per-thread figures), with the active parts each table holds at the end.
``benchmarks/store_ceiling.py`` measures
the engine alone too, but inserts as fast as one thread can, in one store, and prints the
total: the ceiling; this one paces the rounds as traffic would and compares two schemas.

The reference, in the same run: the same stream into a store whose ``spans`` and
``traces`` merge with the engine's default ``merge_selector_base`` (5, before migration
26); or, with ``--reference-src DIR``, the same stream through another checkout's code
(``DIR`` is its ``src``, e.g. a detached worktree of main: ``git worktree add --detach
/tmp/main main``, then ``--reference-src /tmp/main/src``), so a change to how the store
writes is measured against the code before it: the same documents, merged and encoded
by each side's own code (an encoder's change is in the comparison). Runs alternate, reference first in every
other pair; medians are printed with the ratio of each pair, and the module each side
imported.

``--engine-config FILE`` starts the measured side's engine with that ClickHouse
configuration instead of the store's own (``engine.xml``, store/transport.py), e.g. a
``<compression>`` section with another threshold; its migrations then run as under the
store's own when it has such a section.

``--alter SQL`` (repeatable) applies a statement to the measured side's store before its
stream (``{db}``: its database), so a codec or a setting is compared without a schema
change, e.g. ``--alter "ALTER TABLE {db}.traces MODIFY COLUMN details CODEC(ZSTD(1))"``.
Besides the CPU, each run prints the engine's counters over the stream per document
(``events:``, from ``system.events``: the bytes its inserts wrote, the rows and bytes its
merges read), and, after the measured time, every table merged to one part (``OPTIMIZE
... FINAL``, not timed): its bytes on disk per span (``bytes:``) and, for ``spans`` and
``traces``, each column's (``raw:`` before compression). ``memory:peak RSS MB`` is the
process's largest resident memory up to the end of the settle time (``VmHWM``, before the
``OPTIMIZE``s; the rounds' memory-mapped files are in it, alike on both sides).

``--watch-merges`` polls ``system.merges`` every 20 ms through each run (the embedded
engine keeps no ``system.part_log``) and prints, per table and merge algorithm, how many
merges it saw and the largest ``memory_usage`` each reached (``merges:<table>
<algorithm>`` count, ``... MB median``, ``... MB max``): the engine's tracked memory of
a merge, sampled, so a merge shorter than a poll may be missed. The polls take the
engine's statement lock beside the inserts: the CPU figures of such runs are not the
ones to quote.

Usage: ``python benchmarks/engine_write.py [--docs 300000] [--batch 7500] [--rate 10000]
[--pairs 2] [--reference-src DIR] [--alter SQL]... [--watch-merges]``. Never run by pytest.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Final

import orjson
import pyarrow as pa

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import fluoroscope
from benchmarks.ingest import make_trace, proc_status_kb
from benchmarks.logs_api import thread_cpu
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.documents import validate_document
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport

_RETENTION = 30 * 86_400
_ENGINE_DEFAULT = ("ALTER TABLE {db}.spans MODIFY SETTING merge_selector_base = 5",
                   "ALTER TABLE {db}.traces MODIFY SETTING merge_selector_base = 5")  # fmt: skip

Round = tuple[int, list[tuple[str, pa.Table]]]


def make_rounds(data_dir: Path, docs: int, batch: int, rate: float) -> int:
    """Insert rounds of ``batch`` documents of fresh traces, epochs advancing with
    ``rate`` as live traffic's do, merged and encoded as the ingest worker does; saved
    under ``data_dir/rounds`` (``<round>.<table>.arrow``). Returns the documents."""
    now = time.time()
    rng = random.Random(1)
    made = number = 0
    out = data_dir / "rounds"
    out.mkdir()
    store = Store.open("chdb", data_dir / "prep", 30)  # asked for no trace: all are new
    try:
        assembler = Assembler(store, capacity=20_000, clock=lambda: now, outcome_rows=True)
        while made < docs:
            chunk: list[dict[str, object]] = []
            while len(chunk) < batch:
                chunk.extend(make_trace(rng, now + (made + len(chunk)) / rate))
            bodies = [orjson.dumps(d) for d in chunk]
            for doc, body in zip(chunk, bodies, strict=True):
                validate_document(doc, now=now + docs / rate, max_age=_RETENTION, raw=body)
            for name, table in encode_batch(assembler.assemble(chunk)):
                path = str(out / f"{number:05d}.{name}.arrow")
                with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                    writer.write_table(table)
            (out / f"{number:05d}.docs").write_text(str(len(chunk)))
            made += len(chunk)
            number += 1
    finally:
        store.close()
    return made


def load_rounds(data_dir: Path) -> list[Round]:
    rounds: list[Round] = []
    for count in sorted((data_dir / "rounds").glob("*.docs")):
        number = count.name.split(".")[0]
        tables = [
            (path.name.split(".")[1], pa.ipc.open_file(pa.memory_map(str(path))).read_all())
            for path in sorted((data_dir / "rounds").glob(f"{number}.*.arrow"))
        ]
        rounds.append((int(count.read_text()), tables))
    return rounds


def one_run(
    data_dir: Path,
    rate: float,
    settle: float,
    reference: bool,
    alter: list[str],
    engine_config: Path | None = None,
    watch_merges: bool = False,
) -> dict[str, float]:
    """Insert the saved rounds paced at ``rate`` into a new store (this process's only
    one: chDB opens one data path per process); CPU µs per document by thread kind,
    and ``parts:<table>`` the active parts at the end. ``reference``: the engine's default
    merge steps for spans and traces (the reference when no other checkout's code is).
    ``alter``: statements applied to the new store before the stream (``{db}`` its
    database). ``engine_config``: the engine's configuration file (else the store's own).
    After the measured time, every table is merged to one part per partition
    (``OPTIMIZE ... FINAL``, not timed) and ``bytes:<table>`` is its bytes on disk per
    span stored, ``bytes:<table>.<column>`` the same for the columns of spans and traces,
    ``raw:...`` their bytes before compression; ``memory:peak RSS MB`` the process's
    largest resident memory until then. ``watch_merges``: ``merges:...`` figures from
    polling ``system.merges`` (see the module docstring)."""
    rounds = load_rounds(data_dir)
    docs = sum(n for n, _ in rounds)
    where = data_dir / f"run-{os.getpid()}"
    if engine_config is not None:  # the engine starts with it; the store opens it as is
        ChdbTransport(where / "chdb", config_file=engine_config.resolve())
    store = Store.open("chdb", where, 30)
    try:
        for statement in (_ENGINE_DEFAULT if reference else ()) + tuple(alter):
            store.transport.execute(statement.format(db=store.database))
        gc.collect()
        watcher = _MergeWatcher(store) if watch_merges else None
        events_before = _events(store)
        before = thread_cpu(os.getpid())
        process_before = _process_cpu()
        start = time.monotonic()
        sent = 0
        for n, tables in rounds:
            wait = start + sent / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            store.insert_tables(tables)
            sent += n
        time.sleep(settle)  # the merges the stream started
        after = thread_cpu(os.getpid())
        process = _process_cpu() - process_before
        peak_rss = proc_status_kb(os.getpid(), "VmHWM") / 1024
        merges = watcher.stop() if watcher else {}
        events = {k: v - events_before.get(k, 0) for k, v in _events(store).items()}
        parts = store.transport.query_arrow(
            "SELECT table, count() AS n FROM system.parts WHERE database = {db:String} "
            "AND active AND table != 'schema_migrations' GROUP BY table",
            {"db": store.database},
        ).to_pylist()
        stored = _bytes_per_span(store)
    finally:
        store.close()
    out = {
        kind: (cpu - before.get(kind, (0.0, 0.0))[0]) * 1e6 / docs
        for kind, (cpu, _) in after.items()
    }
    out["total"] = sum(out.values())
    out["process"] = process * 1e6 / docs
    out.update({f"parts:{p['table']}": float(p["n"]) for p in parts})
    out.update({f"events:{k}": v / docs for k, v in events.items()})
    out["memory:peak RSS MB"] = peak_rss
    out.update(merges)
    out.update(stored)
    return out


class _MergeWatcher:
    """Polls ``system.merges`` of the store's database from a thread of its own until
    :meth:`stop`: the largest ``memory_usage`` each merge reached, and its algorithm."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._seen: dict[tuple[str, str], tuple[str, int]] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="py-merge-watch", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._done.wait(0.02):
            for row in self._store.transport.query_arrow(
                "SELECT table, result_part_name, merge_algorithm, memory_usage "
                "FROM system.merges WHERE database = {db:String}",
                {"db": self._store.database},
            ).to_pylist():
                key = (row["table"], row["result_part_name"])
                _, peak = self._seen.get(key, ("", 0))
                self._seen[key] = (row["merge_algorithm"], max(peak, row["memory_usage"]))

    def stop(self) -> dict[str, float]:
        """``merges:<table> <algorithm>`` (merges seen) and its ``MB median`` and ``MB max``
        of the largest tracked memory each merge reached."""
        self._done.set()
        self._thread.join()
        peaks: dict[str, list[float]] = {}
        for (table, _), (algorithm, peak) in self._seen.items():
            peaks.setdefault(f"merges:{table} {algorithm}", []).append(peak / 1e6)
        out: dict[str, float] = {}
        for key, values in peaks.items():
            out[key] = float(len(values))
            out[f"{key} MB median"] = statistics.median(values)
            out[f"{key} MB max"] = max(values)
        return out


_EVENTS: Final = (
    "Merge", "MergedRows", "MergedUncompressedBytes", "MergeTotalMilliseconds",
    "MergeHorizontalStageTotalMilliseconds", "MergeVerticalStageTotalMilliseconds",
    "MergeTreeDataWriterUncompressedBytes", "MergeTreeDataWriterCompressedBytes",
    "InsertedWideParts", "InsertedCompactParts", "MergedIntoWideParts",
    "MergedIntoCompactParts",
)  # fmt: skip
"""The engine's counters (``system.events``) printed per document (``events:``), as
their change over the stream: what its merges read and its inserts wrote."""


def _events(store: Store) -> dict[str, float]:
    rows = store.transport.query_arrow(
        "SELECT name, value FROM system.events WHERE name IN {names:Array(String)}",
        {"names": list(_EVENTS)},
    ).to_pylist()
    return {row["name"]: float(row["value"]) for row in rows}


def _bytes_per_span(store: Store) -> dict[str, float]:
    """Each table's bytes on disk per span once merged (``bytes:<table>``, ``bytes:all``),
    and per column of spans and traces (``bytes:<table>.<column>``, ``raw:`` uncompressed)."""
    db = store.database
    tables = store.transport.query_arrow(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE '%MergeTree'",
        {"db": db},
    ).column(0)
    for table in tables.to_pylist():
        store.transport.execute(f"OPTIMIZE TABLE `{db}`.`{table}` FINAL")
    spans = store.transport.query_arrow(f"SELECT count() FROM `{db}`.spans FINAL").column(0)[0]
    n = max(1, int(spans.as_py()))
    out: dict[str, float] = {}
    for row in store.transport.query_arrow(
        "SELECT table, sum(bytes_on_disk) AS b FROM system.parts WHERE database = {db:String} "
        "AND active AND table != 'schema_migrations' GROUP BY table",
        {"db": db},
    ).to_pylist():
        out[f"bytes:{row['table']}"] = row["b"] / n
    out["bytes:all"] = sum(out.values())
    for row in store.transport.query_arrow(
        "SELECT table, column, sum(column_data_compressed_bytes) AS c, "
        "sum(column_data_uncompressed_bytes) AS u FROM system.parts_columns "
        "WHERE database = {db:String} AND active AND table IN ('spans', 'traces') "
        "GROUP BY table, column",
        {"db": db},
    ).to_pylist():
        out[f"bytes:{row['table']}.{row['column']}"] = row["c"] / n
        out[f"raw:{row['table']}.{row['column']}"] = row["u"] / n
    return out


def _process_cpu() -> float:
    """CPU seconds of every thread this process ran, the ended ones too (which the
    per-thread figures miss: an engine thread that ends takes its CPU with it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--docs", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=7_500, help="documents per insert round")
    parser.add_argument("--rate", type=float, default=10_000.0, help="documents per second")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after the last round")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument(
        "--reference-src",
        type=Path,
        help="the reference runs this checkout's src (e.g. a worktree of main) instead of "
        "the engine's default merge steps",
    )
    parser.add_argument(
        "--alter",
        action="append",
        default=[],
        help="a statement applied to the measured side's store before its stream ({db} its "
        "database; repeatable): a codec or setting tried without changing the schema",
    )
    parser.add_argument(
        "--engine-config",
        type=Path,
        help="the measured side's engine starts with this ClickHouse configuration file "
        "instead of the store's own (e.g. another <compression> section)",
    )
    parser.add_argument(
        "--watch-merges",
        action="store_true",
        help="poll system.merges in every run: each table's merges by algorithm and their "
        "largest tracked memory (the polls cost CPU: not for the CPU figures)",
    )
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)  # a run's own process
    parser.add_argument("--make", type=Path, help=argparse.SUPPRESS)  # the reference's rounds
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.make:
        make_rounds(args.make, args.docs, args.batch, args.rate)
        return
    if args.run:
        figures: dict[str, object] = {
            **one_run(
                args.run,
                args.rate,
                args.settle,
                args.reference,
                args.alter,
                args.engine_config,
                args.watch_merges,
            )
        }
        figures["module"] = str(Path(fluoroscope.__file__).parent)
        sys.stdout.write(orjson.dumps(figures).decode())
        return
    # chDB may still be finishing a merge's files as a run's process ends
    with tempfile.TemporaryDirectory(
        prefix="fluoroscope-engine-", ignore_cleanup_errors=True
    ) as tmp:
        docs = make_rounds(Path(tmp), args.docs, args.batch, args.rate)
        reference_dir = Path(tmp)
        if args.reference_src:  # its rounds merged and encoded by its own code
            reference_dir = Path(tmp) / "reference"
            reference_dir.mkdir()
            subprocess.run(
                [sys.executable, __file__, "--make", str(reference_dir), "--docs",
                 str(args.docs), "--batch", str(args.batch), "--rate", str(args.rate)],
                check=True, timeout=3600, env=_with_path(args.reference_src),
            )  # fmt: skip
        print(f"{docs:,} documents in rounds of {args.batch:,}, paced at {args.rate:,.0f}/s, "
              f"{args.settle:.0f} s to settle; {args.pairs} pairs")  # fmt: skip
        runs: dict[bool, list[dict[str, float]]] = {True: [], False: []}
        modules: dict[bool, set[str]] = {True: set(), False: set()}
        for pair in range(args.pairs):
            for reference in (True, False) if pair % 2 == 0 else (False, True):
                run_dir = str(reference_dir) if reference else tmp
                command = [sys.executable, __file__, "--run", run_dir, "--rate", str(args.rate),
                           "--settle", str(args.settle)]  # fmt: skip
                if args.watch_merges:
                    command.append("--watch-merges")
                env = dict(os.environ)
                if reference and args.reference_src:
                    env = _with_path(args.reference_src)
                elif reference:
                    command.append("--reference")
                if not reference:
                    command.extend(f"--alter={statement}" for statement in args.alter)
                    if args.engine_config:
                        command.append(f"--engine-config={args.engine_config.resolve()}")
                done = subprocess.run(
                    command, capture_output=True, check=True, timeout=3600, env=env
                )
                got = orjson.loads(done.stdout)
                modules[reference].add(str(got.pop("module")))
                runs[reference].append({k: float(v) for k, v in got.items()})
    for reference, label in ((True, "reference"), (False, "schema")):
        print(f"{label} imported {', '.join(sorted(modules[reference]))}")
    _report(runs, args.reference_src)


def _with_path(src: Path) -> dict[str, str]:
    """This process's environment, importing ``src``'s code first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src.resolve()), env.get("PYTHONPATH", "")])
    return env


def _report(runs: dict[bool, list[dict[str, float]]], reference_src: Path | None) -> None:
    load = os.getloadavg()
    print(f"load average after the runs: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    for reference, label in ((True, "reference"), (False, "schema")):
        for kind in ("process", "merges"):
            each = ", ".join(f"{r.get(kind, 0.0):.1f}" for r in runs[reference])
            print(f"{kind} CPU µs/document, {label} runs in order: {each}")
    keys = sorted({k for r in runs[True] + runs[False] for k in r}, key=_order)
    print("(events: the engine's counters per document over the stream; "
          "parts: active parts at the end; bytes: on disk per span once merged; raw: the "
          "same before compression; memory: the process's peak RSS; merges: system.merges "
          "polled)")  # fmt: skip
    print(f"{'CPU µs/document':<36} {'reference':>10} {'schema':>10} {'ratio (median)':>15}")
    for key in keys:
        ref = [r.get(key, 0.0) for r in runs[True]]
        now = [r.get(key, 0.0) for r in runs[False]]
        if max(ref + now) < 0.05:
            continue
        ratios = [b / a for a, b in zip(ref, now, strict=True) if a]
        ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
        print(f"{key:<36} {statistics.median(ref):>10.1f} {statistics.median(now):>10.1f} "
              f"{ratio:>15}")  # fmt: skip
    if reference_src:
        print(f"(reference: the code in {reference_src}; schema: this checkout's code)")
    else:
        print("(reference: spans and traces merged with the engine's default "
              "merge_selector_base of 5; schema: as migrated)")  # fmt: skip


def _order(key: str) -> tuple[int, str]:
    kinds = ("memory:", "merges:", "events:", "parts:", "bytes:", "raw:")
    rank = next((3 + i for i, kind in enumerate(kinds) if key.startswith(kind)), None)
    return (rank or (1 if key in ("total", "process") else 0), key)


if __name__ == "__main__":
    main()
