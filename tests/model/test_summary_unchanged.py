"""Today's :func:`~fluoroscope.model.tracesummary.summarize` writes the very rows the
summary wrote before it was made cheaper (``summary_reference.py``, a frozen copy): for
the same trace state, every column equal item for item (floats by their bits: ``repr``
tells -0.0 from 0.0 and a NaN equals itself), the same offsets, the same details - as
dicts, and as the JSON text a batch's details column packs (the ingest path's
``SummaryColumns(orjson.dumps, BinaryColumn())``). And an ingest batch's summaries,
whose details are made slim (only the parts the store keeps), hold the columns and the
texts the store's encoder makes of the whole details.

States: generated traces (``test_summary_order``: annotations of every type shared
across entities, failures, exceptions, users, resources, instances, zones, a second
root; ``tests/tracegen.py``: nested subsegments, downstream calls answered or not,
in-progress entities, streamed subsegments) and the ingest benchmark's traces, merged
document by document in a drawn order and summarized after each document (so partial
states - unknown parents, pending calls, a root still running - are compared too).
"""

from __future__ import annotations

import random
from typing import Any

import orjson
from benchmarks.ingest import make_trace
from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.model.summarycolumns import LIST_GROUPS, SummaryColumns
from fluoroscope.model.tracestate import TraceState
from fluoroscope.model.tracesummary import summarize
from fluoroscope.store.batch import BinaryColumn, WriteBatch
from fluoroscope.store.details import encode_details
from tests.model import summary_reference
from tests.model.test_summary_order import _entities, _trace
from tests.tracegen import NOW, fleet


def _columns(out: SummaryColumns) -> dict[str, str]:
    """Every column and offset list of ``out`` (details aside), as ``repr`` text."""
    found = {"scalars": repr(out.scalars)}
    for group, names in LIST_GROUPS:
        found[f"offsets:{group}"] = repr(out.offsets[group])
        for name in names:
            found[name] = repr(out.list_column(name))
    return found


def _same_rows(states: list[TraceState]) -> None:
    """Summarize each of ``states`` with today's code (details as dicts, and encoded into
    a packed column) and with the reference; all three must agree."""
    expected, plain = SummaryColumns(), SummaryColumns()
    packed_details = BinaryColumn()
    packed = SummaryColumns(orjson.dumps, packed_details)
    for state in states:
        summary_reference.summarize(state, expected)
        summarize(state, plain)
        summarize(state, packed)
    wanted = _columns(expected)
    assert _columns(plain) == wanted
    assert _columns(packed) == wanted
    texts = [orjson.dumps(details) for details in expected.details]  # type: ignore[attr-defined]
    assert [orjson.dumps(details) for details in plain.details] == texts  # type: ignore[attr-defined]
    assert [packed_details[i] for i in range(len(packed_details))] == texts


def _merged_step_by_step(docs: list[dict[str, Any]], order: list[int]) -> list[TraceState]:
    """One state per document merged (in ``order``): the trace as it stood after each.
    The states are summarized later, so each step merges into a fresh copy."""
    steps: list[TraceState] = []
    merged: list[tuple[dict[str, Any], str, bool]] = []
    trace_id = docs[0]["trace_id"]
    for at in order:
        merged += _entities(docs[at])
        state = TraceState(trace_id, 0, revision=len(steps) + 1)
        for entity, parent_id, is_segment in merged:
            state.apply(entity, parent_id, is_segment, None)
        steps.append(state)
    return steps


def _fleet_states(batches: list[list[dict[str, Any]]], data: st.DataObject) -> list[TraceState]:
    """Each trace of ``batches`` merged step by step, its documents in a drawn order."""
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for batch in batches:
        for doc in batch:
            by_trace.setdefault(doc["trace_id"], []).append(doc)
    states: list[TraceState] = []
    for docs in by_trace.values():
        states += _merged_step_by_step(docs, data.draw(st.permutations(range(len(docs)))))
    return states


def _benchmark_states(seed: int) -> list[TraceState]:
    """400 of the benchmark's traces, each merged step by step in a shuffled order."""
    rng = random.Random(seed)
    states: list[TraceState] = []
    for k in range(400):
        docs = make_trace(rng, NOW + k * 0.5)
        order = list(range(len(docs)))
        rng.shuffle(order)
        states += _merged_step_by_step(docs, order)
    return states


@settings(max_examples=300, deadline=None)
@given(docs=_trace(), data=st.data())
def test_summaries_of_generated_traces_are_those_made_before(
    docs: list[dict[str, Any]], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(range(len(docs))))
    _same_rows(_merged_step_by_step(docs, order))


@settings(max_examples=150, deadline=None)
@given(batches=fleet(traces=6, batches=3), data=st.data())
def test_summaries_of_fleet_traces_are_those_made_before(
    batches: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    _same_rows(_fleet_states(batches, data))


def test_summaries_of_the_benchmark_traces_are_those_made_before() -> None:
    _same_rows(_benchmark_states(7))


def _same_slim_rows(states: list[TraceState]) -> None:
    """Summarize each of ``states`` into an ingest batch's columns (details made slim:
    only what the store keeps) and into columns whose details are made whole, both
    encoded by the store's encoder: the same columns, the same texts."""
    whole_details = BinaryColumn()
    whole = SummaryColumns(encode_details, whole_details)
    slim = WriteBatch().summaries
    assert slim.slim and not whole.slim
    for state in states:
        summarize(state, whole)
        summarize(state, slim)
    assert _columns(slim) == _columns(whole)
    texts = [whole_details[i] for i in range(len(whole_details))]
    slim_details = slim.details
    assert isinstance(slim_details, BinaryColumn)
    assert [slim_details[i] for i in range(len(slim_details))] == texts


@settings(max_examples=200, deadline=None)
@given(docs=_trace(), data=st.data())
def test_slim_details_of_generated_traces_are_the_whole_ones_encoded(
    docs: list[dict[str, Any]], data: st.DataObject
) -> None:
    order = data.draw(st.permutations(range(len(docs))))
    _same_slim_rows(_merged_step_by_step(docs, order))


@settings(max_examples=100, deadline=None)
@given(batches=fleet(traces=6, batches=3), data=st.data())
def test_slim_details_of_fleet_traces_are_the_whole_ones_encoded(
    batches: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    _same_slim_rows(_fleet_states(batches, data))


def test_slim_details_of_the_benchmark_traces_are_the_whole_ones_encoded() -> None:
    _same_slim_rows(_benchmark_states(11))
