"""A batch merged a part at a time writes exactly what one ``assemble`` of it writes.

The ingest pipeline merges datagrams ``_PART`` at a time into one batch per slice
(``Assembler.merge``, then ``finish``), so that each part's parsed documents are freed
while still in the CPU's caches; what it writes must not depend on the parts. Two
assemblers take the same stream - in-progress copies, streamed subsegments, re-sends,
traces that span batches and parts, contributions tracked - one batch by ``assemble``,
the other by ``merge`` over drawn parts and one ``finish``; every Arrow table of every
batch must be byte-identical.
"""

from __future__ import annotations

import random
from typing import Any

import pyarrow as pa
from benchmarks.ingest import make_trace
from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.store.batch import StoredTrace
from fluoroscope.store.encode import encode_batch
from tests.ingest.nativediff import _variants


class _Nothing:
    """The store of a fresh stream: every trace is new (the assemblers' horizons say
    so, and nothing is evicted), so nothing is ever reloaded."""

    def load_traces(self, trace_ids: Any) -> dict[str, StoredTrace]:
        raise AssertionError(f"nothing to reload, asked for {sorted(trace_ids)[:3]}")


def _ipc(tables: list[tuple[str, pa.Table]]) -> list[tuple[str, bytes]]:
    out = []
    for name, table in tables:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        out.append((name, sink.getvalue().to_pybytes()))
    return out


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    batch=st.integers(1, 120),
    cuts=st.lists(st.integers(1, 60), min_size=1, max_size=8),
)
def test_merging_in_parts_writes_what_one_assemble_writes(
    seed: int, batch: int, cuts: list[int]
) -> None:
    rng = random.Random(seed)
    now = 1_800_000_000.0
    docs: list[dict[str, Any]] = []
    for i in range(60):
        docs.extend(_variants(rng, make_trace(rng, now - 30 + i * 0.05)))
    rng.shuffle(docs)  # a trace's documents across batches and parts, in any order

    def assembler() -> Assembler:
        made = Assembler(_Nothing(), clock=lambda: now, stored_until=int(now) - 3_600,
                         outcome_rows=True)  # fmt: skip
        made.track_contributions = True
        return made

    whole, parted = assembler(), assembler()
    for start in range(0, len(docs), batch):
        chunk = docs[start : start + batch]
        expected = _ipc(encode_batch(whole.assemble(chunk)))
        at, k = 0, 0
        while at < len(chunk):
            size = cuts[k % len(cuts)]
            parted.merge(chunk[at : at + size])
            at, k = at + size, k + 1
        assert _ipc(encode_batch(parted.finish())) == expected
