"""Today's merge reads each field of an entity once and hands the values on
(``Assembler._explode`` to ``TraceState.merge``, ``http_status``, ``call_target``,
``trimmed_document``); it must make exactly what the merge made before, when each
function read the fields it needed itself (``merge_reference.py``, a frozen copy): the
same span rows (stored documents byte for byte), the same graph statistics, the same
trace summaries and trace states (records, pending calls and edges, what is watched).

Documents: the ingest benchmark's traces as clients send them (in-progress copies
first, subsegments streamed on their own, re-sends, in any order), entities given the
shapes that take other branches (integer times, ``in_progress`` next to an end time,
namespaces, origins and names of other types, odd http, aws, sql and cause blocks,
annotations of every type, AWS calls by resource, empty subsegment lists), and hostile
documents (``tests/fuzzdocs.py``), each merged only where validation accepts it, as
ingest does.
"""

from __future__ import annotations

import contextlib
import copy
import random
import time
from typing import Any

import orjson
from benchmarks.ingest import make_trace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.documents import validate_document
from fluoroscope.model.errors import InvalidDocument
from fluoroscope.model.stats import StatsBatch
from fluoroscope.model.summarycolumns import SummaryColumns
from fluoroscope.model.tracestate import TraceState
from fluoroscope.store.batch import BinaryColumn, StoredTrace, WriteBatch
from fluoroscope.store.details import encode_details
from tests.fuzzdocs import hostile_documents
from tests.ingest import merge_reference
from tests.ingest.nativediff import _variants
from tests.model.test_summary_unchanged import _columns

_NOW = float(int(time.time()))


class _Empty:
    """A store that holds nothing: a trace taken for maybe stored is reloaded empty."""

    def load_traces(self, trace_ids: Any) -> dict[str, StoredTrace]:
        return {}


def _odd(rng: random.Random, entity: dict[str, Any]) -> None:
    """Give ``entity`` (in place) a shape that takes another branch somewhere."""
    roll = rng.randrange(16)
    if roll == 0:
        entity["start_time"] = int(entity["start_time"])
        if "end_time" in entity:
            entity["end_time"] = int(entity["end_time"]) + 1
    elif roll == 1 and "end_time" in entity:
        entity["in_progress"] = rng.choice((True, False))
    elif roll == 2:
        entity["namespace"] = rng.choice((7, "local", "aws", "remote", None, ["aws"]))
    elif roll == 3:
        entity["origin"] = rng.choice((3, "", "AWS::Lambda", None))
    elif roll == 4:
        entity["http"] = rng.choice(
            (
                {},
                {"response": {}},
                {"response": {"status": 0}},
                {"response": {"status": 429}},
                {"request": {"method": 1, "url": None, "user_agent": "x", "client_ip": 5}},
                {"request": [], "response": {"status": 503}},
            )
        )
    elif roll == 5:
        entity["sql"] = {"url": "postgres://db/x", "sanitized_query": "SELECT 1"}
    elif roll == 6:
        entity["cause"] = rng.choice(
            (
                {"exceptions": [{"type": "E", "message": "m"}, "not an object", {"type": 3}]},
                {"exceptions": "none"},
                "0123456789abcdef",
            )
        )
    elif roll == 7:
        entity["annotations"] = {"b": True, "i": 3, "f": 1.5, "s": "x", "": "empty key"}
    elif roll == 8:
        entity["aws"] = rng.choice(
            (
                {"account_id": "123456789012", "ec2": {"instance_id": 5}},
                {"account_id": None, "ec2": "i-1"},
                {"table_names": ["users"]},
                {"table_names": ["a", "b"], "resource_names": ["c"]},
                {"bucket_name": "arn:aws:s3:::logs"},
                {"queue_url": "https://sqs/123/jobs/"},
                {"topic_arn": "arn:aws:sns:us-east-1:1:alerts"},
            )
        )
    elif roll == 9:
        entity["namespace"] = "aws"
        entity["name"] = rng.choice(("S3", "sqs", "SNS", "Dynamo DB", "lambda", "Foo bar", "x"))
    elif roll == 10:
        entity["user"] = rng.choice(("alice", 7))
        entity["resource_arn"] = rng.choice(("arn:aws:lambda:f", None))
    elif roll == 11:
        for flag in ("error", "fault", "throttle"):
            if rng.random() < 0.5:
                entity[flag] = rng.choice((True, False))
    elif roll == 12 and not entity.get("subsegments"):
        entity["subsegments"] = []
    elif roll == 13:
        entity["name"] = "λ-handler " + "x" * rng.randrange(3)
    elif roll == 14:
        entity["end_time"] = entity["start_time"]
        entity.pop("in_progress", None)


