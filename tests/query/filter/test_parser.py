"""Targeted tests of the filter front half: messages, positions, limits, the entity
selector, the tree's guarantees and the printer's edge cases."""

from __future__ import annotations

import dataclasses

import pytest

from fluoroscope.query.filter import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_SELECTOR_LENGTH,
    MAX_TOKENS,
    And,
    Annotation,
    Compare,
    Exists,
    FilterSyntaxError,
    Flag,
    Keyword,
    Not,
    Or,
    RootCauseJson,
    Service,
    ServiceRef,
    parse_entity_selector,
    parse_filter,
    to_filter,
    to_sexpr,
)
from fluoroscope.query.filter.keywords import COMPOUND_SCOPES, KEYWORD_TYPES, SCOPE_KEYWORDS
from fluoroscope.query.filter.tokens import TokenKind, tokenize


def _error(expression: str, **limits: int) -> FilterSyntaxError:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(expression, **limits)
    return info.value


def test_message_names_expected_and_found_with_a_caret() -> None:
    assert str(_error('responsetime > "slow"')) == (
        "expected a number after 'responsetime >', found \"slow\" at position 15\n"
        'responsetime > "slow"\n'
        "               ^"
    )


def test_unknown_keyword_suggests_the_closest() -> None:
    error = _error("http.stauts = 200")
    assert str(error).startswith(
        "unknown keyword 'http.stauts' at position 0; did you mean 'http.status'?\n"
    )


def test_nodes_record_their_source_span() -> None:
    text = "ok !partial duration < 3"
    tree = parse_filter(text)
    assert isinstance(tree, And)
    spans = [text[item.start : item.end] for item in tree.items]
    assert spans == ["ok", "!partial", "duration < 3"]
    compare = tree.items[2]
    assert isinstance(compare, Compare)
    assert text[compare.field.start : compare.field.end] == "duration"


def test_service_span_covers_the_body() -> None:
    text = '  service(id(name: "a")) { fault }  '
    tree = parse_filter(text)
    assert isinstance(tree, Service)
    assert text[tree.start : tree.end] == 'service(id(name: "a")) { fault }'
    assert tree.ref is not None
    assert text[tree.ref.start : tree.ref.end] == 'id(name: "a")'


def test_length_limit() -> None:
    at_limit = ("ok" + " " * (MAX_LENGTH - 4) + "ok")[:MAX_LENGTH]
    assert parse_filter(at_limit) == And((Flag("ok"), Flag("ok")))
    error = _error(at_limit + " ")
    assert error.position == MAX_LENGTH
    assert f"the limit is {MAX_LENGTH}" in error.reason


def test_depth_limit_counts_parentheses_braces_and_negations() -> None:
    assert parse_filter("(" * MAX_DEPTH + "fault" + ")" * MAX_DEPTH) == Flag("fault")
    assert parse_filter("!" * MAX_DEPTH + "fault") is not None
    error = _error("(" * (MAX_DEPTH + 1) + "fault" + ")" * (MAX_DEPTH + 1))
    assert error.position == MAX_DEPTH
    assert "deeper than" in error.reason
    assert _error("!" * (MAX_DEPTH + 1) + "fault").position == MAX_DEPTH
    nested = "(" * (MAX_DEPTH - 1) + 'service("a") { fault }' + ")" * (MAX_DEPTH - 1)
    assert parse_filter(nested) == Service(ServiceRef("a"), Flag("fault"))
    deeper = "(" + nested + ")"
    assert _error(deeper).position == MAX_DEPTH + len('service("a") ')


def test_depth_limit_is_adjustable_and_survives_huge_nesting() -> None:
    assert _error("((fault))", max_depth=1).position == 1
    assert "deeper" in _error("(" * 900 + "fault").reason
    assert "deeper" in _error("!" * 900 + "fault").reason


def test_token_limit() -> None:
    error = _error("ok " * MAX_TOKENS, max_length=10 * MAX_TOKENS)
    assert error.position == 3 * (MAX_TOKENS - 1)
    assert "tokens" in error.reason


def test_long_expression_excerpt_keeps_the_caret_under_the_character() -> None:
    text = " AND ".join(["responsetime > 1"] * 60) + " AND fault = 7"
    error = _error(text)
    _, shown, caret = str(error).split("\n")
    assert shown.startswith("...")
    assert len(shown) < 100
    column = caret.index("^")
    assert shown[column] == "7"
    assert error.position == len(text) - 1


