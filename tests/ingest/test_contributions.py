"""The graph contributions ingest ships per changed trace add up to its statistics.

A group's statistics are kept by retracting a trace's contributions before a batch and
adding those after it (``TraceState.contributions``); over the traces a batch changed,
that must be exactly what the batch's per-minute statistics counted incrementally, including inferred
nodes retracted when the real callee arrives later, in-progress entities and streamed
subsegments in any order. Runs the real Assembler on generated traces.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.ingest.worker import BATCH_HEAD, decode_tables, encode_tables
from fluoroscope.model.inference import NodeId
from fluoroscope.model.stats import Contribution, Outcome, StatsBatch
from fluoroscope.store.batch import ContributionColumns, WriteBatch, read_contributions
from fluoroscope.store.encode import CONTRIBUTIONS, encode_batch
from fluoroscope.store.store import Store
from tests.tracegen import fleet


def _cells(stats: StatsBatch) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Each cell's counts, leaving out cells that sum to nothing (a retraction met its
    count) and the time bounds (a retraction does not move them)."""
    out: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for kind, cells in (("node", stats.nodes), ("edge", stats.edges)):
        for key, cell in cells.items():
            histogram = tuple(sorted((k, v) for k, v in cell.histogram.items() if v))
            counts = (
                cell.total, cell.ok, cell.errors, cell.throttles, cell.faults,
                round(cell.response_time, 9),
            )  # fmt: skip
            if any(counts) or histogram:
                out[(kind, *key)] = (*counts, histogram)
    return out


class _NoReloads:
    """Every trace is new and stays cached here: nothing is ever reloaded."""

    def load_traces(self, trace_ids: Any) -> dict[str, Any]:
        raise AssertionError(f"unexpected reload of {list(trace_ids)}")


@settings(max_examples=60)
@given(batches=fleet())
def test_contributions_before_and_after_each_batch_sum_to_the_statistics(
    batches: list[list[dict[str, Any]]],
) -> None:
    assembler = Assembler(_NoReloads())
    assembler.track_contributions = True
    for docs in batches:
        batch = assembler.assemble(docs)
        assert isinstance(batch.stats, StatsBatch)
        # through the Arrow table the worker sends, read as the server reads it
        table = dict(encode_batch(batch)).get(CONTRIBUTIONS)
        changed = read_contributions(table) if table is not None else {}
        assert set(changed) <= {d["trace_id"] for d in docs}
        rebuilt = StatsBatch()
        for before, after in changed.values():
            rebuilt.add(before, weight=-1)
            rebuilt.add(after)
        assert _cells(rebuilt) == _cells(batch.stats)


def test_nothing_is_gathered_unless_asked(store: Store) -> None:
    docs = [
        {"id": "1" * 16, "trace_id": "1-5f000000-" + "a" * 24, "name": "api",
         "start_time": 1.6e9, "end_time": 1.6e9 + 1},
    ]  # fmt: skip
    batch = Assembler(store).assemble(docs)
    assert batch.contributions is None
    assert CONTRIBUTIONS not in dict(encode_batch(batch))


_NODES = st.builds(
    NodeId,
    st.sampled_from(["api", "billing", "", "é"]),
    st.sampled_from(["", "client", "AWS::EC2::Instance"]),
)
_ITEMS = st.lists(
    st.tuples(
        _NODES,
        st.none() | _NODES,
        st.builds(Outcome, st.floats(0, 2e9), st.floats(0, 2e9), st.integers(0, 7)),
        st.booleans(),
        st.booleans(),
    ),
    max_size=6,
)


@given(traces=st.lists(st.tuples(_ITEMS, _ITEMS), max_size=5))
def test_contributions_come_back_from_the_pipe_as_recorded(
    traces: list[tuple[list[Contribution], list[Contribution]]],
) -> None:
    made = ContributionColumns()
    for k, (before, after) in enumerate(traces):
        made.add(f"t{k}", before, after)
    batch = WriteBatch(contributions=made)
    tables = decode_tables(BATCH_HEAD.pack(0, 0) + b"".join(encode_tables(encode_batch(batch))))
    table = dict(tables).get(CONTRIBUTIONS)
    read = read_contributions(table) if table is not None else {}
    assert read == {f"t{k}": pair for k, pair in enumerate(traces) if pair != ([], [])}
