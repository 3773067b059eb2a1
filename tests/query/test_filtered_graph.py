"""The service graph of filtered traces (a group's graph), against two oracles.

Generated traces - nested subsegments, AWS/HTTP/SQL downstream calls answered or not by
an instrumented callee, in-progress entities, streamed subsegments, documents arriving
in any order over several batches - go through the real ingest (``Assembler``) into the
real embedded store. Then:

* with a condition every trace meets, the graph the engine recomputes from the spans
  must equal the graph of the per-minute statistics ingest aggregated;
* with a condition picking some traces, it must equal the graph of replaying exactly
  those traces through ingest's logic (``trace_graph``).
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.graph import ServiceGraph, Statistics
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.model.inference import downstream_node
from fluoroscope.query.compile import Condition
from fluoroscope.query.graph import filtered_graph, service_graph
from fluoroscope.query.tracegraph import trace_graph
from fluoroscope.store.store import Store
from fluoroscope.store.tracestats import AWS_NAMING_FIELDS

NOW = float(int(time.time()) // 60 * 60 - 600)  # a minute boundary, 10 minutes ago

_status = st.sampled_from([None, 200, 200, 404, 429, 500, 503])
_aws_call = st.one_of(
    st.builds(lambda t: ("DynamoDB", {"table_name": t}), st.sampled_from(["users", "orders"])),
    st.builds(lambda: ("dynamodb", {"table_names": ["arn:aws:dynamodb:t/x"]})),
    st.builds(lambda b: ("S3", {"bucket_name": b, "request_id": "r"}), st.sampled_from(["b1"])),
    st.builds(lambda: ("SQS", {"queue_url": "https://sqs/123/jobs/"})),
    st.builds(lambda: ("lambda", {"function_name": "arn:aws:lambda:us:1:function:fn"})),
    st.builds(lambda: ("Ssm", {"operation": "GetParameter"})),
    st.builds(lambda: ("weird thing", {})),
)


class _Builder:
    """Draws one trace's documents."""

    def __init__(self, draw: st.DrawFn, trace_id: str, start: float) -> None:
        self.draw = draw
        self.trace_id = trace_id
        self.start = start
        self.docs: list[dict[str, Any]] = []

    def outcome(self, entity: dict[str, Any]) -> None:
        status = self.draw(_status)
        if status is not None:
            entity["http"] = {"response": {"status": status}}
        if self.draw(st.booleans()) and self.draw(st.booleans()):
            entity["fault"] = True

    def times(self, entity: dict[str, Any], start: float, in_progress_ok: bool = True) -> float:
        duration = self.draw(st.sampled_from([0.0004, 0.003, 0.02, 0.15, 1.2]))
        entity["start_time"] = start
        if in_progress_ok and self.draw(st.integers(0, 9)) == 0:
            entity["in_progress"] = True
        else:
            entity["end_time"] = start + duration
        return duration

    def subsegments(self, depth: int, start: float) -> list[dict[str, Any]]:
        subs: list[dict[str, Any]] = []
        for _ in range(self.draw(st.integers(0, 3 if depth < 2 else 1))):
            sub: dict[str, Any] = {"id": new_entity_id()}
            kind = self.draw(st.sampled_from(["local", "aws", "remote", "sql", "http"]))
            if kind == "aws":
                name, aws = self.draw(_aws_call)
                sub.update(name=name, namespace="aws", aws=aws)
            elif kind == "remote":
                sub.update(
                    name=self.draw(st.sampled_from(["api.example", "pay"])), namespace="remote"
                )
            elif kind == "sql":
                sub.update(name="db@host", sql={"url": "pg://db"})
            elif kind == "http":
                sub.update(name="cdn", http={"request": {"url": "http://cdn/x"}})
            else:
                sub.update(name=self.draw(st.sampled_from(["work", "parse"])), namespace="local")
            self.times(sub, start)
            self.outcome(sub)
            if kind == "local" and depth < 3:
                sub["subsegments"] = self.subsegments(depth + 1, start)
            elif kind in ("remote", "aws") and self.draw(st.booleans()):
                self.segment(sub["id"], start + 0.0001, depth + 1)  # an instrumented callee
            if not sub.get("subsegments"):
                sub.pop("subsegments", None)
            subs.append(sub)
        return subs

    def segment(self, parent_id: str | None, start: float, depth: int) -> None:
        name = self.draw(st.sampled_from(["api", "worker", "billing"]))
        seg: dict[str, Any] = {
            "id": new_entity_id(),
            "trace_id": self.trace_id,
            "name": name,
        }
        if self.draw(st.booleans()):
            seg["origin"] = "AWS::EC2::Instance"
        if parent_id:
            seg["parent_id"] = parent_id
        self.times(seg, start, in_progress_ok=depth > 0)
        self.outcome(seg)
        subs = self.subsegments(depth, start) if depth < 3 else []
        stream: bool = self.draw(st.booleans())
        if subs and stream:  # stream one subsegment on its own
            streamed = subs.pop()
            streamed.update(type="subsegment", trace_id=self.trace_id, parent_id=seg["id"])
            self.docs.append(streamed)
        if subs:
            seg["subsegments"] = subs
        self.docs.append(seg)


