"""validate_document's fast path gives the reference checks' verdicts, to the letter.

``validate_document`` accepts the common document by checks of its own (plain dicts,
floats and strings, no error path) and hands every other one to the reference checks,
which decide and word the refusal. These tests feed both the same mixed good and bad
documents - mutations of well-formed segments, at the edges of every limit (times at the
retention limit and the clock-skew allowance, depth, nesting, lengths, patterns) - and
compare the verdicts, codes, messages and accepted documents. (They were written for the
msgspec batch check the fast path replaced, against the same reference.)
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from benchmarks.ingest import make_trace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluoroscope.model.documents import (
    MAX_DEPTH,
    MAX_FUTURE_SECONDS,
    MAX_NESTING,
    _good_document,
    _validate_reference,
    brackets,
    validate_document,
)
from fluoroscope.model.errors import InvalidDocument

RETENTION = 30 * 86_400.0
TRACE = "1-6b49d200-0123456789abcdef01234567"


def _verdicts(
    check: Callable[[Any, bytes], None], docs: list[Any], raws: list[bytes]
) -> list[InvalidDocument | None]:
    out: list[InvalidDocument | None] = []
    for doc, raw in zip(docs, raws, strict=True):
        try:
            check(doc, raw)
        except InvalidDocument as exc:
            out.append(exc)
        else:
            out.append(None)
    return out


def _shape(verdict: InvalidDocument | None) -> tuple[str, str, str] | None:
    return None if verdict is None else (verdict.code, verdict.message, verdict.doc_id)


def _assert_same(raws: list[bytes], now: float, max_age: float | None) -> list[Any]:
    """Both over ``raws`` (each parsed as the pipeline parses it; what orjson
    refuses never reaches validation); returns the accepted documents."""
    parsed = []
    for raw in raws:
        try:
            parsed.append((orjson.loads(raw), raw))
        except orjson.JSONDecodeError:
            continue
    docs = [doc for doc, _ in parsed]
    raws = [raw for _, raw in parsed]
    fast = _verdicts(
        lambda doc, raw: validate_document(doc, now=now, max_age=max_age, raw=raw), docs, raws
    )
    today = _verdicts(lambda doc, raw: _validate_reference(doc, now, max_age, raw), docs, raws)
    assert [_shape(v) for v in fast] == [_shape(v) for v in today]
    assert all(type(v) is InvalidDocument for v in fast if v is not None)
    accepted = [doc for doc, v in zip(docs, fast, strict=True) if v is None]
    assert accepted == [doc for doc, v in zip(docs, today, strict=True) if v is None]
    return accepted


def _entity(now: float, eid: str, **fields: Any) -> dict[str, Any]:
    entity: dict[str, Any] = {"name": "svc", "id": eid, "start_time": now - 5, "end_time": now - 4}
    entity.update(fields)
    return entity


def _chain(now: float, depth: int) -> dict[str, Any]:
    """A segment whose subsegments nest ``depth`` deep."""
    doc: dict[str, Any] = {"name": "leaf", "id": "1111111111111111", "start_time": now - 5,
                           "end_time": now - 4}  # fmt: skip
    for _ in range(depth - 1):
        doc = _entity(now, "2222222222222222", subsegments=[doc])
    return _entity(now, "0123456789abcdef", trace_id=TRACE, subsegments=[doc] if depth else None)


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


NOW = 1_800_000_000.5


@pytest.mark.parametrize("depth", [0, 1, MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, 40])
def test_subsegment_depth_limit_is_today_s(depth: int) -> None:
    doc = _chain(NOW, depth)
    if depth == 0:
        del doc["subsegments"]
    accepted = _assert_same([orjson.dumps(doc)], NOW, RETENTION)
    assert accepted == ([doc] if depth <= MAX_DEPTH else [])


@pytest.mark.parametrize("levels", [MAX_NESTING - 3, MAX_NESTING - 2, MAX_NESTING - 1, 300])
def test_json_nesting_limit_is_today_s(levels: int) -> None:
    doc = _entity(NOW, "0123456789abcdef", trace_id=TRACE, metadata={"d": _nested(levels)})
    accepted = _assert_same([json.dumps(doc).encode()], NOW, RETENTION)
    assert accepted == ([doc] if levels <= MAX_NESTING - 2 else [])


def test_a_batch_of_good_documents_is_accepted_whole() -> None:
    docs = [_chain(NOW, depth) for depth in range(1, 5)]
    raws = [orjson.dumps(doc) for doc in docs]
    assert _assert_same(raws, NOW, RETENTION) == docs


_IDS = ["0123456789abcdef", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef\n",
        "0123456789abcdefa", "", 5, None, ["0123456789abcdef"]]  # fmt: skip
_TRACE_IDS = [TRACE, TRACE.upper(), TRACE + "\n", TRACE[:-1], "", 7, None]


def _time_values(now: float, max_age: float | None) -> list[Any]:
    edges = [now + MAX_FUTURE_SECONDS + d for d in (-7200.0, -3600.0, -1.0, -1e-6, 0.0, 1e-3, 1.0)]
    if max_age is not None:
        edges += [now - max_age + d for d in (-1.0, -1e-3, 0.0, 1e-3, 1.0, 3599.0, 3601.0, 7200.0)]
    return [*edges, now, int(now), now - 1, now - 5, now - 4, now - 5.5, now - 5 - 1e-6, now * 1000, 1e11,
            1e11 - 1, 0, 0.0, -1.0, 1, True, False, "1", None, [now], 2**63, 10**22]  # fmt: skip


def _times(now: float, max_age: float | None) -> st.SearchStrategy[Any]:
    return st.sampled_from(_time_values(now, max_age)) | st.floats(
        min_value=-1e12, max_value=1e12, allow_nan=False
    )


_OBJECTS = [{}, {"a": 1}, {"default": {"x": [1, {"y": None}]}}, None, [], "x", 0, True]
_HTTP: list[Any] = [
    {},
    {"request": {"method": "GET"}},
    *({"response": {"status": s}} for s in (0, 200, 999, 1000, -1, 200.0, True, None, "200")),
    {"response": None},
    {"response": []},
    {"response": {}},
    "GET",
    None,
    [],
]
_ANNOTATIONS = [{}, {"k": 1}, {"k": "v", "n": 1.5, "b": False}, {"k": [1]}, {"k": None},
                {"k": {}}, {"k": 2**70}, None, [], "x"]  # fmt: skip
_NAMES = ["svc", "", "  ", "\x1c\x1d", "\u3000", " a ", "x" * 200, "x" * 201, "\U0001f600" * 200,
          "\U0001f600" * 201, 5, None, True, ["svc"]]  # fmt: skip
_FLAGS = [True, False, None, 0, 1, "true"]


def _pools(now: float, max_age: float | None) -> dict[str, list[Any]]:
    """Values to give each field: good ones, and bad ones just past each limit."""
    times = _time_values(now, max_age)
    return {
        "name": _NAMES,
        "id": _IDS,
        "parent_id": _IDS,
        "trace_id": _TRACE_IDS,
        "type": ["subsegment", "segment", None, 1],
        "start_time": times,
        "end_time": times,
        "in_progress": _FLAGS,
        "error": _FLAGS,
        "fault": _FLAGS,
        "throttle": _FLAGS,
        "http": _HTTP,
        "aws": _OBJECTS,
        "sql": _OBJECTS,
        "metadata": _OBJECTS,
        "service": _OBJECTS,
        "annotations": _ANNOTATIONS,
        "cause": ["2222222222222222", {}, {"exceptions": []}, 5, None, []],
        "subsegments": [[], None, {}, [5], [_entity(now, "3333333333333333")], [None]],
        "namespace": ["remote", "aws", None, 3],
    }


@pytest.mark.parametrize("max_age", [RETENTION, None])
@pytest.mark.parametrize("where", ["document", "subsegment", "streamed", "in_progress"])
def test_every_single_change_gets_today_s_verdict(where: str, max_age: float | None) -> None:
    """Each value of every pool, and each field's absence, in turn, in one batch."""
    raws: list[bytes] = []
    for key, values in _pools(NOW, max_age).items():
        for value in [*values, ...]:
            doc = _chain(NOW, 2)
            if where == "streamed":
                doc.update(type="subsegment", parent_id="fedcba9876543210")
            elif where == "in_progress":
                doc.pop("end_time")
                doc["in_progress"] = True
            entity = doc["subsegments"][0] if where == "subsegment" else doc
            entity.pop(key, None)
            if value is not ...:
                entity[key] = value
            raws.append(json.dumps(doc).encode())
    accepted = _assert_same(raws, NOW, max_age)
    assert 0 < len(accepted) < len(raws)


