"""The X-Amzn-Trace-Id header (model/trace_header.py), including property tests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.model.trace_header import (
    TraceHeader,
    parse_trace_header,
    parse_traceparent,
    to_traceparent,
)

ROOT = "1-5759e988-bd862e3fe1be46a994272793"


def test_reference_examples() -> None:
    h = parse_trace_header(f"Root={ROOT};Sampled=1")
    assert h == TraceHeader(root=ROOT, sampled="1")
    h = parse_trace_header(f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1")
    assert h is not None
    assert h.parent == "53995c3f42cd8ad8"
    self_first = (
        "Self=1-67891233-12456789abcdef012345678;Root=1-67891233-abcdef012345678912345678;"
        "CalledFrom=app"
    )
    h = parse_trace_header(self_first)
    assert h is not None
    assert h.root == "1-67891233-abcdef012345678912345678"
    assert h.extra == (("Self", "1-67891233-12456789abcdef012345678"), ("CalledFrom", "app"))
    assert h.sampled is None
    assert h.parent is None
    h = parse_trace_header(f"Root={ROOT};Sampled=1;Lineage=a87bd80c:1|68fd508a:5|c512fbe3:2")
    assert h is not None
    assert h.get("Lineage") == "a87bd80c:1|68fd508a:5|c512fbe3:2"
    assert h.to_header() == f"Root={ROOT};Sampled=1;Lineage=a87bd80c:1|68fd508a:5|c512fbe3:2"


def test_tolerates_spaces_case_and_trailing_semicolon() -> None:
    h = parse_trace_header(
        f" root = {ROOT.upper().replace('1-', '1-', 1)} ; parent=53995C3F42CD8AD8 ; sampled=? ;"
    )
    assert h == TraceHeader(root=ROOT, parent="53995c3f42cd8ad8", sampled="?")
    assert h.to_header() == f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=?"
    assert parse_trace_header(f"Root={ROOT}; ;\tSampled=1") == TraceHeader(root=ROOT, sampled="1")
    assert parse_trace_header(f"Root={ROOT}".encode()) == TraceHeader(root=ROOT)


def test_malformed_headers_are_absent() -> None:
    for bad in (
        None,
        "",
        ";",
        "Sampled=1",  # no Root
        "Root=1-abc-def",
        f"Root={ROOT};Parent=xyz",
        f"Root={ROOT};Sampled=2",
        f"Root={ROOT};Sampled",  # a field without '='
        f"Root={ROOT};Root={ROOT}",
        f"Root={ROOT};=x",
        f"Root={ROOT};Foo=" + "x" * 9000,
    ):
        assert parse_trace_header(bad) is None, bad


def test_formats_without_spaces_in_canonical_order() -> None:
    h = TraceHeader(
        root=ROOT, parent="53995c3f42cd8ad8", sampled="1", extra=(("CalledFrom", "app"),)
    )
    assert str(h) == f"Root={ROOT};Parent=53995c3f42cd8ad8;Sampled=1;CalledFrom=app"


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_parse_never_raises(value: str | bytes) -> None:
    parsed = parse_trace_header(value)
    if parsed is not None:
        assert parse_trace_header(parsed.to_header()) == parsed


_token = st.text(
    alphabet=st.characters(
        blacklist_characters=";= \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0",
        blacklist_categories=("Zs", "Zl", "Zp", "Cs"),
    ),
    min_size=1,
    max_size=20,
).filter(lambda k: k.strip() == k and k.lower() not in ("root", "parent", "sampled"))


_value = st.text(
    alphabet=st.characters(
        blacklist_characters="; \t\r\n\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0",
        blacklist_categories=("Zs", "Zl", "Zp", "Cs"),
    ),
    max_size=20,
)  # values may contain "=" (base64 padding) and may be empty


@given(
    st.builds(
        TraceHeader,
        root=st.builds(lambda: new_trace_id()),
        parent=st.one_of(st.none(), st.builds(new_entity_id)),
        sampled=st.sampled_from([None, "1", "0", "?"]),
        extra=st.lists(st.tuples(_token, _value), max_size=4).map(tuple),
    )
)
def test_format_then_parse_round_trips(header: TraceHeader) -> None:
    assert parse_trace_header(header.to_header()) == header
    assert not header.to_header().endswith(";")


def test_w3c_traceparent_mapping() -> None:
    value = to_traceparent(ROOT, "53995c3f42cd8ad8", True)
    assert value == "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
    assert parse_traceparent(value) == TraceHeader(
        root=ROOT, parent="53995c3f42cd8ad8", sampled="1"
    )
    assert to_traceparent(ROOT, "53995c3f42cd8ad8", False).endswith("-00")  # type: ignore[union-attr]
    assert to_traceparent("bad", "53995c3f42cd8ad8", True) is None
    for bad in (None, "", "ff-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01",
                "00-" + "0" * 32 + "-53995c3f42cd8ad8-01", "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01-x",
                "00-xyz"):  # fmt: skip
        assert parse_traceparent(bad) is None


@given(st.one_of(st.text(max_size=100), st.binary(max_size=100)))
def test_parse_traceparent_never_raises(value: str | bytes) -> None:
    parse_traceparent(value)