@st.composite
def _fleet(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Several traces' documents, shuffled into a few batches."""
    docs: list[dict[str, Any]] = []
    for k in range(draw(st.integers(1, 6))):
        start = NOW + draw(st.floats(0, 170)) + k
        builder = _Builder(draw, new_trace_id(start), start)
        builder.segment(None, start, 0)
        docs += builder.docs
    order = draw(st.permutations(range(len(docs))))
    cuts = sorted(draw(st.lists(st.integers(0, len(docs)), max_size=3)))
    shuffled = [docs[i] for i in order]
    bounds = [0, *cuts, len(docs)]
    return [shuffled[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@pytest.fixture
def fresh_store(chdb_dir: Path) -> Iterator[Store]:
    store = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    yield store
    store.close()


def _stats(stats: Statistics | None) -> tuple[Any, ...] | None:
    if stats is None:
        return None
    return (
        stats.total, stats.ok, stats.errors, stats.throttles, stats.faults,
        round(stats.response_time, 9), tuple(stats.histogram),
    )  # fmt: skip


def _shape(graph: ServiceGraph) -> dict[tuple[str, str], Any]:
    nodes = graph.nodes
    return {
        (n.name, n.type): (
            n.root, n.inferred, n.client, _stats(n.statistics),
            sorted(
                ((nodes[e.target].name, nodes[e.target].type), _stats(e.statistics))
                for e in n.edges
            ),
        )
        for n in nodes
    }  # fmt: skip


def _load(store: Store, batches: list[list[dict[str, Any]]]) -> None:
    assembler = Assembler(store)
    for batch in batches:
        store.write(assembler.assemble(batch))


@settings(max_examples=20)
@given(batches=_fleet())
def test_graph_of_all_traces_equals_the_ingest_statistics(
    chdb_dir: Path, batches: list[list[dict[str, Any]]]
) -> None:
    store = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    try:
        _load(store, batches)
        everything = Condition("1", {})
        lo, hi = NOW - 60, NOW + 600
        assert _shape(filtered_graph(store, lo, hi, everything)) == _shape(
            service_graph(store, lo, hi)
        )
    finally:
        store._t.execute(f"DROP DATABASE {store._db}")
        store.close()


@settings(max_examples=12)
@given(batches=_fleet(), pick=st.integers(0, 2**16))
def test_graph_of_some_traces_equals_replaying_them(
    chdb_dir: Path, batches: list[list[dict[str, Any]]], pick: int
) -> None:
    store = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    try:
        _load(store, batches)
        ids = sorted({d["trace_id"] for batch in batches for d in batch})
        chosen = [t for k, t in enumerate(ids) if pick >> k & 1] or ids[:1]
        condition = Condition("has({chosen:Array(String)}, trace_id)", {"chosen": chosen})
        found = _shape(filtered_graph(store, NOW - 60, NOW + 600, condition))
        assert found == _shape(trace_graph(store, chosen))
    finally:
        store._t.execute(f"DROP DATABASE {store._db}")
        store.close()


def test_only_calls_starting_in_the_window_count(fresh_store: Store) -> None:
    trace_id = new_trace_id(NOW)
    docs = [
        {"id": new_entity_id(), "trace_id": trace_id, "name": "early", "start_time": NOW,
         "end_time": NOW + 1},
        {"id": new_entity_id(), "trace_id": trace_id, "name": "late", "start_time": NOW + 300,
         "end_time": NOW + 301},
    ]  # fmt: skip
    _load(fresh_store, [docs])
    graph = filtered_graph(fresh_store, NOW + 120, NOW + 400, Condition("1", {}))
    assert {n.name for n in graph.nodes} == {"late"}
    assert _shape(graph) == _shape(service_graph(fresh_store, NOW + 120, NOW + 400))


def test_calls_nested_deep_in_a_segment_are_owned_by_it(fresh_store: Store) -> None:
    """Owners are found up to 64 parent hops away, as ingest finds them."""
    trace_id = new_trace_id(NOW)
    call: dict[str, Any] = {
        "id": new_entity_id(),
        "name": "DynamoDB",
        "namespace": "aws",
        "aws": {"table_name": "deep"},
        "start_time": NOW,
        "end_time": NOW + 0.01,
    }
    remote: dict[str, Any] = {"id": new_entity_id(), "name": "pay", "namespace": "remote",
                              "start_time": NOW, "end_time": NOW + 0.02}  # fmt: skip
    inner: dict[str, Any] = {"id": new_entity_id(), "name": "l30", "start_time": NOW,
                             "end_time": NOW + 0.1, "subsegments": [call, remote]}  # fmt: skip
    for depth in range(29, 0, -1):
        inner = {"id": new_entity_id(), "name": f"l{depth}", "start_time": NOW,
                 "end_time": NOW + 0.1, "subsegments": [inner]}  # fmt: skip
    root = {"id": new_entity_id(), "trace_id": trace_id, "name": "api", "start_time": NOW,
            "end_time": NOW + 0.2, "subsegments": [inner]}  # fmt: skip
    callee = {"id": new_entity_id(), "trace_id": trace_id, "parent_id": remote["id"],
              "name": "billing", "start_time": NOW + 0.001, "end_time": NOW + 0.015}  # fmt: skip
    _load(fresh_store, [[root, callee]])
    graph = filtered_graph(fresh_store, NOW - 60, NOW + 60, Condition("1", {}))
    shape = _shape(graph)
    assert [target for target, _ in shape[("api", "")][4]] == [
        ("billing", ""),
        ("deep", "AWS::DynamoDB::Table"),
    ]
    assert shape == _shape(service_graph(fresh_store, NOW - 60, NOW + 60))


_aws_value = st.one_of(
    st.none(), st.booleans(), st.integers(-1, 2), st.text(max_size=6),
    st.sampled_from(["arn:aws:sns:us:1:topic", "https://q/1/name/", "t"]),
    st.lists(st.one_of(st.text(max_size=4), st.integers()), max_size=2),
)  # fmt: skip


@given(
    name=st.sampled_from(["DynamoDB", "dynamodb", "S3", "sqs", "SNS", "Lambda", "kinesis",
                          "states", "events", "SecretsManager", "Other Service", "x"]),
    fields=st.dictionaries(st.sampled_from([*AWS_NAMING_FIELDS, "operation", "region"]),
                           _aws_value, max_size=5),
)  # fmt: skip
def test_aws_nodes_are_named_from_the_fields_the_rule_reads(
    name: str, fields: dict[str, Any]
) -> None:
    """finish_rows names aws calls from AWS_NAMING_FIELDS only: that must be all the
    inference rule looks at."""
    full = {"name": name, "namespace": "aws", "aws": fields}
    reduced = {
        "name": name,
        "namespace": "aws",
        "aws": {k: v for k, v in fields.items() if k in AWS_NAMING_FIELDS and v is not None},
    }
    assert downstream_node(full) == downstream_node(reduced)
