"""Per-minute statistics summed per batch in arrays are today's cells' sums, to the bit."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.model.inference import ERROR, FAULT, THROTTLE, NodeId
from fluoroscope.model.stats import CellStatsBatch, Outcome, StatsBatch, histogram_bucket

_NAMES = st.sampled_from(["api", "db", "queue"])
_TYPES = st.sampled_from(["", "AWS::Lambda", "remote"])
_START = st.floats(min_value=1.7e9, max_value=1.7e9 + 300)
_ELAPSED = st.one_of(
    st.floats(min_value=-1.0, max_value=5000.0),
    st.sampled_from([0.0, 99e-6, 100e-6, 0.0123, 1.234, 3999.9995, 4000.0, 4000.0005]),
)


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.booleans(),
            _NAMES,
            _TYPES,
            _NAMES,
            _TYPES,
            _START,
            _ELAPSED,
            st.sampled_from([0, ERROR, FAULT, THROTTLE, ERROR | THROTTLE, FAULT | ERROR, 7]),
            st.sampled_from([1, 1, 1, -1]),
            st.booleans(),
            st.booleans(),
        ),
        max_size=60,
    )
)
def test_columns_are_the_cells_sums(rows: list[tuple[Any, ...]]) -> None:
    stats, reference = StatsBatch(), CellStatsBatch()
    for is_edge, name, kind, dname, dkind, start, elapsed, bits, weight, root, inferred in rows:
        done = Outcome(start, start + elapsed, bits)
        for batch in (stats, reference):
            if is_edge:
                batch.edge(NodeId(name, kind), NodeId(dname, dkind), done, weight=weight)
            else:
                batch.node(NodeId(name, kind), done, root=root, inferred=inferred, weight=weight)
    nodes = stats.node_columns()
    assert nodes == reference.node_columns()
    assert stats.edge_columns() == reference.edge_columns()
    assert [type(v) for v in nodes["response_time"]] == [float] * len(nodes["response_time"])
    assert bool(stats) == bool(reference) == bool(rows)
    for mine, theirs in ((stats.nodes, reference.nodes), (stats.edges, reference.edges)):
        assert list(mine) == list(theirs)
        assert [(c.total, c.response_time, c.histogram) for c in mine.values()] == [
            (c.total, c.response_time, c.histogram) for c in theirs.values()
        ]


def test_buckets_match_histogram_bucket_at_every_magnitude() -> None:
    stats = StatsBatch()
    durations = [0.0, 1e-7, 99.4e-6, 99.5e-6, 0.0012345, 0.9995, 1.0, 12.5, 3999.99, 4001.0]
    for i, elapsed in enumerate(durations):
        stats.node(NodeId(f"n{i}", ""), Outcome(1.7e9, 1.7e9 + elapsed, 0), root=False)
    histograms: list[Any] = stats.node_columns()["histogram"]
    expected = [histogram_bucket((1.7e9 + e) - 1.7e9) for e in durations]
    assert [h[0][0] for h in histograms] == expected