@st.composite
def _mutated(draw: st.DrawFn, now: float, max_age: float | None) -> Any:
    """A well-formed document (a segment or a streamed subsegment, with subsegments)
    with zero to three fields changed, added or removed, anywhere in it."""
    kind = draw(st.sampled_from(["segment", "subsegment", "in_progress"]))
    doc = _chain(now, draw(st.integers(0, 3)))
    if "subsegments" in doc and doc["subsegments"] is None:
        del doc["subsegments"]
    if kind == "subsegment":
        doc.update(type="subsegment", parent_id="fedcba9876543210")
    elif kind == "in_progress":
        doc.pop("end_time")
        doc["in_progress"] = True
    entities = [doc]
    stack = list(doc.get("subsegments") or [])
    while stack:
        entity = stack.pop()
        entities.append(entity)
        stack.extend(entity.get("subsegments") or [])
    pools = _pools(now, max_age)
    fields = {key: st.sampled_from(values) for key, values in pools.items()}
    fields["start_time"] = fields["end_time"] = _times(now, max_age)
    for _ in range(draw(st.integers(0, 3))):
        entity = draw(st.sampled_from(entities))
        key = draw(st.sampled_from(sorted(fields)))
        if draw(st.booleans()) and key in entity:
            del entity[key]
        else:
            entity[key] = draw(fields[key])
    return draw(st.sampled_from([doc, doc, doc, doc, [doc], "text", 3, None]))


