"""What a cached trace state keeps of its documents is shared across traces: the values
that repeat (names, origins, zones, methods, user agents, annotation values) are one
string object each, however many parsed documents carried them (the ingest workers keep
10,000 states each: ``benchmarks/worker_memory.py``)."""

from __future__ import annotations

from typing import Any

import orjson

from fluoroscope.model.summarycolumns import SummaryColumns
from fluoroscope.model.tracestate import TraceState


def _state(n: int) -> tuple[TraceState, str, str]:
    """A trace of one segment with a subsegment, parsed from JSON as ingest parses it
    (each document holds string objects of its own)."""
    trace_id = f"1-5f84c7a0-{n:024x}"
    seg_id, sub_id = f"{n:016x}", f"{n + 1:016x}"
    doc: dict[str, Any] = {
        "trace_id": trace_id,
        "id": seg_id,
        "name": "checkout-api",
        "origin": "AWS::EC2::Instance",
        "start_time": 1.0,
        "end_time": 2.0,
        "user": "user-7",
        "http": {
            "request": {"method": "POST", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"},
            "response": {"status": 200},
        },
        "aws": {"ec2": {"instance_id": "i-0abc", "availability_zone": "us-east-1a"}},
        "annotations": {"tier": "enterprise-customers"},
    }
    sub = {"id": sub_id, "name": "render-template", "start_time": 1.1, "end_time": 1.2}
    state = TraceState(trace_id, 0)
    state.apply(orjson.loads(orjson.dumps(doc)), "", True, None)
    state.apply(orjson.loads(orjson.dumps(sub)), seg_id, False, None)
    return state, seg_id, sub_id


def test_repeated_values_are_one_object_across_traces() -> None:
    (a, seg_a, sub_a), (b, seg_b, sub_b) = _state(1), _state(2)
    sa, sb = a.segments[seg_a], b.segments[seg_b]
    assert sa.node == sb.node and sa.node.name is sb.node.name and sa.node.type is sb.node.type
    assert sa.http is not None and sb.http is not None
    assert sa.http[2] is sb.http[2] and sa.http[3] is sb.http[3]  # method, user agent
    assert sa.user is sb.user and sa.instance_id is sb.instance_id
    assert sa.availability_zone is sb.availability_zone
    assert a.subs[sub_a].name is b.subs[sub_b].name
    assert a.annotations[(seg_a, "tier")] is b.annotations[(seg_b, "tier")]
    assert a.watch is b.watch  # nothing pending: one shared empty set


def test_sharing_changes_no_value() -> None:
    state, seg_id, sub_id = _state(3)
    segment = state.segments[seg_id]
    assert segment.node.name == "checkout-api" and segment.node.type == "AWS::EC2::Instance"
    assert segment.http == ("", 200, "POST", "Mozilla/5.0 (X11; Linux x86_64)", "")
    assert (segment.user, segment.instance_id, segment.availability_zone) == (
        "user-7",
        "i-0abc",
        "us-east-1a",
    )
    assert state.subs[sub_id].name == "render-template"
    assert state.annotations == {(seg_id, "tier"): "enterprise-customers"}
    assert set(state.counted) == {seg_id, sub_id}


def _call_trace(n: int) -> tuple[TraceState, str, str]:
    """api calls billing (a traced remote call), billing calls DynamoDB; billing's
    segment merged first, as SDKs send callees first. Returns (state, root id, callee id)."""
    trace_id = f"1-5f84c7a0-{n:024x}"
    root_id, call_id, callee_id, db_id = (f"{n + k:016x}" for k in range(4))
    root: dict[str, Any] = {
        "trace_id": trace_id, "id": root_id, "name": "api", "start_time": 1.0,
        "end_time": 2.0, "http": {"request": {"method": "GET", "url": "http://api/x"},
                                   "response": {"status": 200}},
        "subsegments": [{"id": call_id, "name": "billing", "namespace": "remote",
                         "start_time": 1.1, "end_time": 1.9,
                         "http": {"request": {"url": "http://billing/y"}}}],
    }  # fmt: skip
    callee: dict[str, Any] = {
        "trace_id": trace_id, "id": callee_id, "parent_id": call_id, "name": "billing",
        "start_time": 1.2, "end_time": 1.8,
        "http": {"request": {"method": "POST", "url": "http://billing/y"},
                 "response": {"status": 200}},
        "subsegments": [{"id": db_id, "name": "DynamoDB", "namespace": "aws",
                         "start_time": 1.3, "end_time": 1.4,
                         "aws": {"table_name": "orders"}}],
    }  # fmt: skip
    state = TraceState(trace_id, 0)
    for doc in (callee, root):
        parsed = orjson.loads(orjson.dumps(doc))
        children = parsed.pop("subsegments")
        state.apply(parsed, parsed.get("parent_id", ""), True, None)
        for child in children:
            state.apply(child, parsed["id"], False, None)
    return state, root_id, callee_id


def test_a_settled_trace_keeps_nothing_pending_and_only_the_roots_http() -> None:
    state, root_id, callee_id = _call_trace(16)
    # billing's edge waited for its caller, DynamoDB's call for its owner: both settled
    assert state.unowned is None and state.waiting is None
    (row,) = _summaries(state)
    assert row["service_names"] == ["api", "billing", "orders"]
    assert row["edges"] == [(1, 2), (2, 3)]
    assert row["url"] == "http://api/x"
    # the callee is never the root again: what it kept of its request is gone
    assert state.segments[callee_id].http is None
    assert state.segments[root_id].http is not None
    assert _summaries(state) == [row]


def test_nodes_are_one_object_across_traces() -> None:
    (a, _, callee_a), (b, _, callee_b) = _call_trace(32), _call_trace(48)
    assert a.segments[callee_a].node is b.segments[callee_b].node
    (edge_a,), (edge_b,) = a.calls()[:1], b.calls()[:1]
    assert edge_a[0] is edge_b[0] and edge_a[1] is edge_b[1]


def _summaries(state: TraceState) -> list[dict[str, Any]]:
    out = SummaryColumns()
    state.summarize(out)
    url_at = 12  # the row's fields as TraceState.summarize passes them to end_row
    return [
        {
            "service_names": out.service_names,
            "edges": list(zip(out.edge_src, out.edge_dst, strict=True)),
            "url": row[url_at],
        }
        for row in out.scalars
    ]


def _annotated(n: int, annotations: dict[str, Any]) -> tuple[TraceState, str]:
    """A trace of one segment with ``annotations``, parsed from JSON."""
    seg_id = f"{n:016x}"
    doc = {"id": seg_id, "name": "api", "start_time": 1.0, "end_time": 2.0,
           "annotations": annotations}  # fmt: skip
    state = TraceState(f"1-5f84c7a0-{n:024x}", 0)
    state.apply(orjson.loads(orjson.dumps(doc)), "", True, None)
    return state, seg_id


def test_equal_annotations_are_one_tuple_across_traces() -> None:
    labels = {"tier": "pro", "region": "us-east-1", "cart_items": 6}
    (a, seg_a), (b, seg_b) = _annotated(64, labels), _annotated(65, labels)
    assert a.segments[seg_a].annotations is b.segments[seg_b].annotations
    (c, seg_c) = _annotated(66, {**labels, "cart_items": 7})
    assert c.segments[seg_c].annotations is not a.segments[seg_a].annotations
    assert c.annotations[(seg_c, "cart_items")] == 7


def test_shared_annotations_keep_each_values_type() -> None:
    # 1 == 1.0 == True: a tuple shared by equality would hand one trace another's type
    values: list[Any] = [1, True, 1.0, "1", 0, False, 0.0]
    for n, value in enumerate(values * 2):
        state, seg_id = _annotated(80 + n, {"n": value})
        kept = state.annotations[(seg_id, "n")]
        assert kept == value and type(kept) is type(value)


def test_a_calls_id_is_kept_once_when_its_callee_came_first() -> None:
    state, _, callee_id = _call_trace(96)
    parent_id = state.segments[callee_id].parent_id
    (key,) = (k for k in state.subs if k == parent_id)
    assert key is parent_id  # the key is the callee's string, not the caller's copy


def test_a_call_keeps_its_outcome() -> None:
    state, _, _ = _call_trace(112)
    calls = [sub.call for sub in state.subs.values() if sub.call is not None]
    assert sorted((c.node.name, c.outcome) for c in calls) == [
        ("billing", (1.1, 1.9, 0)),
        ("orders", (1.3, 1.4, 0)),
    ]
