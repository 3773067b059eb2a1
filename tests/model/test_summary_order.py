"""A trace's summary is the same whatever order its documents were merged in.

Documents of one trace arrive in any order, and a trace whose cached state was dropped
is rebuilt from the store, which hands its entities back in an order of its own. The
summary - its services and their order, entry point, edges, annotations, users,
exceptions and the fault, error and response-time root causes (ties included: equal
durations, several failed entities of one service) - must not depend on either. Each
example merges the same documents into a real :class:`TraceState` twice: in one order,
and in another with reloads (a new state replaying the latest copy of every entity
merged so far, in a drawn order) between documents; the two summaries must be equal.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.model.ids import new_entity_id
from fluoroscope.model.summarycolumns import SummaryColumns
from fluoroscope.model.tracestate import TraceState
from tests.tracegen import fleet

_Entity = tuple[dict[str, Any], str, bool]


def _entities(doc: dict[str, Any]) -> list[_Entity]:
    """The entities of ``doc`` as ingest merges them: depth first, each without its
    children, with its parent's id and whether it is a segment."""
    out: list[_Entity] = []
    stack: list[tuple[dict[str, Any], str, bool]] = [
        (doc, doc.get("parent_id") or "", doc.get("type") != "subsegment")
    ]
    while stack:
        entity, parent_id, is_segment = stack.pop()
        own = {k: v for k, v in entity.items() if k != "subsegments"}
        out.append((own, parent_id, is_segment))
        for child in reversed(entity.get("subsegments", ())):
            stack.append((child, entity["id"], False))
    return out


