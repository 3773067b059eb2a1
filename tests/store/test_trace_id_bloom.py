"""Migration 35: a bloom filter on the spans' trace id, so a lookup by trace id skips
the parts whose key range holds the id but whose rows do not.

What it saves is the engine's CPU per lookup (``benchmarks/trace_lookup.py``); here, that
a store of every age carries the index, that the engine uses it to pass over parts (its
plan says so), and that what a store held before reads the same after."""

from __future__ import annotations

import time
from pathlib import Path

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id
from fluoroscope.query.traces import get_traces
from fluoroscope.store.layoutschema import TRACE_ID_BLOOM
from fluoroscope.store.schema import MIGRATIONS, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport, Transport
from tests.support import old_schema, two_entity_traces


def _index(transport: Transport, db: str) -> list[tuple[str, str, int]]:
    return [
        (row["type_full"], row["expr"], row["granularity"])
        for row in transport.query_arrow(
            "SELECT type_full, expr, granularity FROM system.data_skipping_indices "
            "WHERE database = {db:String} AND table = 'spans' AND name = {name:String}",
            {"db": db, "name": TRACE_ID_BLOOM},
        ).to_pylist()
    ]


def _parts_read(store: Store, trace_id: str) -> list[str]:
    """The plan's part counts for a lookup of ``trace_id``, by index (``Parts: read/all``)."""
    plan = store.transport.query_arrow(
        f"EXPLAIN indexes = 1 SELECT id FROM `{store.database}`.spans "
        "WHERE trace_id = {id:String}",
        {"id": trace_id},
    ).column(0)
    return [line.strip() for line in plan.to_pylist() if line.strip().startswith(("Name", "Parts"))]


def test_a_new_store_skips_the_parts_that_do_not_hold_a_trace(store: Store) -> None:
    assert _index(store.transport, store.database) == [("bloom_filter(0.01)", "trace_id", 1)]
    docs = two_entity_traces(time.time() - 60, 3)  # a second apart
    first, middle, last = sorted({str(d["trace_id"]) for d in docs})
    assembler = Assembler(store)
    store.write(assembler.assemble([d for d in docs if d["trace_id"] != middle]))
    store.write(assembler.assemble([d for d in docs if d["trace_id"] == middle]))
    # the first part's key range holds the middle trace's id, and any of its second
    absent = middle[:11] + "0" * 24
    plan = _parts_read(store, absent)
    assert plan[plan.index("Name: " + TRACE_ID_BLOOM) - 1 :] == [
        "Parts: 1/2",  # the primary key's: the first part
        "Name: " + TRACE_ID_BLOOM,
        "Parts: 0/1",
    ]
    plan = _parts_read(store, middle)
    assert plan[plan.index("Name: " + TRACE_ID_BLOOM) - 1 :] == [
        "Parts: 2/2",
        "Name: " + TRACE_ID_BLOOM,
        "Parts: 1/2",
    ]
    assert store.entities([absent]) == {}
    assert [r.id for r in store.entities([middle])[middle]] == sorted(
        (str(d["id"]) for d in docs if d["trace_id"] == middle),
        key=lambda i: next(d["start_time"] for d in docs if d["id"] == i),
    )
    assert first < middle < last


def test_a_store_made_before_migration_35_takes_it_and_reads_the_same(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    try:
        db = old_schema(transport, before=35)
        assert _index(transport, db) == []
        old = Store(transport, db)
        docs = two_entity_traces(time.time() - 600, 20)
        old.write(Assembler(old).assemble(docs))
        ids = [*sorted({str(d["trace_id"]) for d in docs}), new_entity_id() * 2]
        found_before, missing_before = get_traces(old, ids)
        assert len(found_before) == 20 and len(missing_before) == 1

        assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 35]
        assert _index(transport, db) == [("bloom_filter(0.01)", "trace_id", 1)]
        assert get_traces(Store(transport, db), ids) == (found_before, missing_before)
    finally:
        transport.close()
