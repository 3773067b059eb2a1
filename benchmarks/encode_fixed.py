"""Encoding a batch, by batch size: today's encoder against the one before its per-batch
fixed costs were cut, in the same run.

An ingest worker encodes each slice of a round (at most 1,000 documents: ``_SLICE`` in
``ingest/pipeline.py``) as it is merged, so what encoding a batch costs whatever its
rows is paid once per slice, and most where rates are low and slices small. Both
encoders get the very same merged batches (the ingest benchmark's traffic mix:
``benchmarks/ingest.py``, merged by a real Assembler over a real store, outcomes as
rows as the pipeline records them) and must make the same tables (checked first, floats
by their bits, as ``tests/store/test_encode_unchanged.py`` checks them). The reference
is the encoder as it was (``tests/store/encode_reference.py``, a frozen copy), timed
alternately with today's, each going first in every other round: thread CPU time per
batch (the median of ``--rounds``), per document, and the ratio today / before. The
machine's load average is printed beside the figures.

Usage: ``python benchmarks/encode_fixed.py [--batch 250,1000,10000] [--rounds 7]``.
Never run by pytest.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` and ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.store import encode_reference
from tests.store.encode_reference import same_tables

from benchmarks.ingest import make_trace
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.store.batch import WriteBatch
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.store import Store

Encoder = Callable[[WriteBatch], list[tuple[str, pa.Table]]]


def _batches(sizes: list[int], store: Store) -> dict[int, WriteBatch]:
    """A merged batch of each size: whole traces, each size's its own."""
    now = time.time()
    batches: dict[int, WriteBatch] = {}
    for k, size in enumerate(sizes):
        rng = random.Random(k)
        docs: list[dict[str, object]] = []
        while len(docs) < size:
            docs += make_trace(rng, now - 60 + len(docs) / 50_000)
        assembler = Assembler(store, clock=lambda: now, outcome_rows=True)
        batches[size] = assembler.assemble(docs[:size])
    return batches


def _cpu(encode: Encoder, batch: WriteBatch, times: int) -> float:
    """Thread CPU seconds per call of ``encode(batch)``, the collector off."""
    gc.disable()
    try:
        start = time.thread_time()
        for _ in range(times):
            encode(batch)
        return (time.thread_time() - start) / times
    finally:
        gc.enable()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="250,1000,10000", help="documents per batch")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.batch.split(",")]
    with tempfile.TemporaryDirectory(prefix="fluoroscope-encode-") as tmp:
        store = Store.open("chdb", Path(tmp), 30)
        try:
            batches = _batches(sizes, store)
        finally:
            store.close()
    encoders: dict[str, Encoder] = {"before": encode_reference.encode_batch, "today": encode_batch}
    print(f"{'documents':>9} {'before µs':>10} {'today µs':>10} {'µs/doc':>15} {'ratio':>6}")
    for size, batch in batches.items():
        same_tables(encode_batch(batch), encode_reference.encode_batch(batch))
        times = max(5, 20_000 // size)
        took: dict[str, list[float]] = {name: [] for name in encoders}
        for round_ in range(args.rounds):
            order = list(encoders) if round_ % 2 == 0 else list(encoders)[::-1]
            for name in order:
                took[name].append(_cpu(encoders[name], batch, times))
        before, today = (statistics.median(took[name]) * 1e6 for name in encoders)
        ratios = [b / a for a, b in zip(took["before"], took["today"], strict=True)]
        per_doc = f"{before / size:.2f} -> {today / size:.2f}"
        print(
            f"{size:>9} {before:>10.0f} {today:>10.0f} {per_doc:>15} "
            f"{statistics.median(ratios):>6.2f}"
        )
    load = os.getloadavg()
    print(f"load average: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")


if __name__ == "__main__":
    main()