def test_control_characters_in_the_excerpt_print_as_spaces() -> None:
    error = _error("fault\nAND\t\x01")
    _, shown, caret = str(error).split("\n")
    assert shown == "fault AND  "
    assert caret == " " * 10 + "^"


def test_entity_selector_admits_only_nodes_and_edges() -> None:
    assert to_sexpr(parse_entity_selector('id(name: "a", type: "AWS::EC2::Instance")')) == (
        '(service id(name="a" type="AWS::EC2::Instance"))'
    )
    assert to_sexpr(parse_entity_selector('edge("a", "b") OR service("c")')) == (
        '(or (edge "a" "b") (service "c"))'
    )
    with pytest.raises(FilterSyntaxError, match="not allowed in an entity selector"):
        parse_entity_selector("fault")
    with pytest.raises(FilterSyntaxError, match="annotations are not allowed"):
        parse_entity_selector("annotation.x")
    with pytest.raises(FilterSyntaxError, match="the limit is 500"):
        parse_entity_selector('service("' + "a" * MAX_SELECTOR_LENGTH + '")')


def test_root_cause_json_is_canonical_and_parsed_on_demand() -> None:
    tree = parse_filter('rootcause.json = #[ {"b": [1, 2], "a": "\\u00e9"} ]')
    assert tree == RootCauseJson('[{"a":"\\u00e9","b":[1,2]}]')
    assert isinstance(tree, RootCauseJson)
    assert tree.value == [{"a": "é", "b": [1, 2]}]
    assert "invalid JSON" in _error("rootcause.json = #[{}, NaN]").reason
    assert "invalid JSON" in _error("rootcause.json = #[" + "[" * 1500).reason


def test_nodes_are_frozen_slotted_and_compare_without_positions() -> None:
    node = Flag("fault", start=3, end=8)
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.keyword = "ok"  # type: ignore[misc]
    assert not hasattr(node, "__dict__")
    assert node == Flag("fault")
    assert hash(node) == hash(Flag("fault"))
    assert len({parse_filter("fault"), parse_filter("  FAULT = true")}) == 1


def test_keyword_tables_are_consistent() -> None:
    in_some_scope = set().union(*SCOPE_KEYWORDS.values())
    assert in_some_scope == set(KEYWORD_TYPES)
    assert not set(COMPOUND_SCOPES) & set(KEYWORD_TYPES)


def test_tokens_carry_offsets_and_fold_case() -> None:
    text = 'Annotation[A.b] CONTAINS "x" and NOT Http.Status>=-2e1 #[{}]'
    tokens = tokenize(text)
    assert [t.kind for t in tokens] == [
        TokenKind.ANNOTATION,
        TokenKind.CONTAINS,
        TokenKind.STRING,
        TokenKind.AND,
        TokenKind.NOT,
        TokenKind.WORD,
        TokenKind.GE,
        TokenKind.NUMBER,
        TokenKind.JSON,
        TokenKind.EOF,
    ]
    assert all(text[t.start : t.end] == t.text for t in tokens)
    assert [t.value for t in tokens[:3]] == ["A.b", "contains", "x"]
    assert tokens[5].value == "http.status"
    assert tokens[7].value == -20.0
    assert tokens[-1].start == len(text)


def test_printer_quotes_what_needs_quoting() -> None:
    tree = And(
        (
            Or((Flag("fault"), Not(Exists(Annotation("a.b"))))),
            Compare(Annotation("x y"), "contains", 'q"\\\n'),
            Compare(Keyword("responsetime"), ">", 1e20),
            Compare(Annotation("k_1"), "=", False),
            Service(ServiceRef(None, "AWS::Lambda::Function", "1")),
        )
    )
    text = to_filter(tree)
    assert text == (
        '(fault OR !annotation["a.b"]) AND annotation["x y"] CONTAINS "q\\"\\\\\\n" AND '
        "responsetime > 1e+20 AND annotation.k_1 = false AND "
        'service(id(type: "AWS::Lambda::Function", account.id: "1"))'
    )
    assert parse_filter(text) == tree


def test_printer_rejects_what_is_not_a_node() -> None:
    with pytest.raises(TypeError):
        to_filter(Keyword("fault"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_sexpr("fault")  # type: ignore[arg-type]


def test_string_escapes_and_unicode() -> None:
    tree = parse_filter('user = "\\ud83d\\ude00 \\/ \\b\\f\\r\\t ü"')
    assert tree == Compare(Keyword("user"), "=", "😀 / \b\f\r\t ü")
    assert "unpaired surrogate" in _error('user = "\\ude00"').reason
    assert "unterminated" in _error('user = "abc\\').reason
