"""``store.outcomes`` sums outcome rows into the very cells ``StatsBatch`` adds up one
outcome at a time: the same keys, counts, sums to the bit, first and last times and
histograms (zero counts left out), whatever the outcomes, retractions and minutes.

The store-level comparison (both ways written and read back through a real engine) is
``tests/ingest/test_outcome_sums.py``; this one compares the columns themselves, many
more cases a second, and reaches the branch that numbers keys afresh.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.model.inference import NodeId
from fluoroscope.model.stats import Outcome, OutcomeRows, StatsBatch
from fluoroscope.store.outcomes import edge_cells, kernel_cells, node_cells, summed_cells

NOW = 1_764_000_000.0  # a whole minute
_NODE_KEYS = ("minute", "name", "type", "is_root", "inferred")
_EDGE_KEYS = ("minute", "src_name", "src_type", "dst_name", "dst_type")
_SUMS = ("total", "ok", "errors", "throttles", "faults", "response_time", "first_start",
         "last_end", "histogram")  # fmt: skip

# starts at a minute's edges (where start / 60 rounds up to the next minute), durations
# at the histogram's (two significant digits of the microseconds, its bounds, halves)
_STARTS = st.sampled_from([0.0, 1e-7, -1e-7, -1e-9, 59.99999999, 60.0, -60.0, 120.0]) | st.floats(
    -600, 600
)
_ELAPSED = st.sampled_from(
    [0.0, 1e-6, 99e-6, 99.4e-6, 99.5e-6, 100e-6, 0.00995, 0.009949999, 0.0125, 0.0135,
     1.2345, 9.95, 99.5, 3959.9999995, 3999.9999, 4000.0, 4000.0005, 5000.0, 1e7]
) | st.floats(0, 5000)  # fmt: skip
_OUTCOME = st.tuples(
    st.booleans(),  # an edge, else a node
    st.integers(0, 5),  # the node (or caller)
    st.integers(0, 5),  # the callee
    _STARTS,
    _ELAPSED,
    st.integers(0, 7),  # ERROR/FAULT/THROTTLE bits
    st.booleans(),  # root
    st.booleans(),  # inferred
    st.sampled_from([1, 1, -1]),  # weight
    st.booleans(),  # retracted again at once (cells and buckets summing to zero)
)


def _record(outcomes: list[tuple[Any, ...]], nodes: int = 6) -> tuple[OutcomeRows, StatsBatch]:
    rows, batch = OutcomeRows(), StatsBatch()
    names = [NodeId(f"svc{i}", "AWS::Lambda" if i % 2 else "client") for i in range(nodes)]
    for edge, src, dst, start, elapsed, bits, root, inferred, weight, undo in outcomes:
        outcome = Outcome(NOW + start, NOW + start + elapsed, bits)
        for w in (weight, -weight) if undo else (weight,):
            for sink in (rows, batch):
                if edge:
                    sink.edge(names[src], names[dst], outcome, weight=w)
                else:
                    sink.node(names[src], outcome, root=root, inferred=inferred, weight=w)
    return rows, batch


def _cells(columns: dict[str, Any] | None, keys: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """``node_cells``/``edge_cells``' columns as rows, in order."""
    if columns is None:
        return []
    lists = {name: columns[name].to_pylist() for name in (*keys, *_SUMS)}
    return [tuple(lists[name][i] for name in (*keys, *_SUMS)) for i in range(len(lists["total"]))]


def _expected(columns: dict[str, list[Any]], keys: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """``StatsBatch``'s columns as rows, histograms by bucket."""
    rows = [
        tuple(columns[name][i] for name in (*keys, *_SUMS)) for i in range(len(columns["total"]))
    ]
    return [(*row[:-1], sorted(row[-1])) for row in rows]


def _same(rows: OutcomeRows, batch: StatsBatch) -> None:
    """Both ways of summing (Arrow's kernels, and the compiled sums ``graph_cells``
    takes where ``model.stats`` runs compiled) make ``batch``'s cells, in the same
    order (kind, minute, key) and to the bit."""
    kernels, summed = kernel_cells(rows), summed_cells(rows)
    for kind, made, cells, keys in (
        (0, node_cells(rows), batch.node_columns(), _NODE_KEYS),
        (1, edge_cells(rows), batch.edge_columns(), _EDGE_KEYS),
    ):
        got = _cells(made, keys)
        assert sorted(got, key=repr) == sorted(_expected(cells, keys), key=repr)
        for row in got:  # each histogram in ascending buckets
            assert [k for k, _ in row[-1]] == sorted(k for k, _ in row[-1])
        assert _bits(kernels[kind]) == _bits(summed[kind]) == _bits(made)


def _bits(columns: dict[str, Any] | None) -> dict[str, tuple[pa.DataType, list[Any]]] | None:
    """Each column's type and values, floats by their bits (-0.0 is not 0.0)."""
    if columns is None:
        return None
    return {
        name: (
            column.type,
            (column.view(pa.int64()) if column.type == _F64 else column).to_pylist(),
        )
        for name, column in columns.items()
    }


_F64 = pa.float64()


@settings(max_examples=300, deadline=None)
@given(outcomes=st.lists(_OUTCOME, max_size=60))
def test_the_sums_are_the_cells(outcomes: list[tuple[Any, ...]]) -> None:
    _same(*_record(outcomes))


@settings(max_examples=30, deadline=None)
@given(outcomes=st.lists(_OUTCOME, min_size=1, max_size=30), years=st.integers(10, 60))
def test_wide_keys_over_many_minutes_are_numbered_afresh(
    outcomes: list[tuple[Any, ...]], years: int
) -> None:
    """An edge key holds its caller's number above bit 28: with 4,000 nodes in a batch
    and starts years apart, (minute, key) no longer fits in 62 bits."""
    rows, batch = _record(outcomes)
    far = 4000
    names = [NodeId(f"n{i}", "remote") for i in range(far + 1)]
    for name in names:  # numbered in order of appearance
        rows.nodes.setdefault(name, len(rows.nodes))
    starts = (NOW - 86_400.0, NOW, NOW + years * 31_536_000.0)
    assert (rows.nodes[names[far]] << 28) * (starts[-1] - starts[0]) / 60 >= 1 << 62
    for i, start in enumerate(starts):
        outcome = Outcome(start, start + 0.5 * i, i)
        for sink in (rows, batch):
            sink.edge(names[far], names[i], outcome)
            sink.node(names[far - i], outcome, root=True)
    _same(rows, batch)


def test_no_outcomes_no_cells() -> None:
    assert node_cells(OutcomeRows()) is None and edge_cells(OutcomeRows()) is None
    assert kernel_cells(OutcomeRows()) == summed_cells(OutcomeRows()) == (None, None)
