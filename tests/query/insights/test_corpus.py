"""The corpus of ``corpus.py``: every valid query prints to its canonical text, which
parses back to the same tree; every error points where expected, parsing or compiling."""

from __future__ import annotations

import pytest

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.query.insights import InsightsSyntaxError, compile, parse, to_text
from tests.query.insights.corpus import COMPILE_ERRORS, ERRORS, VALID


@pytest.mark.parametrize(("query", "canonical"), VALID, ids=[v[0][:60] for v in VALID])
def test_valid_query_prints_canonically_and_round_trips(query: str, canonical: str) -> None:
    tree = parse(query)
    assert to_text(tree) == canonical
    assert parse(canonical) == tree
    assert 0 <= tree.start < tree.end <= len(query)
    compile(tree, database="db", groups=["g"], start_ms=0, end_ms=1)  # compiles too


def _check_error(error: InsightsSyntaxError, query: str, position: int, fragment: str) -> None:
    assert isinstance(error, InvalidRequest)
    assert error.start == position, error.reason
    assert error.start <= error.end <= len(query)
    assert fragment in error.reason
    first, _shown, caret = str(error).split("\n")
    assert first == f"{error.reason} at position {position}"
    assert caret.endswith("^")


@pytest.mark.parametrize(
    ("query", "position", "fragment"), ERRORS, ids=[repr(e[0])[:60] for e in ERRORS]
)
def test_syntax_error_points_at_the_offending_character(
    query: str, position: int, fragment: str
) -> None:
    with pytest.raises(InsightsSyntaxError) as info:
        parse(query)
    _check_error(info.value, query, position, fragment)


@pytest.mark.parametrize(
    ("query", "position", "fragment"), COMPILE_ERRORS, ids=[e[0][:60] for e in COMPILE_ERRORS]
)
def test_compile_error_points_at_the_construct(query: str, position: int, fragment: str) -> None:
    with pytest.raises(InsightsSyntaxError) as info:
        compile(parse(query), database="db", groups=["g"], start_ms=0, end_ms=1)
    _check_error(info.value, query, position, fragment)


def test_every_valid_spelling_of_the_reference_is_covered() -> None:
    documented = [
        "fields @timestamp, @message, abs(a-b) as d, concat(a,'-',b) as k",
        'parse @message "[*] * The error was: *" as level, config, exception',
        "parse @message /user=(?<user>\\S+), latency=(?<lat>\\d+)/",
        "sort by f desc",
    ]
    assert set(documented) <= {v[0] for v in VALID}