def _walk(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every entity of ``docs``, children included (the dicts themselves)."""
    found: list[dict[str, Any]] = []
    stack = list(docs)
    while stack:
        entity = stack.pop()
        found.append(entity)
        stack += entity.get("subsegments", ())
    return found


_VALUES = st.sampled_from(["gold", "blue", 7, 2.5, True, False])
_TEXT = st.sampled_from(["a", "b", "c"])


@st.composite
def _trace(draw: st.DrawFn) -> list[dict[str, Any]]:
    """One generated trace's documents (and perhaps a second root starting with the
    first), with annotations, users, resources, instances, zones, exceptions and
    failures sprinkled over its entities (so several entities of one service fail, and
    several share a key, a user or a zone)."""
    docs = [doc for batch in draw(fleet(traces=1, spread=0.0)) for doc in batch]
    if draw(st.booleans()):  # a segment starting with the root, its caller unknown (or none)
        (root,) = [doc for doc in docs if "parent_id" not in doc]
        orphan = {"trace_id": root["trace_id"], "id": new_entity_id(),
                  "name": draw(st.sampled_from(["api", "late"])),
                  "start_time": root["start_time"], "end_time": root["start_time"] + 0.02}  # fmt: skip
        if draw(st.booleans()):
            orphan["parent_id"] = new_entity_id()
        docs.append(orphan)
    for entity in _walk(docs):
        if draw(st.booleans()):
            keys = draw(st.lists(st.sampled_from(["tier", "region", "n"]), max_size=2, unique=True))
            entity["annotations"] = {key: draw(_VALUES) for key in keys}
        if draw(st.integers(0, 3)) == 0:
            entity["fault" if draw(st.booleans()) else "error"] = True
        if draw(st.booleans()):
            entity["cause"] = {
                "exceptions": [
                    {"type": draw(_TEXT), "message": draw(_TEXT)}
                    for _ in range(draw(st.integers(1, 2)))
                ]
            }
        if "trace_id" in entity and entity.get("type") != "subsegment":  # a segment
            if draw(st.booleans()):
                entity["user"] = draw(st.sampled_from(["ann", "bob"]))
            if draw(st.booleans()):
                entity["resource_arn"] = draw(st.sampled_from(["arn:1", "arn:2"]))
            if draw(st.booleans()):
                entity["aws"] = {
                    "account_id": draw(st.sampled_from(["111", "222"])),
                    "ec2": {"instance_id": draw(_TEXT), "availability_zone": draw(_TEXT)},
                }
    return docs


def _summary(state: TraceState) -> dict[str, Any]:
    """Everything :meth:`TraceState.summarize` writes for ``state``."""
    out = SummaryColumns()
    state.summarize(out)
    # every column (a compiled SummaryColumns keeps no __slots__: its attributes instead)
    return {
        name: value
        for name in dir(out)
        if not name.startswith("_") and not callable(value := getattr(out, name))
    }


def _merge(
    docs: list[dict[str, Any]], order: list[int], reloads: set[int], shuffles: st.DataObject
) -> TraceState:
    """Merge ``docs`` in ``order``; before the k-th document for k in ``reloads``,
    rebuild the state from the latest copy of each entity merged so far, in an order
    ``shuffles`` draws (as the store hands them back)."""
    trace_id = docs[0]["trace_id"]
    state = TraceState(trace_id, 0, revision=3)
    stored: dict[str, _Entity] = {}
    for k, at in enumerate(order):
        if k in reloads and stored:
            state = TraceState(trace_id, 0, revision=3)
            replayed = shuffles.draw(st.permutations(list(stored.values())))
            for entity, parent_id, is_segment in replayed:
                state.apply(entity, parent_id, is_segment, None)
        for entity, parent_id, is_segment in _entities(docs[at]):
            state.apply(entity, parent_id, is_segment, None)
            stored[entity["id"]] = (entity, parent_id, is_segment)
    return state


@settings(max_examples=300, deadline=None)
@given(docs=_trace(), data=st.data())
def test_the_summary_does_not_depend_on_merge_order_or_reloads(
    docs: list[dict[str, Any]], data: st.DataObject
) -> None:
    first = data.draw(st.permutations(range(len(docs))))
    second = data.draw(st.permutations(range(len(docs))))
    reloads = set(data.draw(st.lists(st.integers(0, len(docs)), max_size=3)))
    expected = _summary(_merge(docs, first, set(), data))
    assert _summary(_merge(docs, second, reloads, data)) == expected


def test_equal_durations_and_several_failed_entities_choose_the_same_whatever_the_order() -> None:
    """The root calls two children of equal duration, each of another service, and the
    faulty service has two faulty leaves: every order picks the same cause and path."""
    trace_id = "1-5f84c7a0-000000000000000000000001"
    root: dict[str, Any] = {
        "trace_id": trace_id, "id": "a000000000000001", "name": "front", "start_time": 1.0,
        "end_time": 3.0, "fault": True,
        "subsegments": [
            {"id": "b000000000000001", "name": "call-x", "namespace": "remote",
             "start_time": 1.0, "end_time": 2.0, "fault": True},
            {"id": "b000000000000002", "name": "call-y", "namespace": "remote",
             "start_time": 1.0, "end_time": 2.0},
        ],
    }  # fmt: skip
    callees = [
        {"trace_id": trace_id, "id": f"c00000000000000{n}", "parent_id": parent,
         "name": name, "start_time": 1.1, "end_time": 1.9, "fault": name == "x",
         "subsegments": [
             {"id": f"d0000000000000{n}{k}", "name": f"leaf{k}", "start_time": 1.2,
              "end_time": 1.3, "fault": name == "x"} for k in range(2)
         ]}
        for n, (name, parent) in enumerate([("x", "b000000000000001"), ("y", "b000000000000002")])
    ]  # fmt: skip
    docs = [root, *callees]
    summaries = []
    for order in ([0, 1, 2], [2, 1, 0], [1, 0, 2], [0, 2, 1]):
        state = TraceState(trace_id, 0)
        for at in order:
            for entity, parent_id, is_segment in _entities(docs[at]):
                state.apply(entity, parent_id, is_segment, None)
        summaries.append(_summary(state))
    assert all(summary == summaries[0] for summary in summaries)
    # services by their first segment's start, then id; the equally long call-x (the
    # smaller id) leads the response time to x, and of x's two faulty leaves, equal in
    # start and end, the smaller id ends both paths
    (details,) = summaries[0]["details"]
    assert summaries[0]["service_names"] == ["front", "x", "y"]
    fault, error, slowest = details["rc"]
    assert [(c[0], [step[0] for step in c[3]]) for c in fault] == [(1, ["x", "leaf0"])]
    assert error == []
    assert [(c[0], [step[0] for step in c[3]]) for c in slowest] == [(1, ["x", "leaf0"])]
