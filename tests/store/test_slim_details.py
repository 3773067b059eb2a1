"""Summaries' details written without what the row's columns hold (``store/details.py``):
every summary reads back the same as when its details held everything (the writer
before: ``orjson.dumps`` of the whole dict), and a store holding rows of both layouts -
of the same trace too, one revision each way - reads the same as either.

Properties over hand-made summaries with any text in the restored parts (services'
names, types and accounts, ARNs, instance ids, zones: what the engine writes as JSON on
read must parse back to the same strings) and over generated traces merged by a real
Assembler, shuffled into batches that each writer takes in turn.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from benchmarks.ingest import make_trace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fluoroscope.store.batch as batch_module
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_trace_id
from fluoroscope.model.summary import (
    CauseEntity,
    HttpSummary,
    RootCause,
    ServiceId,
    TraceSummary,
)
from fluoroscope.model.summarycolumns import SummaryColumns
from fluoroscope.store.batch import BinaryColumn, WriteBatch
from fluoroscope.store.details import COLUMN_KEYS, encode_details
from fluoroscope.store.store import Store
from tests.tracegen import NOW, fleet

_STORES = ("slim", "earlier", "mixed")
_epochs = itertools.count(int(time.time()) - 4 * 3600, 7)  # a window of its own per example
_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_names = st.one_of(_text, st.sampled_from(["api", "AWS::EC2::Instance", "", 'a"b\\c/d\n\t']))
_values = st.one_of(_text, st.integers(-(2**53), 2**53), st.booleans(), st.floats(-1e6, 1e6))


@pytest.fixture(scope="module")
def stores(chdb_dir: Path) -> Iterator[dict[str, Store]]:
    opened = {
        name: Store.open("chdb", chdb_dir, 30, database=f"t_{name}_{uuid.uuid4().hex[:10]}")
        for name in _STORES
    }
    yield opened
    for store in opened.values():
        store.close()


def _earlier_batch() -> WriteBatch:
    """A batch whose summaries' details are written whole, as before."""
    return WriteBatch(summaries=SummaryColumns(orjson.dumps, BinaryColumn()))


@st.composite
def _summaries(draw: st.DrawFn, epoch: int) -> TraceSummary:
    services = draw(st.lists(st.builds(ServiceId, _names, _names, _names), max_size=5))
    index = st.integers(0, len(services) - 1) if services else st.nothing()
    some = st.lists(index, max_size=3, unique=True).map(sorted) if services else st.just([])
    annotations: dict[str, list[tuple[Any, list[int]]]] = {}
    for key, value, ids in draw(st.lists(st.tuples(_names, _values, some), max_size=4)):
        annotations.setdefault(key, []).append((value, ids))
    causes = st.lists(
        st.builds(
            RootCause,
            index,
            st.lists(
                st.builds(
                    CauseEntity,
                    _names,
                    st.lists(st.tuples(_names, _names), max_size=2).map(tuple),
                    st.booleans(),
                    st.one_of(st.none(), st.floats(0, 1)),
                ),
                min_size=1,
                max_size=3,
            ).map(tuple),
            st.booleans(),
            st.booleans(),
        ),
        max_size=2 if services else 0,
    )
    start = epoch + draw(st.floats(0, 5))
    return TraceSummary(
        id=new_trace_id(epoch),
        start_time=start,
        duration=draw(st.sampled_from([0.0, 0.25, 3.5])),
        response_time=draw(st.sampled_from([None, 0.25])),
        has_fault=draw(st.booleans()),
        has_error=False,
        has_throttle=False,
        is_partial=draw(st.booleans()),
        http=draw(st.one_of(st.none(), st.builds(HttpSummary, _names, st.just(200), _names))),
        revision=1,
        services=services,
        entry_point=draw(st.one_of(st.none(), index)) if services else None,
        annotations=annotations,
        users=draw(st.lists(st.tuples(_names, some), max_size=3, unique_by=lambda u: u[0])),
        resource_arns=draw(st.lists(_names, max_size=3)),
        instance_ids=draw(st.lists(_names, max_size=3)),
        availability_zones=draw(st.lists(_names, max_size=2)),
        fault_root_causes=draw(causes),
        error_root_causes=draw(causes),
        response_time_root_causes=draw(causes),
    )


