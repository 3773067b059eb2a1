"""Migration 22 and the documents stored without the fields their columns hold.

A store written before it (every document whole) answers
the same after migrating, before and after its old and new parts merge; a document
comes back exactly as ingest received it, whichever fields were left out."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.query.graph import service_graph
from fluoroscope.query.traces import get_traces
from fluoroscope.store.batch import BinaryColumn, WriteBatch
from fluoroscope.store.schema import MIGRATIONS, migrate
from fluoroscope.store.spandoc import restore_document, stored_document
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests.support import old_schema


def _trace(now: float, user: str) -> list[dict[str, Any]]:
    trace_id = new_trace_id(now)
    root = new_entity_id()
    return [
        {"name": "api", "id": root, "trace_id": trace_id, "start_time": now, "end_time": now + 0.2,
         "user": user, "http": {"response": {"status": 200}},
         "subsegments": [{"name": "db", "id": new_entity_id(), "start_time": now + 0.01,
                          "end_time": now + 0.1, "namespace": "aws"},
                         {"name": "slow", "id": new_entity_id(), "start_time": int(now),
                          "in_progress": True}]},
        {"name": "worker", "id": new_entity_id(), "trace_id": trace_id, "parent_id": root,
         "start_time": now + 0.05, "end_time": now + 0.15, "fault": True},
        {"type": "subsegment", "name": "streamed", "id": new_entity_id(), "trace_id": trace_id,
         "parent_id": root, "start_time": now + 0.11, "end_time": now + 0.12},
    ]  # fmt: skip


def _written_whole(batch: WriteBatch, docs: list[dict[str, Any]]) -> WriteBatch:
    """``batch`` as the writer before migration 22 made it: each span row's document
    whole (its children stored as rows of their own). The batch's ``doc`` column is
    rebuilt from the documents, not by replacing a function of the merge, which the
    compiled build calls directly."""
    whole: dict[str, dict[str, Any]] = {}
    todo = list(docs)
    while todo:
        entity = todo.pop()
        whole[str(entity["id"])] = _bare(entity)
        todo.extend(entity.get("subsegments", ()))
    column = BinaryColumn()
    for entity_id in batch.spans.id:
        column.append(orjson.dumps(whole[entity_id]))
    batch.spans.doc = column
    return batch


def _graph(store: Store, start: float, end: float) -> list[tuple[Any, ...]]:
    graph = service_graph(store, start, end)
    return sorted(
        (n.name, n.type, n.statistics.total if n.statistics else 0, len(n.edges))
        for n in graph.nodes
    )


def _bare(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "subsegments"}


def test_a_store_written_before_migration_22_answers_the_same_after_it(chdb_dir: Path) -> None:
    transport = ChdbTransport(chdb_dir / "chdb")
    db = old_schema(transport, before=22)
    old = Store(transport, db)
    now = time.time() - 3 * 3600
    old_docs = [doc for k in range(30) for doc in _trace(now + k * 600, f"u{k}")]
    old.write(_written_whole(Assembler(old).assemble(old_docs), old_docs))
    written = transport.query_arrow(f"SELECT doc FROM `{db}`.spans").column(0).to_pylist()
    assert len(written) == 5 * 30 and all('"id"' in doc for doc in written)  # whole
    ids = sorted({str(d["trace_id"]) for d in old_docs})
    window = (now - 7.5 * 60, now + 5 * 3600 + 1)
    found_before, _ = get_traces(old, ids)
    summaries_before = old.summaries(now - 60, now + 30 * 600).summaries
    stats_before = {
        (kind, period): old.stats(kind, *window, period=period).to_pylist()
        for kind in ("node", "edge")
        for period in (None, 600, 3600)
    }
    graph_before = _graph(old, *window)
    assert stats_before[("node", None)] and len(graph_before) >= 3

    assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 22]
    store = Store(transport, db)
    new_docs = _trace(now + 5 * 3600 + 300, "late")  # outside the windows compared
    store.write(Assembler(store).assemble(new_docs))
    stored = transport.query_arrow(
        f"SELECT doc FROM `{db}`.spans WHERE trace_id = {{t:String}}",
        {"t": new_docs[0]["trace_id"]},
    ).column(0)
    assert stored and all('"id"' not in doc.as_py() for doc in stored)  # written without the copies

    expected = {str(d["id"]): _bare(d) for d in old_docs + new_docs}
    for doc in old_docs + new_docs:
        for sub in doc.get("subsegments", ()):
            expected[str(sub["id"])] = sub
    for merged in (False, True):
        if merged:  # old parts (whole documents) and new ones rewritten into one
            for table in ("spans", "traces"):
                transport.execute(f"OPTIMIZE TABLE `{db}`.{table} FINAL")
        found, missing = get_traces(store, ids)
        assert missing == []
        assert [t.id for t in found] == [t.id for t in found_before]
        for trace, earlier in zip(found, found_before, strict=True):
            assert trace.documents == earlier.documents
        rows = store.entities([str(new_docs[0]["trace_id"])])[str(new_docs[0]["trace_id"])]
        for row in rows:  # each entity's own document, byte for byte as received
            assert orjson.dumps(row.document, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
                expected[row.id], option=orjson.OPT_SORT_KEYS
            )
        got = [s.id for s in store.summaries(now - 60, now + 30 * 600).summaries]
        assert got == [s.id for s in summaries_before]
        for (kind, period), rows_before in stats_before.items():
            after = store.stats(kind, *window, period=period).to_pylist()
            for row in after + rows_before:
                row["histogram"] = sorted(row["histogram"])
                row["response_time"] = round(row["response_time"], 9)
            assert after == rows_before, (kind, period)
        assert _graph(store, *window) == graph_before


_FLOAT = st.floats(min_value=1e9, max_value=2e9, allow_nan=False)
_ID = st.text("0123456789abcdef", min_size=16, max_size=16)
_TIME = st.one_of(_FLOAT, st.integers(min_value=10**9, max_value=2 * 10**9), st.just(0.0))


@given(
    eid=_ID,
    trace_id=st.sampled_from(["1-5f84c7a5-0123456789abcdef01234567", "1-00000000-0"]),
    doc_trace=st.one_of(st.none(), st.just("1-5f84c7a5-0123456789abcdef01234567")),
    parent=st.one_of(st.just(""), _ID),
    doc_parent=st.one_of(st.none(), st.just(""), _ID, st.just("same")),
    is_segment=st.booleans(),
    start=_TIME,
    end=st.one_of(st.none(), _TIME),
    in_progress=st.one_of(st.none(), st.booleans()),
    extra=st.dictionaries(st.sampled_from(["name", "type", "aws", "x"]), st.integers(-1000, 1000)),
)
def test_a_stored_document_is_restored_exactly(
    eid: str,
    trace_id: str,
    doc_trace: str | None,
    parent: str,
    doc_parent: str | None,
    is_segment: bool,
    start: float,
    end: float | None,
    in_progress: bool | None,
    extra: dict[str, int],
) -> None:
    own: dict[str, Any] = {"id": eid, **extra, "start_time": start}
    if is_segment and doc_trace is None:  # validated: a top-level document names its trace
        doc_trace = trace_id
    if doc_trace is not None:
        own["trace_id"] = doc_trace
    if doc_parent is not None:
        own["parent_id"] = parent if doc_parent == "same" else doc_parent
    if end is not None:
        own["end_time"] = end
    if in_progress is not None:
        own["in_progress"] = in_progress
    if is_segment:  # a segment is a top-level document: its columns are its own fields
        parent = own.get("parent_id") or ""
        parent = parent if isinstance(parent, str) else ""
    # the columns as ingest writes them (ingest/assemble.py)
    complete = end is not None and not own.get("in_progress")
    column_end = float(end) if complete and end is not None else 0.0
    kept = stored_document(own, trace_id, parent, is_segment, complete)
    text = orjson.dumps(kept)
    back = restore_document(
        orjson.loads(text), eid, trace_id, parent, is_segment, float(start), column_end
    )
    sort = orjson.OPT_SORT_KEYS
    assert orjson.dumps(back, option=sort) == orjson.dumps(own, option=sort)
    assert "id" not in kept
    assert ("start_time" in kept) == (type(start) is not float)  # an integer stays
