"""Queries run against a real chDB store holding real Lambda, Powertools and API Gateway
lines: each returns exactly the rows of ``runs.py``; the window and the groups bound what
is read; the limit of StartQuery applies when the query has none; user text reaches the
engine only as parameters."""

from __future__ import annotations

import pytest

from fluoroscope.query.insights import compile, parse
from tests.query.insights.conftest import Runner
from tests.query.insights.lines import API, CHECKOUT
from tests.query.insights.runs import RUNS


@pytest.mark.parametrize(("query", "rows"), RUNS, ids=[r[0][:70] for r in RUNS])
def test_query_returns_the_expected_rows(
    run_query: Runner, query: str, rows: list[dict[str, str]]
) -> None:
    assert run_query(query) == rows


def test_window_is_inclusive_and_bounds_the_rows(run_query: Runner) -> None:
    count = "stats count(*) as n"
    assert run_query(count, groups=(API,), start=0, end=100) == [{"n": "3"}]
    assert run_query(count, groups=(API,), start=50, end=60) == [{"n": "2"}]
    assert run_query(count, groups=(API,), start=51, end=59) == [{"n": "0"}]
    assert run_query(count, groups=(CHECKOUT,)) == [{"n": "11"}]
    assert run_query(count, groups=()) == [{"n": "0"}]


def test_start_query_limit_applies_when_the_query_has_none(run_query: Runner) -> None:
    assert len(run_query("fields @message", limit=3)) == 3
    assert len(run_query("fields @message")) == 22
    assert len(run_query("fields @message | limit 2", limit=3)) == 2
    assert len(run_query("fields @message | limit 5 | limit 4")) == 4


def test_user_text_reaches_the_engine_only_as_parameters(run_query: Runner) -> None:
    hostile = "x') OR 1=1 --"
    compiled = compile(
        parse(f'filter @message like "{hostile}" or `a\'b` = "{hostile}" | fields `a\'b`'),
        database="db",
        groups=["g'); DROP TABLE x; --"],
        start_ms=0,
        end_ms=1,
    )
    assert hostile not in compiled.sql and "DROP" not in compiled.sql
    assert "a'b" not in compiled.sql
    assert hostile in compiled.params.values()
    assert run_query(f'filter @message like "{hostile}" | stats count(*) as n') == [{"n": "0"}]


def test_regex_is_case_insensitive_with_the_flag(run_query: Runner) -> None:
    assert run_query("filter @message like /(?i)task TIMED/ | stats count(*) as n") == [{"n": "1"}]
    assert run_query("filter @message like /task TIMED/ | stats count(*) as n") == [{"n": "0"}]