def _read(store: Store, epoch: int) -> list[TraceSummary]:
    return store.summaries(epoch - 1, epoch + 6, limit=1000).summaries


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), count=st.integers(1, 4))
def test_hand_made_summaries_read_back_the_same_whichever_layout(
    stores: dict[str, Store], data: st.DataObject, count: int
) -> None:
    epoch = next(_epochs)
    summaries = [data.draw(_summaries(epoch)) for _ in range(count)]
    for name, store in stores.items():
        first, second = _earlier_batch(), WriteBatch()  # two inserts: two parts
        for at, summary in enumerate(summaries):
            if name == "slim":
                second.add_summary(epoch, summary)
            elif name == "earlier" or at % 4 == 0:  # mixed: earlier alone, slim alone, both
                first.add_summary(epoch, summary)
            elif at % 4 == 1:
                second.add_summary(epoch, summary)
            else:  # revision 1 in one layout, revision 2 (the one read) in the other
                older, newer = (first, second) if at % 4 == 2 else (second, first)
                older.add_summary(epoch, summary)
                newer.add_summary(epoch, replace(summary, revision=2))
        store.write(first)
        store.write(second)
    wanted = sorted(summaries, key=lambda s: (s.start_time, s.id), reverse=True)
    for name in _STORES:
        got = [replace(s, revision=1) for s in _read(stores[name], epoch)]
        assert got == wanted, name


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=fleet(traces=8, batches=4),
    seed=st.integers(0, 2**32),
    earlier_first=st.booleans(),
)
def test_merged_traces_read_back_the_same_whichever_layout(
    stores: dict[str, Store], batches: list[list[dict[str, Any]]], seed: int, earlier_first: bool
) -> None:
    """Ingest's summaries (each batch a new revision of its traces), through each writer
    and both in turn: the same pages. Besides the generated traces, a few of the ingest
    benchmark's (instances, zones, ARNs, accounts), their documents dealt over the
    batches."""
    rng = random.Random(seed)
    for at, doc in enumerate(d for k in range(4) for d in make_trace(rng, NOW + 30 * k)):
        batches[at % len(batches)].append(doc)
    pages: dict[str, list[TraceSummary]] = {}
    ids = sorted({str(doc["trace_id"]) for docs in batches for doc in docs})
    for name, store in stores.items():
        assembler = Assembler(store, clock=lambda: NOW + 600)
        for at, docs in enumerate(batches):
            earlier = name == "earlier" or (name == "mixed" and (at % 2 == 0) == earlier_first)
            with pytest.MonkeyPatch.context() as patched:
                if earlier:  # the writer before: details whole
                    patched.setattr(batch_module, "encode_details", orjson.dumps)
                store.write(assembler.assemble(docs))
        pages[name] = store.summaries(
            NOW - 3600,
            NOW + 3600,
            limit=1000,
            where_clause="trace_id IN {ids:Array(String)}",
            where_params={"ids": ids},
        ).summaries
    assert pages["slim"]
    assert pages["slim"] == pages["earlier"] == pages["mixed"]


def test_slim_details_leave_out_the_columns_and_empty_parts(store: Store) -> None:
    """What a row stores: no part a column holds, nor an empty one; the stored text is
    read back whole."""
    summary = TraceSummary(
        id=new_trace_id(NOW),
        start_time=NOW,
        duration=1.0,
        response_time=1.0,
        has_fault=False,
        has_error=False,
        has_throttle=False,
        is_partial=False,
        http=None,
        revision=1,
        services=[ServiceId("api", "AWS::EC2::Instance", "123456789012")],
        entry_point=0,
        resource_arns=["arn:aws:lambda:us-east-1:1:function:f"],
        instance_ids=["i-1"],
        availability_zones=["us-east-1a"],
    )
    assert orjson.loads(encode_details(summary.details())) == {"e": 0}
    assert not COLUMN_KEYS & orjson.loads(encode_details(summary.details())).keys()
    batch = WriteBatch()
    batch.add_summary(int(NOW), summary)
    store.write(batch)
    stored = store.transport.query_arrow(f"SELECT details FROM `{store.database}`.traces")
    assert stored.column(0).to_pylist() == ['{"e":0}']
    (read,) = store.summaries(NOW - 1, NOW + 1).summaries
    assert read == summary
