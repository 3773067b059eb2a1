"""Document validation: liberal where clients differ, precise where they are wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluoroscope.model.documents import MAX_NESTING, validate_document
from fluoroscope.model.errors import InvalidDocument

NOW = 1_800_000_000.0
TRACE = "1-6b49d200-0123456789abcdef01234567"


def _nested(levels: int) -> dict[str, Any]:
    """``levels`` objects, each inside the one before."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


def _doc(**fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": "svc", "id": "0123456789abcdef", "trace_id": TRACE,
                           "start_time": NOW, "end_time": NOW + 1}  # fmt: skip
    doc.update(fields)
    return {k: v for k, v in doc.items() if v is not ...}


@pytest.mark.parametrize(
    "doc",
    [
        _doc(),
        _doc(start_time=int(NOW), end_time=int(NOW) + 1),
        _doc(in_progress=False),
        _doc(end_time=..., in_progress=True),
        _doc(parent_id="fedcba9876543210"),
        _doc(type="subsegment", parent_id="fedcba9876543210", namespace="local"),
        _doc(unknown={"kept": True}, annotations={"aws:api_id": "x", "a.b": 1.5, "ok": False}),
        _doc(
            subsegments=[
                {"name": "s", "id": "1111111111111111", "start_time": NOW, "end_time": NOW}
            ]
        ),
        _doc(cause="2222222222222222"),
        _doc(http={"response": {"status": 0}}),
        _doc(http={"response": {"status": 999}, "request": {"method": "GET"}}),
        _doc(metadata={"default": _nested(MAX_NESTING - 2)}),  # doc, metadata, then these
    ],
)
def test_accepted(doc: dict[str, Any]) -> None:
    validate_document(doc, now=NOW)


@pytest.mark.parametrize(
    ("doc", "code", "fragment"),
    [
        ([], "InvalidDocument", "JSON object"),
        (_doc(trace_id=...), "MissingField", "'trace_id'"),
        (_doc(trace_id="1-6B49D200-0123456789ABCDEF01234567"), "InvalidTraceId", "trace id"),
        (_doc(id=...), "MissingField", "'id'"),
        (_doc(id="0123456789abcde"), "InvalidId", "16 lowercase hex"),
        (_doc(name=""), "InvalidDocument", "non-empty"),
        (_doc(name="x" * 201), "InvalidDocument", "200"),
        (_doc(start_time=True), "InvalidTime", "positive number"),
        (_doc(start_time=NOW * 1000, end_time=NOW * 1000), "InvalidTime", "milliseconds"),
        (_doc(start_time=NOW + 2 * 86400, end_time=NOW + 2 * 86400), "InvalidTime", "future"),
        (_doc(end_time=...), "MissingField", "in_progress"),
        (_doc(end_time=NOW - 1), "InvalidTime", "precedes"),
        (_doc(fault="yes"), "InvalidDocument", "'fault' must be a boolean"),
        (_doc(type="segment"), "InvalidDocument", "'type'"),
        (_doc(type="subsegment"), "MissingField", "parent_id"),
        (_doc(annotations={"k": [1]}), "InvalidDocument", "annotation"),
        (_doc(http="GET"), "InvalidDocument", "'http' must be an object"),
        (_doc(subsegments={}), "InvalidDocument", "array"),
        (_doc(http={"response": {"status": -5}}), "InvalidDocument", "0 to 999, got -5"),
        (_doc(http={"response": {"status": 99_999_999_999}}), "InvalidDocument", "0 to 999"),
        (_doc(http={"response": {"status": "abc"}}), "InvalidDocument", "got 'abc'"),
        (_doc(http={"response": {"status": True}}), "InvalidDocument", "http.response.status"),
        (_doc(http={"response": {"status": 200.0}}), "InvalidDocument", "http.response.status"),
        (_doc(http={"response": []}), "InvalidDocument", "'http.response' must be an object"),
        (_doc(end_time=NOW * 1000), "InvalidTime", "'end_time' looks like milliseconds"),
        (
            _doc(subsegments=[{"name": "s", "id": "zz", "start_time": NOW, "end_time": NOW}]),
            "InvalidId",
            "subsegments[0]",
        ),
    ],
)
def test_rejected_with_a_precise_reason(doc: object, code: str, fragment: str) -> None:
    with pytest.raises(InvalidDocument) as err:
        validate_document(doc, now=NOW)
    assert err.value.code == code
    assert fragment in err.value.message


def test_retention_limit() -> None:
    with pytest.raises(InvalidDocument, match="retention"):
        validate_document(
            _doc(start_time=NOW - 40 * 86400, end_time=NOW - 40 * 86400),
            now=NOW,
            max_age=30 * 86400,
        )


def test_nesting_bomb_is_rejected_not_a_crash() -> None:
    inner: dict[str, Any] = {
        "name": "s",
        "id": "1111111111111111",
        "start_time": NOW,
        "end_time": NOW,
    }
    for _ in range(200):
        inner = {
            "name": "s",
            "id": "1111111111111111",
            "start_time": NOW,
            "end_time": NOW,
            "subsegments": [inner],
        }
    with pytest.raises(InvalidDocument, match="deeper"):
        validate_document(_doc(subsegments=[inner]), now=NOW)


@pytest.mark.parametrize("levels", [MAX_NESTING - 1, 300, 100_000])
def test_deep_metadata_is_refused_at_its_depth_without_recursion(levels: int) -> None:
    """One level past the limit, the serializer's limit and far past the recursion limit:
    each a precise error, with or without the raw text's bracket count to go on."""
    doc = _doc(metadata={"default": _nested(levels)})
    raw = json.dumps(doc).encode() if levels < 1000 else None
    for text in (raw, None):
        with pytest.raises(InvalidDocument, match=f"nested deeper than {MAX_NESTING} levels"):
            validate_document(doc, now=NOW, raw=text)


def test_raw_text_with_few_brackets_skips_the_walk_soundly() -> None:
    doc = _doc(metadata={"default": _nested(MAX_NESTING - 2)})
    validate_document(doc, now=NOW, raw=json.dumps(doc).encode())


json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(["name", "id", "trace_id", "start_time", "end_time",
                                        "in_progress", "subsegments", "annotations", "type",
                                        "parent_id", "http"]), json_values))  # fmt: skip
def test_any_json_is_accepted_or_rejected_cleanly(doc: dict[str, Any]) -> None:
    error: InvalidDocument | None = None
    try:
        validate_document(doc, now=NOW)
    except InvalidDocument as exc:
        error = exc
    assert error is None or error.message
