"""Python memory of an ingest worker: per cached trace, and per document of a batch.

Target (DESIGN.md §7): all processes <= 600 MB resident at a steady 10,000 segments/s.
Two shares of a worker's memory grow with ingest and are measured here, in one process,
with ``tracemalloc`` (Python's own allocations; Arrow buffers are not among them):

* the trace cache: bytes per :class:`~fluoroscope.model.tracestate.TraceState` kept by
  an :class:`~fluoroscope.ingest.assemble.Assembler`, the strings it keeps from the
  documents included (traced from before parsing, documents and rows freed after);
  times the worker's share of ``--cached-traces`` (20,000 / 2 workers by default);
* a batch in flight: the peak while a batch of N documents is parsed, validated,
  merged and encoded as the worker does it (``orjson.loads``, ``validate_document``,
  ``assemble``, ``encode_batch``), per document, against the cache's state already
  full (so the new traces replace evicted ones).

The reference, measured in the same run: the documents' JSON text (bytes per
document), which the worker's buffers hold before parsing. Documents are the ingest
benchmark's traffic mix (``benchmarks/ingest.py``: traces of 1-3 documents).

Usage: ``python benchmarks/worker_memory.py [--traces 10000] [--batch 1000,10000]``.
Never run by pytest.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path

import orjson

if __package__ in (None, ""):  # run as a script: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ingest import make_trace
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.documents import validate_document
from fluoroscope.store.batch import StoredTrace
from fluoroscope.store.encode import encode_batch

MB = 1 << 20


class _NothingStored:
    """The assembler's loader when nothing was stored before: every trace is new."""

    def load_traces(self, trace_ids: Iterable[str]) -> dict[str, StoredTrace]:
        return {}


def bodies_of(traces: int, seed: int) -> list[bytes]:
    """The JSON text of the documents of ``traces`` benchmark traces, in sending order."""
    rng = random.Random(seed)
    now = time.time()
    return [orjson.dumps(doc) for _ in range(traces) for doc in make_trace(rng, now)]


def cache_bytes(bodies: list[bytes], chunk: int = 1000) -> tuple[int, int]:
    """(traced bytes left once ``bodies`` are merged into a fresh assembler and every
    document and row is freed, traces cached)."""
    assembler = Assembler(_NothingStored(), capacity=10**9, outcome_rows=True)
    encode_batch(assembler.assemble([orjson.loads(bodies[0])]))  # imports, first-call caches
    assembler = Assembler(_NothingStored(), capacity=10**9, outcome_rows=True)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for start in range(0, len(bodies), chunk):
        docs = [orjson.loads(body) for body in bodies[start : start + chunk]]
        batch = assembler.assemble(docs)
        del docs, batch
    gc.collect()
    left = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return left, assembler.cached_traces


def batch_peak(warm: list[bytes], batch: list[bytes], capacity: int) -> int:
    """Peak traced bytes above the settled state while ``batch`` is parsed, validated,
    merged and encoded by an assembler whose cache ``warm`` filled to ``capacity``."""
    assembler = Assembler(_NothingStored(), capacity=capacity, outcome_rows=True)
    for start in range(0, len(warm), 1000):
        encode_batch(assembler.assemble([orjson.loads(b) for b in warm[start : start + 1000]]))
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    docs = [orjson.loads(body) for body in batch]
    now = time.time()
    for doc, body in zip(docs, batch, strict=True):
        validate_document(doc, now=now, max_age=30 * 86_400, raw=body)
    tables = encode_batch(assembler.assemble(docs))
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del docs, tables
    return peak


def main(argv: list[str] | None = None) -> int:
    """Measure and print (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--traces", type=int, default=10_000,
                        help="traces cached (a worker's default share)")  # fmt: skip
    parser.add_argument("--batch", default="1000,10000",
                        help="documents per batch, comma-separated")  # fmt: skip
    args = parser.parse_args(argv)
    bodies = bodies_of(args.traces, seed=1)
    raw = sum(map(len, bodies)) / len(bodies)
    left, cached = cache_bytes(bodies)
    per_trace = left / cached
    print(f"documents: {len(bodies):,} of {cached:,} traces; reference: {raw:,.0f} bytes of "
          f"JSON per document ({raw * len(bodies) / cached:,.0f} per trace)")  # fmt: skip
    print(f"trace cache: {per_trace:,.0f} bytes per cached trace "
          f"({per_trace / (raw * len(bodies) / cached):.2f}x its documents' JSON); "
          f"{args.traces:,} traces: {per_trace * args.traces / MB:,.1f} MB")  # fmt: skip
    for size in (int(x) for x in args.batch.split(",")):
        more = bodies_of(size, seed=2)[:size]
        peak = batch_peak(bodies, more, capacity=cached)
        print(f"batch of {len(more):,} documents in flight: peak {peak / MB:,.1f} MB, "
              f"{peak / len(more):,.0f} bytes per document ({peak / len(more) / raw:.1f}x its JSON)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