def _entities(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out, stack = [], [doc]
    while stack:
        entity = stack.pop()
        out.append(entity)
        children = entity.get("subsegments")
        if isinstance(children, list):
            stack.extend(c for c in children if isinstance(c, dict))
    return out


def _documents(seed: int, hostile: list[bytes]) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = []
    for i in range(25):
        docs.extend(_variants(rng, make_trace(rng, _NOW - 30 + i * 0.05)))
    docs = [copy.deepcopy(doc) for doc in docs]
    for doc in docs:
        for entity in _entities(doc):
            if rng.random() < 0.3:
                _odd(rng, entity)
    for text in hostile:
        with contextlib.suppress(orjson.JSONDecodeError):
            docs.append(orjson.loads(text))
    rng.shuffle(docs)
    accepted = []
    for doc in docs:
        try:
            validate_document(doc, now=_NOW)
        except InvalidDocument:
            continue
        # through JSON, as ingest parses them (documents share no objects then)
        accepted.append(orjson.loads(orjson.dumps(doc)))
    return accepted


def _rows(batch: WriteBatch) -> list[tuple[Any, ...]]:
    spans = batch.spans
    columns = (
        spans.ts, spans.trace_id, spans.id, spans.parent_id, spans.is_segment, spans.name,
        spans.origin, spans.namespace, spans.start_time, spans.end_time, spans.flags,
        spans.http_status,
    )  # fmt: skip
    return [(*(column[i] for column in columns), spans.doc[i]) for i in range(len(spans))]


def _same(left: list[tuple[Any, ...]], right: list[tuple[Any, ...]]) -> bool:
    """Equal rows, floats by their ``repr`` (-0.0 is not 0.0, NaN is itself)."""
    return repr(left) == repr(right) and [tuple(map(type, r)) for r in left] == [
        tuple(map(type, r)) for r in right
    ]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    batch=st.integers(1, 80),
    hostile=st.lists(hostile_documents(), max_size=6),
)
def test_merge_makes_what_it_made_when_each_function_read_its_own_fields(
    seed: int, batch: int, hostile: list[bytes]
) -> None:
    docs = _documents(seed, hostile)
    assembler = Assembler(_Empty(), clock=lambda: _NOW, stored_until=int(_NOW) - 3_600)
    states: dict[str, TraceState] = {}
    for start in range(0, len(docs), batch):
        chunk = docs[start : start + batch]
        made = assembler.assemble(chunk)
        stats = StatsBatch()
        rows: list[tuple[Any, ...]] = []
        for doc in chunk:
            trace_id = doc["trace_id"]
            state = states.get(trace_id)
            if state is None:  # its time as the assembler chose it (not what changed)
                state = states[trace_id] = TraceState(trace_id, assembler._cache[trace_id].ts)
            rows.extend(merge_reference.explode(doc, state, stats))
        details = BinaryColumn()
        summaries = SummaryColumns(encode_details, details)  # as a batch's
        for trace_id in dict.fromkeys(doc["trace_id"] for doc in chunk):  # as finish() goes
            states[trace_id].revision += 1
            states[trace_id].summarize(summaries)
        assert _same(_rows(made), rows)
        assert _columns(made.summaries) == _columns(summaries)
        made_details = made.summaries.details
        assert isinstance(made_details, BinaryColumn)
        assert [made_details[i] for i in range(len(made_details))] == [
            details[i] for i in range(len(details))
        ]
        assert made.stats is not None
        assert made.stats.node_columns() == stats.node_columns()
        assert made.stats.edge_columns() == stats.edge_columns()
    assert dict(assembler._cache) == states
