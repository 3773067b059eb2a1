"""Property tests: no input makes the parser raise anything but ``FilterSyntaxError``,
every error's position lies within the expression, and printing a tree back to filter
text and parsing it again gives the same tree."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.query.filter import (
    And,
    Annotation,
    Compare,
    Edge,
    Exists,
    Expr,
    FilterSyntaxError,
    Flag,
    Group,
    Keyword,
    Not,
    Or,
    RootCause,
    RootCauseJson,
    Service,
    ServiceRef,
    parse_entity_selector,
    parse_filter,
    to_filter,
    to_sexpr,
)
from fluoroscope.query.filter.keywords import (
    COMPOUND_SCOPES,
    KEYWORD_TYPES,
    OPERATORS_FOR,
    ROOT_CAUSES,
    SCOPE_KEYWORDS,
    Scope,
    ValueType,
)


def _check(text: str) -> None:
    """Parse ``text``: either a tree that survives a print/parse round trip, or a
    ``FilterSyntaxError`` pointing inside the text. Anything else fails the test."""
    error: FilterSyntaxError | None = None
    try:
        tree = parse_filter(text)
    except FilterSyntaxError as caught:
        error = caught
    if error is not None:
        assert 0 <= error.position <= len(text)
        assert str(error).count("\n") == 2
        return
    again = parse_filter(to_filter(tree))
    assert again == tree
    assert to_sexpr(again) == to_sexpr(tree)


@settings(max_examples=400)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _check(text)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=200))
def test_arbitrary_ascii_never_crashes(text: str) -> None:
    _check(text)
    position = 0
    try:
        parse_entity_selector(text)
    except FilterSyntaxError as error:
        position = error.position
    assert 0 <= position <= len(text)


_VOCABULARY = [
    *KEYWORD_TYPES,
    *COMPOUND_SCOPES,
    *("AND", "and", "OR", "or", "NOT", "!", "CONTAINS", "BeginsWith", "endswith"),
    *("=", "!=", "<", "<=", ">", ">=", "(", ")", "{", "}", ",", ":", "true", "FALSE"),
    *('"x"', '""', '"a\\"b"', '"\\u00e9"', '"unterminated', "5", "-1.5", "2e3", ".5", "1e999"),
    *("annotation.age", "annotation[a.b:c]", 'annotation["k y"]', "annotation[", "annotation"),
    *("account.id", "Fault", "RESPONSETIME", "#[{}]", '#[{"a": [1]}]', "#[1]", "#", "'x'"),
    *("bogus", "fault.rootcause", "http.", "\x00", "|", "&&"),
]


@settings(max_examples=800)
@given(
    st.lists(
        st.tuples(st.sampled_from(_VOCABULARY), st.sampled_from(["", " ", "  ", "\n"])),
        max_size=25,
    )
)
def test_token_soup_never_crashes(soup: list[tuple[str, str]]) -> None:
    _check("".join(word + space for word, space in soup))


# -- trees, generated directly ------------------------------------------------------

_TEXT = st.text(max_size=8)
_NUMBER = st.floats(allow_nan=False, allow_infinity=False)
_KEY = st.text(min_size=1, max_size=8) | st.from_regex(r"[A-Za-z0-9_]{1,8}", fullmatch=True)


def _keywords(scope: Scope, vtype: ValueType) -> list[str]:
    return sorted(k for k in SCOPE_KEYWORDS[scope] if KEYWORD_TYPES[k] is vtype)


def _leaves(scope: Scope) -> st.SearchStrategy[Expr]:
    flags = st.builds(Flag, st.sampled_from(_keywords(scope, ValueType.BOOLEAN)))
    numbers = st.builds(
        Compare,
        st.builds(Keyword, st.sampled_from(_keywords(scope, ValueType.NUMBER))),
        st.sampled_from(OPERATORS_FOR[ValueType.NUMBER]),
        _NUMBER,
    )
    string_keys = st.builds(Keyword, st.sampled_from(_keywords(scope, ValueType.STRING)))
    strings = st.builds(
        Compare, string_keys, st.sampled_from(OPERATORS_FOR[ValueType.STRING]), _TEXT
    )
    options: list[st.SearchStrategy[Expr]] = [flags, numbers, strings]
    if scope is not Scope.ROOT_CAUSE:
        options.append(st.builds(Exists, string_keys))
        annotations = st.builds(Annotation, _KEY)
        options += [
            st.builds(Exists, annotations),
            st.builds(
                Compare, annotations, st.sampled_from(OPERATORS_FOR[ValueType.NUMBER]), _NUMBER
            ),
            st.builds(
                Compare, annotations, st.sampled_from(OPERATORS_FOR[ValueType.STRING]), _TEXT
            ),
            st.builds(
                Compare,
                annotations,
                st.sampled_from(OPERATORS_FOR[ValueType.BOOLEAN]),
                st.booleans(),
            ),
        ]
    return st.one_of(options)


def _join(cls: type[And] | type[Or], items: list[Expr]) -> Expr:
    flat: list[Expr] = []
    for item in items:
        flat.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(flat))


def _combine(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    several = st.lists(children, min_size=2, max_size=3)
    return st.one_of(
        st.builds(Not, children),
        several.map(lambda items: _join(And, items)),
        several.map(lambda items: _join(Or, items)),
    )


def _exprs(scope: Scope, leaves: st.SearchStrategy[Expr] | None = None) -> st.SearchStrategy[Expr]:
    return st.recursive(_leaves(scope) if leaves is None else leaves, _combine, max_leaves=6)


_REFS = st.builds(ServiceRef, _TEXT, st.none() | _TEXT, st.none() | _TEXT) | st.builds(
    ServiceRef, st.none(), _TEXT, st.none() | _TEXT
)
_JSON = st.lists(
    st.dictionaries(_TEXT, st.none() | st.booleans() | st.integers() | _TEXT, max_size=3),
    max_size=3,
).map(lambda value: json.dumps(value, sort_keys=True, separators=(",", ":")))
_TRACE_LEAVES = st.one_of(
    _leaves(Scope.TRACE),
    st.builds(Service, st.none() | _REFS, st.none() | _exprs(Scope.SERVICE)),
    st.builds(Edge, _REFS, _REFS, st.none() | _exprs(Scope.EDGE)),
    st.builds(
        lambda key, body: RootCause(key[0], key[1], body),
        st.sampled_from(sorted(ROOT_CAUSES.values())),
        _exprs(Scope.ROOT_CAUSE),
    ),
    st.builds(RootCauseJson, _JSON),
    st.builds(Group, st.sampled_from(["name", "arn"]), _TEXT),
)


@settings(max_examples=600)
@given(_exprs(Scope.TRACE, _TRACE_LEAVES))
def test_printed_tree_parses_back_to_itself(tree: Expr) -> None:
    text = to_filter(tree)
    again = parse_filter(text, max_length=100_000)
    assert again == tree
    assert to_sexpr(again) == to_sexpr(tree)  # also tells true from 1.0
