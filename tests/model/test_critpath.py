"""The critical path of one trace and entries' self time, on hand-built traces (sequential,
overlapping and asynchronous children, clock skew, in-progress entities, cycles) and
on generated traces (the path's critical times always add up to the trace's span)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from fluoroscope.model.critpath import Span, critical_path, spans_from_documents
from tests.tracegen import fleet


def _path(spans: list[Span]) -> dict[str, tuple[float, float, float]]:
    return {
        e.id: (round(e.start, 6), round(e.end, 6), round(e.critical, 6))
        for e in critical_path(spans).entries
    }


def test_sequential_children_all_on_the_path_with_the_gaps_as_the_parents_time() -> None:
    spans = [
        Span("r", "", 0.0, 10.0, "api", True),
        Span("a", "r", 1.0, 4.0, "DynamoDB", operation="GetItem"),
        Span("b", "r", 5.0, 9.0, "work"),
    ]
    cp = critical_path(spans)
    assert _path(spans) == {"r": (0, 10, 3), "a": (1, 4, 3), "b": (5, 9, 4)}
    assert {e.id: (e.service, e.operation) for e in cp.entries}["a"] == ("api", "GetItem")
    assert cp.self_times == pytest.approx({"r": 3.0, "a": 3.0, "b": 4.0})


def test_of_overlapping_children_the_one_finishing_last_holds_the_parent() -> None:
    spans = [
        Span("r", "", 0.0, 10.0, "api", True),
        Span("long", "r", 1.0, 9.0, "slow"),
        Span("short", "r", 2.0, 5.0, "fast"),  # concurrent with long: not on the path
        Span("early", "r", 0.2, 0.8, "auth"),  # before long started: on the path
    ]
    assert _path(spans) == {
        "r": (0, 10, 1.4),
        "long": (1, 9, 8),
        "early": (0.2, 0.8, 0.6),
    }
    # self time: the union of the children covers 0.2-0.8 and 1-9
    assert critical_path(spans).self_times["r"] == pytest.approx(10 - 0.6 - 8)


def test_async_child_running_past_its_parent_is_clamped_to_the_parent() -> None:
    spans = [
        Span("r", "", 0.0, 5.0, "api", True),
        Span("c", "r", 1.0, 3.0, "call"),
        Span("async", "r", 4.0, 20.0, "queue-worker"),  # fire and forget, ends late
    ]
    cp = critical_path(spans)
    # the trace lasts until the async work ends; only its part inside r is under r
    assert (cp.start, cp.end) == (0.0, 20.0)
    assert _path(spans)["async"] == (4, 5, 1)
    assert _path(spans)["r"] == (0, 5, 2)
    assert "c" in _path(spans)
    assert cp.gaps == pytest.approx(15.0)  # the 15 s after r ended no root covers


def test_clock_skew_a_child_starting_before_its_parent_is_clamped() -> None:
    spans = [
        Span("r", "", 10.0, 20.0, "api", True),
        Span("seg", "r", 9.5, 15.0, "billing", True),  # another host's clock, 0.5 s early
    ]
    assert _path(spans) == {"r": (10, 20, 5), "seg": (10, 15, 5)}


def test_in_progress_entity_runs_to_the_trace_end_and_cycles_are_never_reached() -> None:
    spans = [
        Span("r", "", 0.0, None, "api", True),
        Span("x", "r", 1.0, 7.0, "work"),
        Span("loop1", "loop2", 2.0, 3.0, "a"),
        Span("loop2", "loop1", 2.0, 3.0, "b"),
    ]
    path = _path(spans)
    assert path["r"] == (0, 7, 1)
    assert "loop1" not in path and "loop2" not in path


def test_trees_of_segments_take_the_service_of_their_segment() -> None:
    docs: list[dict[str, Any]] = [
        {"id": "s1", "name": "api", "start_time": 0.0, "end_time": 3.0,
         "subsegments": [{"id": "call", "name": "billing", "namespace": "remote",
                          "start_time": 0.5, "end_time": 2.5}]},
        {"id": "s2", "name": "billing", "parent_id": "call", "start_time": 0.6,
         "end_time": 2.4, "subsegments": [{"id": "q", "name": "DynamoDB", "namespace": "aws",
                                           "aws": {"operation": "Query"},
                                           "start_time": 1.0, "end_time": 2.0}]},
    ]  # fmt: skip
    entries = {e.id: e for e in critical_path(spans_from_documents(docs)).entries}
    assert set(entries) == {"s1", "call", "s2", "q"}
    assert (entries["q"].service, entries["q"].operation) == ("billing", "Query")
    assert entries["call"].service == "api"
    assert sum(e.critical for e in entries.values()) == pytest.approx(3.0)


@settings(max_examples=60, deadline=None)
@given(batches=fleet())
def test_path_windows_nest_and_add_up_to_the_trace(batches: list[list[dict[str, Any]]]) -> None:
    docs = [d for batch in batches for d in batch]
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_trace.setdefault(d["trace_id"], []).append(d)
    for trace_docs in by_trace.values():
        cp = critical_path(spans_from_documents(trace_docs))
        total = sum(e.critical for e in cp.entries) + cp.gaps
        assert total == pytest.approx(cp.duration, abs=1e-6)
        for e in cp.entries:
            assert cp.start - 1e-9 <= e.start <= e.end <= cp.end + 1e-9
            assert e.critical >= 0
        assert all(t >= 0 for t in cp.self_times.values())
