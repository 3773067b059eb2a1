"""Property test: whatever the tree shape, close order and streaming threshold, every
entity is sent exactly once, under its true parent, in valid documents."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.model.documents import validate_document
from fluoroscope.sdk import Entity, InMemoryEmitter, Tracer
from fluoroscope.sdk._tracer import open_subsegment
from tests.sdk.conftest import flatten


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[int], list[int], int, int]:
    """(parent index of each subsegment, close order, segment close position, threshold)."""
    count = draw(st.integers(min_value=0, max_value=40))
    parents = [draw(st.integers(min_value=0, max_value=i)) for i in range(count)]  # 0 = segment
    order = draw(st.permutations(list(range(count))))
    segment_closes_at = draw(st.integers(min_value=0, max_value=count))
    threshold = draw(st.integers(min_value=0, max_value=6))
    return parents, list(order), segment_closes_at, threshold


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_every_entity_is_sent_once_under_its_parent(
    scenario: tuple[list[int], list[int], int, int],
) -> None:
    parents, order, segment_closes_at, threshold = scenario
    emitter = InMemoryEmitter()
    tracer = Tracer(service="svc", emitter=emitter, sampling=False, streaming_threshold=threshold)
    seg = tracer.segment("root")
    entities: list[Entity] = [seg]
    for i, parent in enumerate(parents):
        entities.append(open_subsegment(f"s{i}", None, entities[parent]))
    for position, index in enumerate(order):
        if position == segment_closes_at:
            seg.close()
        entities[index + 1].close()
    seg.close()

    docs = emitter.documents
    now = time.time()
    for doc in docs:
        validate_document(doc, now=now)
    found = flatten(docs)  # fails on any entity sent twice
    assert set(found) == {e.id for e in entities}
    for i, parent in enumerate(parents):
        assert found[entities[i + 1].id]["_parent"] == entities[parent].id
    assert found[seg.id]["_parent"] is None
