"""Filter patterns over real lines in chDB: each pattern of ``corpus.py`` selects exactly
its lines, prints back to text that parses to the same tree, and each error points at
its position; property tests: no text crashes the parser, errors point inside the text,
printed trees parse back, every compiled condition runs in the engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.query.patterns import (
    PatternSyntaxError,
    ast,
    compile_pattern,
    parse_pattern,
    to_pattern,
)
from fluoroscope.store.logs import LogStore
from fluoroscope.store.store import Store
from tests.query.insights.logrows import Line, store_lines
from tests.query.patterns.corpus import ERRORS, LINES, MATCHES


@pytest.fixture(scope="module")
def pattern_store(chdb_dir: Path) -> Iterator[Store]:
    st_ = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    store_lines(st_, [Line(i, m) for i, m in enumerate(LINES)])
    yield st_
    st_.close()


def _select(store: Store, pattern: ast.Pattern) -> list[int]:
    condition, params = compile_pattern(pattern)
    table = store._t.query_arrow(
        f"SELECT seq FROM `{store.database}`.log_events WHERE {condition} ORDER BY seq", params
    )
    return [int(s) for s in table.column("seq").to_pylist()]


@pytest.mark.parametrize(("text", "lines"), MATCHES, ids=[m[0][:50] for m in MATCHES])
def test_pattern_selects_its_lines(pattern_store: Store, text: str, lines: list[int]) -> None:
    tree = parse_pattern(text)
    assert _select(pattern_store, tree) == lines
    assert parse_pattern(to_pattern(tree)) == tree


@pytest.mark.parametrize(
    ("text", "position", "fragment"), ERRORS, ids=[repr(e[0])[:50] for e in ERRORS]
)
def test_error_points_at_the_offending_character(text: str, position: int, fragment: str) -> None:
    with pytest.raises(PatternSyntaxError) as info:
        parse_pattern(text)
    error = info.value
    assert isinstance(error, InvalidRequest)
    assert error.position == position, error.reason
    assert error.start <= error.end <= len(text)
    assert fragment in error.reason
    assert str(error).split("\n")[0] == f"{error.reason} at position {position}"


def test_values_reach_the_engine_only_as_parameters() -> None:
    condition, params = compile_pattern(parse_pattern('{ $.a = "x\') OR 1=1 --" }'))
    assert "OR 1=1" not in condition
    assert "x') OR 1=1 --" in params.values()


def _check(text: str) -> None:
    failure: PatternSyntaxError | None = None
    try:
        tree = parse_pattern(text)
    except PatternSyntaxError as caught:
        failure = caught
    if failure is not None:
        assert 0 <= failure.start <= failure.end <= len(text)
        return
    assert parse_pattern(to_pattern(tree)) == tree
    compile_pattern(tree)


@settings(max_examples=400)
@given(st.text(max_size=120))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _check(text)


_VOCABULARY = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "$",
    "$.a",
    "$.b[0]",
    ".",
    "&&",
    "||",
    "&",
    "|",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "IS",
    "NULL",
    "TRUE",
    "false",
    "NOT",
    "EXISTS",
    '"x"',
    '"y*"',
    '"unterminated',
    "5",
    "-1.5",
    "5*",
    "ERROR",
    "?",
    "-",
    "?WARN",
    "-DEBUG",
    '" "',
    "...",
    ",",
    "%",
    "%a+%",
    "%(?=x)%",
    "name",
    "\\",
    "\x00",
]


@settings(max_examples=800)
@given(st.lists(st.tuples(st.sampled_from(_VOCABULARY), st.sampled_from(["", " "])), max_size=20))
def test_token_soup_never_crashes(soup: list[tuple[str, str]]) -> None:
    _check("".join(word + space for word, space in soup))


_PATHS = st.lists(st.sampled_from(["a", "b", "level", 0, 1]), min_size=1, max_size=3).map(tuple)
_STRINGS = st.text(min_size=1, max_size=6).filter(lambda s: "\x00" not in s)
_COMPARES = st.one_of(
    st.builds(ast.JsonCompare, _PATHS, st.sampled_from(["=", "!="]), _STRINGS),
    st.builds(
        ast.JsonCompare,
        _PATHS,
        st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False).map(lambda f: f + 0.0),
    ),
    st.builds(ast.JsonIs, _PATHS, st.sampled_from(["null", "true", "false", "missing"])),
)


def _combine(children: st.SearchStrategy[ast.JsonExpr]) -> st.SearchStrategy[ast.JsonExpr]:
    def join(cls: type[ast.JsonAnd] | type[ast.JsonOr], items: list[ast.JsonExpr]) -> ast.JsonExpr:
        flat: list[ast.JsonExpr] = []
        for item in items:
            flat.extend(item.items if isinstance(item, cls) else (item,))
        return cls(tuple(flat))

    several = st.lists(children, min_size=2, max_size=3)
    return several.map(lambda i: join(ast.JsonAnd, i)) | several.map(lambda i: join(ast.JsonOr, i))


_TERMS = st.lists(_STRINGS.filter(lambda s: s.strip() != ""), max_size=3).map(tuple)
_PATTERNS = st.one_of(
    st.builds(ast.Json, st.recursive(_COMPARES, _combine, max_leaves=5)),
    st.builds(ast.Terms, _TERMS, _TERMS, _TERMS).filter(lambda t: bool(t.all or t.any or t.none)),
    st.builds(ast.Regex, st.sampled_from(["a+", "[Ee]rror", "x|y", "^\\d{3}$"])),
    st.builds(
        ast.Delimited,
        st.lists(
            st.one_of(
                st.builds(ast.Column, st.sampled_from(["a", "b", "c_1"])),
                st.just(ast.Column(None)),
            ),
            min_size=1,
            max_size=4,
        )
        .map(tuple)
        .filter(lambda cs: len({c.name for c in cs if c.name}) == len([c for c in cs if c.name])),
    ),
)


@settings(max_examples=500)
@given(_PATTERNS)
def test_printed_tree_parses_back_to_itself(tree: ast.Pattern) -> None:
    text = to_pattern(tree)
    if len(text) <= 1024:
        assert parse_pattern(text) == tree


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_PATTERNS)
def test_every_compiled_condition_runs(pattern_store: Store, tree: ast.Pattern) -> None:
    _select(pattern_store, tree)


def test_condition_composes_with_the_log_store_events_read(pattern_store: Store) -> None:
    condition, params = compile_pattern(parse_pattern('{ $.level = "ERROR" } '))
    page = LogStore(pattern_store, 30).events(
        "/aws/lambda/checkout", condition=condition, params=params
    )
    assert [e.message for e in page.events] == [LINES[3]]