@st.composite
def _batches(draw: st.DrawFn) -> tuple[list[bytes], float, float | None]:
    now = draw(st.floats(min_value=1.6e9, max_value=2.0e9))
    max_age = draw(st.sampled_from([RETENTION, None, 3600.0]))
    docs = draw(st.lists(_mutated(now, max_age), min_size=1, max_size=8))
    raws = [json.dumps(doc, indent=draw(st.sampled_from([None, 1]))).encode() for doc in docs]
    return raws, now, max_age


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(_batches())
def test_same_verdicts_and_documents_as_today_for_mixed_batches(
    batch: tuple[list[bytes], float, float | None],
) -> None:
    raws, now, max_age = batch
    _assert_same(raws, now, max_age)


def test_the_traffic_mix_is_decided_by_the_fast_path() -> None:
    """Else the comparisons above would compare the reference with itself."""
    rng = random.Random(3)
    docs = [doc for i in range(300) for doc in make_trace(rng, NOW - 30 + i * 0.02)]
    assert len(docs) > 300
    fast = [_good_document(orjson.loads(orjson.dumps(doc)), NOW, NOW - RETENTION) for doc in docs]
    assert all(fast)


@pytest.mark.parametrize("where", ["document", "subsegment"])
def test_what_the_fast_path_leaves_gets_the_reference_verdict(where: str) -> None:
    """Values only the reference decides: int times, Mappings that are not dicts, str
    subclasses, no JSON text (nesting walked)."""

    class Text(str):
        pass

    changes: list[tuple[str, Any]] = [
        ("start_time", int(NOW) - 5),
        ("end_time", int(NOW) - 3),
        ("http", MappingProxyType({"response": {"status": 200}})),
        ("http", {"response": MappingProxyType({"status": 1000})}),
        ("metadata", MappingProxyType({})),
        ("annotations", MappingProxyType({"k": 1})),
        ("annotations", {"k": Text("v")}),
        ("cause", MappingProxyType({})),
        ("name", Text("svc")),
        ("id", Text("0123456789abcdef")),
        ("parent_id", Text("0123456789abcdef")),
        ("error", None),
        ("in_progress", 1),
    ]
    for key, value in changes:
        doc = _chain(NOW, 2)
        entity = doc["subsegments"][0] if where == "subsegment" else doc
        entity[key] = value
        for candidate in (doc, MappingProxyType(doc)):
            for raw in (None, b"{}"):
                got = _verdicts(
                    lambda d, r: validate_document(d, now=NOW, max_age=RETENTION, raw=r or None),
                    [candidate],
                    [raw or b""],
                )
                want = _verdicts(
                    lambda d, r: _validate_reference(d, NOW, RETENTION, r or None),
                    [candidate],
                    [raw or b""],
                )
                assert [_shape(v) for v in got] == [_shape(v) for v in want], (key, value)


@settings(max_examples=300)
@given(st.lists(st.sampled_from([b"{", b"[", b"]", b"}", b"a", b'"'])).map(b"".join))
def test_brackets_are_counted_exactly(raw: bytes) -> None:
    assert brackets(raw) == raw.count(b"{") + raw.count(b"[")
