"""The corpus of ``corpus.py``: every valid expression parses to its expected tree and
prints back to text that parses to the same tree; every error points where expected."""

from __future__ import annotations

import pytest

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.query.filter import FilterSyntaxError, parse_filter, to_filter, to_sexpr
from tests.query.filter.corpus import ERRORS, VALID


@pytest.mark.parametrize(("expression", "expected"), VALID, ids=[v[0][:60] for v in VALID])
def test_valid_expression_parses_to_expected_tree(expression: str, expected: str) -> None:
    tree = parse_filter(expression)
    assert to_sexpr(tree) == expected
    assert parse_filter(to_filter(tree)) == tree
    assert 0 <= tree.start < tree.end <= len(expression)


@pytest.mark.parametrize(
    ("expression", "position", "fragment"), ERRORS, ids=[repr(e[0])[:60] for e in ERRORS]
)
def test_error_points_at_the_offending_character(
    expression: str, position: int, fragment: str
) -> None:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(expression)
    error = info.value
    assert isinstance(error, InvalidRequest)
    assert error.position == position
    assert fragment in error.reason + error.hint
    first, shown, caret = str(error).split("\n")
    assert first == f"{error.reason} at position {position}{error.hint}"
    assert caret == " " * position + "^"
    assert len(shown) == len(expression)


def test_corpus_covers_every_documented_example() -> None:
    examples = [
        "responsetime > 5",
        "ok !partial duration < 3",
        'service(id(type: "AWS::Lambda::Function")) { error }',
        'group.name = "high_response_time" AND user = "alice"',
        "rootcause.responsetime.entity { last and coverage > 0.8 }",
        'rootcause.fault.entity { last and name = "deserialize" }',
    ]
    assert set(examples) <= {v[0] for v in VALID}
