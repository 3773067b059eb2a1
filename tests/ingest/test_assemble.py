"""Ingest merges documents of a trace in any order into exact summaries and statistics.

Runs the real Assembler against a real embedded store; statistics are read back through
the store, so what is checked is what the service graph will read.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.model.stats import histogram_bucket
from fluoroscope.store.store import Store


def _ingest(store: Store, assembler: Assembler, *batches: list[dict[str, Any]]) -> None:
    for docs in batches:
        store.write(assembler.assemble(docs))


def _nodes(store: Store, now: float) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (r["name"], r["type"]): r for r in store.stats("node", now - 120, now + 120).to_pylist()
    }


def _edges(store: Store, now: float) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (f"{r['src_name']}|{r['src_type']}", f"{r['dst_name']}|{r['dst_type']}"): r
        for r in store.stats("edge", now - 120, now + 120).to_pylist()
    }


def _checkout_trace(now: float) -> dict[str, dict[str, Any]]:
    """api (root) -> dynamodb table (inferred) and -> billing (instrumented, via http)."""
    trace_id = new_trace_id(now)
    api, ddb, http_call, billing = (new_entity_id() for _ in range(4))
    return {
        "api": {
            "name": "api", "id": api, "trace_id": trace_id, "origin": "AWS::EC2::Instance",
            "start_time": now, "end_time": now + 1.0,
            "http": {"request": {"method": "GET", "url": "http://api/checkout"}, "response": {"status": 200}},
            "annotations": {"order": 7},
            "subsegments": [{
                "name": "DynamoDB", "id": ddb, "namespace": "aws", "start_time": now + 0.1,
                "end_time": now + 0.2, "aws": {"operation": "PutItem", "table_name": "orders"},
                "http": {"response": {"status": 400}},
            }],
        },
        "call": {
            "name": "billing", "id": http_call, "trace_id": trace_id, "type": "subsegment",
            "parent_id": api, "namespace": "remote", "start_time": now + 0.3, "end_time": now + 0.8,
            "http": {"request": {"url": "http://billing/charge"}, "response": {"status": 503}},
        },
        "billing": {
            "name": "billing", "id": billing, "trace_id": trace_id, "parent_id": http_call,
            "start_time": now + 0.35, "end_time": now + 0.75, "fault": True, "user": "bob",
            "http": {"response": {"status": 503}},
        },
    }  # fmt: skip


@pytest.mark.parametrize("order", list(itertools.permutations(["api", "call", "billing"])))
def test_graph_statistics_are_the_same_in_any_arrival_order(
    store: Store, order: tuple[str, ...]
) -> None:
    now = time.time()
    docs = _checkout_trace(now)
    assembler = Assembler(store)
    _ingest(store, assembler, *([docs[name]] for name in order))
    nodes = _nodes(store, now)
    assert set(nodes) == {
        ("api", "AWS::EC2::Instance"),
        ("orders", "AWS::DynamoDB::Table"),
        ("billing", ""),
    }, "the inferred 'billing' remote node must give way to the instrumented service"
    api = nodes[("api", "AWS::EC2::Instance")]
    assert (api["total"], api["ok"], api["is_root"]) == (1, 1, 1)
    assert api["response_time"] == pytest.approx(1.0)
    assert api["histogram"] == [(1_000_000, 1)]
    table = nodes[("orders", "AWS::DynamoDB::Table")]
    assert (table["total"], table["errors"], table["ok"]) == (1, 1, 0)
    billing = nodes[("billing", "")]
    assert (billing["total"], billing["faults"]) == (1, 1)
    assert billing["response_time"] == pytest.approx(0.4)

    edges = _edges(store, now)
    assert set(edges) == {
        ("api|client", "api|AWS::EC2::Instance"),
        ("api|AWS::EC2::Instance", "orders|AWS::DynamoDB::Table"),
        ("api|AWS::EC2::Instance", "billing|"),
    }
    call = edges[("api|AWS::EC2::Instance", "billing|")]
    assert call["faults"] == 1
    assert call["response_time"] == pytest.approx(0.5), "edges are timed from the caller's side"

    (summary,) = store.summaries(now - 5, now + 5).summaries
    assert summary.id == docs["api"]["trace_id"]
    assert summary.services[summary.entry_point or 0].name == "api"
    assert {(s.name, s.type) for s in summary.services} == {
        ("api", "AWS::EC2::Instance"),
        ("orders", "AWS::DynamoDB::Table"),
        ("billing", ""),
    }
    assert summary.response_time == pytest.approx(1.0)
    assert summary.duration == pytest.approx(1.0)
    assert not summary.has_fault and not summary.is_partial
    assert summary.users == [
        ("bob", [next(i for i, s in enumerate(summary.services) if s.name == "billing")])
    ]
    assert summary.annotations == {"order": [(7, [summary.entry_point])]}
    assert summary.revision == len(order)


def test_resent_documents_are_not_counted_twice(store: Store) -> None:
    now = time.time()
    docs = _checkout_trace(now)
    assembler = Assembler(store)
    _ingest(
        store,
        assembler,
        [docs["api"]],
        [docs["api"], docs["call"]],
        [docs["call"], docs["billing"]],
    )
    assert _nodes(store, now)[("api", "AWS::EC2::Instance")]["total"] == 1
    assert len(store.entities([docs["api"]["trace_id"]])[docs["api"]["trace_id"]]) == 4


def test_state_is_reloaded_exactly_after_eviction(store: Store) -> None:
    """With a cache of one trace, every trace is evicted between its documents."""
    now = time.time()
    first, second = _checkout_trace(now), _checkout_trace(now + 1)
    assembler = Assembler(store, capacity=1)
    for name in ("call", "api", "billing"):
        _ingest(store, assembler, [first[name]], [second[name]])
    nodes = _nodes(store, now)
    assert nodes[("api", "AWS::EC2::Instance")]["total"] == 2
    assert nodes[("billing", "")]["total"] == 2
    assert ("billing", "remote") not in nodes
    summaries = {s.id: s for s in store.summaries(now - 5, now + 5).summaries}
    assert summaries[first["api"]["trace_id"]].revision == 3
    assert summaries[first["api"]["trace_id"]].services[0].name == "api"


def test_in_progress_is_not_counted_until_complete(store: Store) -> None:
    now = time.time()
    seg = {"name": "slow", "id": new_entity_id(), "trace_id": new_trace_id(now), "start_time": now}
    assembler = Assembler(store)
    _ingest(store, assembler, [{**seg, "in_progress": True}])
    assert _nodes(store, now) == {}
    (summary,) = store.summaries(now - 5, now + 5).summaries
    assert summary.is_partial and summary.response_time is None
    _ingest(store, assembler, [{**seg, "end_time": now + 3}], [{**seg, "in_progress": True}])
    assert _nodes(store, now)[("slow", "")]["total"] == 1
    (summary,) = store.summaries(now - 5, now + 5).summaries
    assert not summary.is_partial and summary.response_time == pytest.approx(3)


def test_throttles_and_errors_are_classified(store: Store) -> None:
    now = time.time()
    trace_id = new_trace_id(now)
    assembler = Assembler(store)
    docs = [
        {"name": "svc", "id": new_entity_id(), "trace_id": new_trace_id(now), "start_time": now,
         "end_time": now + 0.01, "http": {"response": {"status": status}}}
        for status in (200, 404, 429, 500, 502)
    ]  # fmt: skip
    docs.append({"name": "svc", "id": new_entity_id(), "trace_id": trace_id, "start_time": now,
                 "end_time": now + 0.01, "throttle": True, "error": True})  # fmt: skip
    _ingest(store, assembler, docs)
    svc = _nodes(store, now)[("svc", "")]
    assert (svc["total"], svc["ok"], svc["errors"], svc["throttles"], svc["faults"]) == (
        6,
        1,
        1,
        2,
        2,
    )
    throttled = [s for s in store.summaries(now - 5, now + 5).summaries if s.has_throttle]
    assert len(throttled) == 2


@pytest.mark.parametrize(
    ("seconds", "bucket"),
    [
        (0.0, 0),
        (0.000042, 42),
        (0.0123, 12000),
        (0.01249, 12000),
        (1.234, 1_200_000),
        (7200.0, 4_000_000_000),
    ],
)
def test_histogram_buckets_keep_two_significant_digits(seconds: float, bucket: int) -> None:
    assert histogram_bucket(seconds) == bucket


def _random_id_trace() -> str:
    """A W3C/OpenTelemetry-style id whose first 8 hex digits are far in the future."""
    return f"1-f{new_entity_id()[:7]}-{new_entity_id()}{new_entity_id()[:8]}"


def test_random_id_traces_evicted_are_reloaded_and_never_mistaken_for_new(store: Store) -> None:
    now = time.time()
    assembler = Assembler(store, capacity=2)
    random_trace = _random_id_trace()
    root = {"name": "api", "id": new_entity_id(), "trace_id": random_trace,
            "start_time": now, "end_time": now + 1.0}  # fmt: skip
    _ingest(store, assembler, [root])
    # an X-Ray id trace evicts nothing weird: a later X-Ray trace is still taken as new
    others = [segment_doc(now) for _ in range(3)]
    _ingest(store, assembler, *([d] for d in others))
    assert assembler.cached_traces == 2  # the random-id trace was evicted
    child = {"name": "work", "id": new_entity_id(), "trace_id": random_trace,
             "type": "subsegment", "parent_id": root["id"],
             "start_time": now + 5, "end_time": now + 6}  # fmt: skip
    _ingest(store, assembler, [child])
    page = store.summaries(now - 60, now + 60, limit=100)
    (summary,) = [s for s in page.summaries if s.id == random_trace]
    assert summary.revision == 2 and summary.start_time == pytest.approx(now)
    assert summary.duration == pytest.approx(6.0)  # both documents in one summary


def segment_doc(now: float) -> dict[str, Any]:
    return {"name": "svc", "id": new_entity_id(), "trace_id": new_trace_id(now),
            "start_time": now, "end_time": now + 0.5}  # fmt: skip
