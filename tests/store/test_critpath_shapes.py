"""The engine's critical path against the pure walk (:mod:`fluoroscope.model.critpath`)
on random trace shapes the service generator does not draw: children starting before
or ending after their parent, concurrent and overlapping siblings on a coarse time grid
(so ends and starts tie), zero-length and in-progress entities, orphan segments whose
parent never arrived, callee segments under a subsegment. Real ingest, real store."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.store.store import Store
from tests.store.test_critpath_engine import assert_engine_matches_model
from tests.tracegen import NOW


@st.composite
def _shape(draw: st.DrawFn, start: float) -> list[dict[str, Any]]:
    tid = new_trace_id(start)

    def times(entity: dict[str, Any]) -> None:
        entity["start_time"] = start + draw(st.integers(-2, 10)) * 0.01
        if draw(st.integers(0, 7)) == 0:
            entity["in_progress"] = True
        else:
            entity["end_time"] = entity["start_time"] + draw(st.sampled_from([0, 0.01, 0.03, 0.1]))

    def subs(depth: int) -> list[dict[str, Any]]:
        out = []
        for _ in range(draw(st.integers(0, 3 if depth < 2 else 1))):
            sub: dict[str, Any] = {"id": new_entity_id(), "name": draw(st.sampled_from("abc"))}
            if draw(st.booleans()):
                sub.update(namespace="aws", aws={"operation": draw(st.sampled_from("GQ"))})
            times(sub)
            if depth < 3:
                sub["subsegments"] = subs(depth + 1)
            out.append(sub)
        return out

    root: dict[str, Any] = {"id": new_entity_id(), "trace_id": tid, "name": "api"}
    times(root)
    root["subsegments"] = subs(0)
    docs = [root]
    flat = list(root["subsegments"])
    for _ in range(draw(st.integers(0, 2))):
        seg: dict[str, Any] = {"id": new_entity_id(), "trace_id": tid, "name": "svc"}
        times(seg)
        seg["subsegments"] = subs(1)
        callee: bool = draw(st.booleans())
        if flat and callee:
            seg["parent_id"] = draw(st.sampled_from(flat))["id"]  # a callee
        else:
            seg["parent_id"] = new_entity_id()  # its parent never arrived
        docs.append(seg)
    return docs


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_engine_walk_equals_the_pure_walk_on_random_shapes(
    store: Store, data: st.DataObject
) -> None:
    traces = [data.draw(_shape(NOW + 5 + k)) for k in range(data.draw(st.integers(1, 4)))]
    store.write(Assembler(store).assemble([d for trace in traces for d in trace]))
    ids = [trace[0]["trace_id"] for trace in traces]
    rows = store.critical_path_stats(
        NOW - 10, NOW + 60, "trace_id IN {ids:Array(String)}", {"ids": ids}, entries=True
    )
    assert_engine_matches_model(store, rows, ids)
