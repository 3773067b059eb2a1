"""Today's encoder makes the very tables the encoder made before its per-batch fixed
costs were cut (``encode_reference.py``, a frozen copy): for the same merged documents,
the same tables in the same order (contributions aside: their encoding changed on
purpose since), each with the same schema and every column equal -
floats compared by their bits, so a NaN (a quickest response time stored as "same as
the slowest") equals itself and -0.0 differs from 0.0. A column that changed in type,
order, value, rounding or row order fails here. Also after the tables cross the worker's
pipe (``encode_tables``/``decode_tables``: the sums are slices of arrays of both kinds of
cells, which the IPC stream must carry as the slices alone).

Documents: generated traces (``tests/tracegen.py``: nested subsegments, downstream
calls, in-progress entities, streamed subsegments) shuffled into batches, merged by a
real Assembler over a real store, with contributions tracked or not, outcomes recorded
as rows (the pipeline's way) or summed per cell; and a seeded corpus of the ingest
benchmark's traces (irregular durations: every histogram rounding) over five minutes,
in batches of 1 to 700 documents.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from benchmarks.ingest import make_trace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.ingest.worker import BATCH_HEAD, decode_tables, encode_tables
from fluoroscope.store.encode import CONTRIBUTIONS, encode_batch
from fluoroscope.store.store import Store
from tests.store import encode_reference
from tests.store.encode_reference import same_tables
from tests.tracegen import NOW, fleet


@pytest.fixture(scope="module")
def loader(chdb_dir: Path) -> Iterator[Store]:
    """The assemblers' store (nothing is written to it: each trace is new)."""
    store = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    yield store
    store.close()


def _over_the_pipe(tables: list[tuple[str, pa.Table]]) -> list[tuple[str, pa.Table]]:
    """``tables`` written to and read from a ``BATCH`` payload, as the server reads them
    (contributions are no table of the store: the group keeper takes them out first)."""
    payload = b"".join([BATCH_HEAD.pack(0, 0), *encode_tables(tables)])
    return decode_tables(payload)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=fleet(traces=12, batches=4),
    contributions=st.booleans(),
    outcome_rows=st.booleans(),
)
def test_the_tables_are_those_made_before(
    loader: Store, batches: list[list[dict[str, Any]]], contributions: bool, outcome_rows: bool
) -> None:
    assembler = Assembler(loader, clock=lambda: NOW + 600, outcome_rows=outcome_rows)
    assembler.track_contributions = contributions
    for docs in batches:
        batch = assembler.assemble(docs)
        made = [(n, t) for n, t in encode_batch(batch) if n != CONTRIBUTIONS]
        expected = encode_reference.encode_batch(batch)
        same_tables(made, expected)
        same_tables(_over_the_pipe(made), expected)


@pytest.mark.parametrize("seed", range(3))
def test_the_benchmark_traces_make_the_tables_made_before(loader: Store, seed: int) -> None:
    rng = random.Random(seed)
    docs = [doc for k in range(600) for doc in make_trace(rng, NOW + k * 0.5)]
    assembler = Assembler(loader, clock=lambda: NOW + 600, outcome_rows=True)
    assembler.track_contributions = seed == 1
    at = 0
    while at < len(docs):
        size = rng.choice((1, 7, 60, 250, 700))
        batch = assembler.assemble(docs[at : at + size])
        at += size
        made = [(n, t) for n, t in encode_batch(batch) if n != CONTRIBUTIONS]
        expected = encode_reference.encode_batch(batch)
        same_tables(made, expected)
        same_tables(_over_the_pipe(made), expected)
