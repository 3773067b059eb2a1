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

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.model.inference import downstream_node
from fluoroscope.query.compile import Condition
from fluoroscope.query.graph import filtered_graph, service_graph
from fluoroscope.query.tracegraph import trace_graph
from fluoroscope.store.store import Store
from fluoroscope.store.tracestats import AWS_NAMING_FIELDS
from tests.tracegen import NOW, fleet, graph_shape


@pytest.fixture
def fresh_store(chdb_dir: Path) -> Iterator[Store]:
    store = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    yield store
    store.close()


def _load(store: Store, batches: list[list[dict[str, Any]]]) -> None:
    assembler = Assembler(store)
    for batch in batches:
        store.write(assembler.assemble(batch))


@settings(max_examples=20)
@given(batches=fleet())
def test_graph_of_all_traces_equals_the_ingest_statistics(
    chdb_dir: Path, batches: list[list[dict[str, Any]]]
) -> None:
    store = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    try:
        _load(store, batches)
        everything = Condition("1", {})
        lo, hi = NOW - 60, NOW + 600
        assert graph_shape(filtered_graph(store, lo, hi, everything)) == graph_shape(
            service_graph(store, lo, hi)
        )
    finally:
        store._t.execute(f"DROP DATABASE {store._db}")
        store.close()


@settings(max_examples=12)
@given(batches=fleet(), pick=st.integers(0, 2**16))
def test_graph_of_some_traces_equals_replaying_them(
    chdb_dir: Path, batches: list[list[dict[str, Any]]], pick: int
) -> None:
    store = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    try:
        _load(store, batches)
        ids = sorted({d["trace_id"] for batch in batches for d in batch})
        chosen = [t for k, t in enumerate(ids) if pick >> k & 1] or ids[:1]
        condition = Condition("has({chosen:Array(String)}, trace_id)", {"chosen": chosen})
        found = graph_shape(filtered_graph(store, NOW - 60, NOW + 600, condition))
        assert found == graph_shape(trace_graph(store, chosen))
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
    assert graph_shape(graph) == graph_shape(service_graph(fresh_store, NOW + 120, NOW + 400))


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
    shape = graph_shape(graph)
    assert [target for target, _ in shape[("api", "")][4]] == [
        ("billing", ""),
        ("deep", "AWS::DynamoDB::Table"),
    ]
    assert shape == graph_shape(service_graph(fresh_store, NOW - 60, NOW + 60))


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
