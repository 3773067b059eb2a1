"""Property tests: no input makes the parser or the compiler raise anything but
``InsightsSyntaxError``; every error's span lies within the text; printing a tree and
parsing it again gives the same tree; and every compiled query runs in the engine."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluoroscope.query.insights import InsightsSyntaxError, ast, compile, parse, to_text
from fluoroscope.query.insights.fields import SYSTEM_FIELDS
from fluoroscope.query.insights.functions import AGGREGATE, SCALAR
from fluoroscope.store.logs import LogStore
from fluoroscope.store.store import Store
from tests.query.insights.logrows import BASE_MS


def _check(text: str) -> None:
    """Parse and compile ``text``: either a tree that survives a print/parse round trip
    and compiles, or an ``InsightsSyntaxError`` inside the text. Anything else fails."""
    failure: InsightsSyntaxError | None = None
    try:
        tree = parse(text)
        compile(tree, database="db", groups=["g"], start_ms=0, end_ms=1)
    except InsightsSyntaxError as caught:
        failure = caught
    if failure is not None:
        assert 0 <= failure.start <= failure.end <= len(text)
        assert str(failure).count("\n") == 2
        return
    assert parse(to_text(tree)) == tree


@settings(max_examples=400)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _check(text)


_VOCABULARY = [
    *("fields", "filter", "stats", "sort", "limit", "parse", "dedup", "display", "pattern"),
    *("and", "OR", "not", "like", "in", "as", "by", "asc", "desc", "|", ",", "(", ")"),
    *("[", "]", "=", "!=", "<", "<=", ">", ">=", "=~", "+", "-", "*", "/", "%", "^"),
    *('"x"', "'y'", '"a*b*"', '"unterminated', "/re/", "/(?<n>x)/", "/(?=x)/", "5", "1.5"),
    *("5m", "1h", "3x", "@message", "@timestamp", "@duration", "a.b.0", "`q-r`", "`"),
    *("count", "count(*)", "bin(5m)", "pct", "strlen", "nosuch", "#c\n", "\x00", "&"),
]


@settings(max_examples=800)
@given(
    st.lists(
        st.tuples(st.sampled_from(_VOCABULARY), st.sampled_from(["", " ", "\n"])),
        max_size=25,
    )
)
def test_token_soup_never_crashes(soup: list[tuple[str, str]]) -> None:
    _check("".join(word + space for word, space in soup))


# -- trees, generated directly --------------------------------------------------------

_NAMES = st.sampled_from(["a", "b.c", "items.0.id", "foo-bar", "and", "@message", "@x"])
_FIELDS = st.builds(ast.Field, _NAMES | st.sampled_from(SYSTEM_FIELDS))
_REGEXES = st.sampled_from(["x", "(?i)err(or)?", "a\\/b", "^\\[(?<lvl>[A-Z]+)\\]", "\\d+"])
_LEAVES: st.SearchStrategy[ast.Expr] = st.one_of(
    _FIELDS,
    st.builds(ast.Str, st.text(max_size=6)),
    st.builds(ast.Num, st.floats(min_value=0, max_value=1e9, allow_nan=False)),
)


def _combine(children: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
    ops = st.sampled_from(
        ["and", "or", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "^"]
    )
    return st.one_of(
        st.builds(ast.Binary, ops, children, children),
        st.builds(ast.Not, children),
        st.builds(ast.Neg, children),
        st.builds(
            ast.Like,
            children,
            st.builds(ast.Str, st.text(max_size=4)) | st.builds(ast.Regex, _REGEXES),
            st.booleans(),
        ),
        st.builds(
            ast.In, children, st.lists(children, min_size=1, max_size=3).map(tuple), st.booleans()
        ),
        st.builds(
            ast.Call,
            st.sampled_from(["strlen", "toupper", "abs", "ispresent"]),
            children.map(lambda c: (c,)),
        ),
        st.builds(
            ast.Call,
            st.sampled_from(["concat", "coalesce", "greatest"]),
            st.lists(children, min_size=1, max_size=3).map(tuple),
        ),
    )


_EXPRS = st.recursive(_LEAVES, _combine, max_leaves=6)
_ALIAS_NAMES = st.none() | st.sampled_from(["x", "y-z", "n"])
_AGGS = st.one_of(
    st.builds(lambda: ast.Call("count", (ast.Star(),))),
    st.builds(lambda e: ast.Call("count", (e,)), _EXPRS),
    st.builds(
        lambda n, e: ast.Call(n, (e,)),
        st.sampled_from(
            ["sum", "avg", "min", "max", "count_distinct", "stddev", "earliest", "latest"]
        ),
        _EXPRS,
    ),
    st.builds(
        lambda e, p: ast.Call("pct", (e, ast.Num(p))), _EXPRS, st.integers(0, 100).map(float)
    ),
)
_ROW_COMMANDS: st.SearchStrategy[ast.Command] = st.one_of(
    st.builds(
        ast.Fields,
        st.lists(st.builds(ast.Alias, _EXPRS, _ALIAS_NAMES), min_size=1, max_size=3).map(tuple),
    ),
    st.builds(ast.Filter, _EXPRS),
    st.builds(
        ast.Sort,
        st.lists(st.builds(ast.SortKey, _EXPRS, st.booleans()), min_size=1, max_size=2).map(tuple),
    ),
    st.builds(ast.Limit, st.integers(1, 100_000)),
    st.builds(lambda f: ast.Parse(f, "a*b*", False, ("p1", "p2")), _FIELDS),
    st.builds(lambda f: ast.Parse(f, "^\\[(?<lvl>[A-Z]+)\\]", True, ("lvl",)), _FIELDS),
)
_STATS = st.builds(
    ast.Stats,
    st.lists(st.builds(ast.Alias, _AGGS, _ALIAS_NAMES), min_size=1, max_size=3).map(tuple),
    st.lists(
        st.builds(
            ast.Alias,
            st.one_of(_FIELDS, st.just(ast.Call("bin", (ast.Duration(5.0, "m"),)))),
            st.none(),
        ),
        max_size=2,
    ).map(tuple),
)
_QUERIES = st.builds(
    lambda head, stats, tail: ast.Query(tuple(head + stats + tail)),
    st.lists(_ROW_COMMANDS, min_size=0, max_size=4),
    st.lists(_STATS, max_size=1),
    st.lists(
        st.builds(ast.Dedup, st.lists(_FIELDS, min_size=1, max_size=2).map(tuple)), max_size=1
    ),
).filter(lambda q: len(q.commands) > 0)


@settings(max_examples=500)
@given(_QUERIES)
def test_printed_tree_parses_back_to_itself(tree: ast.Query) -> None:
    text = to_text(tree)
    if len(text) <= 10_000:
        assert parse(text) == tree


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_QUERIES)
def test_every_compiled_query_runs_in_the_engine(lines_store: Store, tree: ast.Query) -> None:
    text = to_text(tree)
    try:
        compiled = compile(
            parse(text),
            database=lines_store.database,
            groups=["/aws/lambda/checkout", "/aws/apigateway/access"],
            start_ms=BASE_MS - 1000,
            end_ms=BASE_MS + 3_600_000,
        )
    except InsightsSyntaxError:
        return  # e.g. a field a stats no longer produces: refused before the engine
    table = LogStore(lines_store, 30).query(compiled.sql, compiled.params, compiled.settings)
    assert table.num_columns == len(compiled.fields)


def test_the_function_tables_do_not_overlap() -> None:
    assert not set(SCALAR) & set(AGGREGATE)
