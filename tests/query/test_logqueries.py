"""The asynchronous Logs Insights query runner over the real embedded engine.

Statements here are plain engine SQL (what a compiled query is): the runner's part -
statuses, the engine's time limit, StopQuery, the concurrency limit, results kept a
while then forgotten - is what is checked; the compiler has tests of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

from fluoroscope.query.logqueries import (
    LogQueries,
    QueryEnded,
    QueryNotFound,
    QueryPlan,
    TooManyQueries,
    format_value,
)
from fluoroscope.store.store import Store
from tests.support import wait_for

SLOW = "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) = 1"


def _execute(store: Store) -> Any:
    def execute(sql: str, params: Mapping[str, Any], settings: Mapping[str, Any]) -> pa.Table:
        extra = ", ".join(f"{k} = {v}" for k, v in settings.items())
        return store._t.query_arrow(f"{sql} SETTINGS {extra}" if extra else sql, params)

    return execute


@pytest.fixture
def runner(store: Store) -> Iterator[LogQueries]:
    queries = LogQueries(_execute(store), workers=1, time_limit=1.0)
    yield queries
    queries.close()


def _done(runner: LogQueries, query_id: str) -> str | None:
    status = runner.get(query_id).status
    return status if status not in ("Scheduled", "Running") else None


def test_a_query_completes_with_its_rows_as_fields_and_text(runner: LogQueries) -> None:
    plan = QueryPlan(
        "SELECT toDateTime64('2026-12-03 18:29:55.453', 3, 'UTC') AS t, number AS n, "
        "if(number = 1, NULL, concat('m', toString(number))) AS m "
        "FROM numbers({count:UInt32})",
        {"count": 3},
        ["@timestamp", "n", "@message"],
        scanned=("SELECT 42, 4200", {}),
    )
    query_id = runner.start("fields @timestamp, n, @message", ["/g"], plan)
    assert wait_for(lambda: _done(runner, query_id)) == "Complete"
    snapshot = runner.get(query_id)
    assert snapshot.results == [
        [("@timestamp", "2026-12-03 18:29:55.453"), ("n", "0"), ("@message", "m0")],
        [("@timestamp", "2026-12-03 18:29:55.453"), ("n", "1")],  # absent: left out
        [("@timestamp", "2026-12-03 18:29:55.453"), ("n", "2"), ("@message", "m2")],
    ]
    assert snapshot.statistics["recordsMatched"] == 3.0
    assert snapshot.statistics["recordsScanned"] == 42.0
    assert snapshot.statistics["bytesScanned"] == 4200.0
    assert snapshot.duration is not None and snapshot.duration >= 0


def test_a_slow_query_times_out_at_the_engines_limit(runner: LogQueries) -> None:
    query_id = runner.start("slow", ["/g"], QueryPlan(SLOW, {}, ["n"]))
    assert wait_for(lambda: _done(runner, query_id), timeout=60) == "Timeout"
    snapshot = runner.get(query_id)
    assert snapshot.results == []
    assert "time limit" in snapshot.error
    # the engine is free again at once
    quick = runner.start("quick", ["/g"], QueryPlan("SELECT 1", {}, ["x"]))
    assert wait_for(lambda: _done(runner, quick), timeout=30) == "Complete"


def test_an_engine_error_fails_the_query_not_the_runner(runner: LogQueries) -> None:
    bad = runner.start("bad", ["/g"], QueryPlan("SELECT no_such_column FROM numbers(1)", {}, ["x"]))
    assert wait_for(lambda: _done(runner, bad)) == "Failed"
    assert runner.get(bad).error
    good = runner.start("good", ["/g"], QueryPlan("SELECT 7", {}, ["x"]))
    assert wait_for(lambda: _done(runner, good)) == "Complete"
    assert runner.get(good).results == [[("x", "7")]]


def test_stop_cancels_scheduled_and_running_queries(runner: LogQueries) -> None:
    running = runner.start("slow", ["/g"], QueryPlan(SLOW, {}, ["n"]))
    wait_for(lambda: runner.get(running).status == "Running")
    waiting = runner.start("next", ["/g"], QueryPlan("SELECT 1", {}, ["x"]))
    assert runner.get(waiting).status == "Scheduled"  # one worker: it waits
    assert runner.stop(waiting) is True
    assert runner.stop(running) is True
    assert runner.get(waiting).status == "Cancelled"
    assert runner.get(running).status == "Cancelled"
    with pytest.raises(QueryEnded):
        runner.stop(waiting)
    # the running statement ends by itself (its time limit) and stays cancelled
    later = runner.start("after", ["/g"], QueryPlan("SELECT 2", {}, ["x"]))
    assert wait_for(lambda: _done(runner, later), timeout=60) == "Complete"
    assert runner.get(running).status == "Cancelled"
    assert runner.get(running).results == []


def test_at_most_max_active_queries_are_scheduled_or_running(store: Store) -> None:
    gate = threading.Event()
    execute = _execute(store)

    def held(sql: str, params: Mapping[str, Any], settings: Mapping[str, Any]) -> pa.Table:
        gate.wait(30)
        return execute(sql, params, settings)

    runner = LogQueries(held, workers=1, max_active=2)
    try:
        first = runner.start("a", ["/g"], QueryPlan("SELECT 1", {}, ["x"]))
        second = runner.start("b", ["/g"], QueryPlan("SELECT 2", {}, ["x"]))
        with pytest.raises(TooManyQueries):
            runner.start("c", ["/g"], QueryPlan("SELECT 3", {}, ["x"]))
        gate.set()
        assert wait_for(lambda: _done(runner, first)) == "Complete"
        assert wait_for(lambda: _done(runner, second)) == "Complete"
        third = runner.start("c", ["/g"], QueryPlan("SELECT 3", {}, ["x"]))
        assert wait_for(lambda: _done(runner, third)) == "Complete"
    finally:
        gate.set()
        runner.close()


def _forgotten(runner: LogQueries, query_id: str) -> bool:
    try:
        runner.get(query_id)
    except QueryNotFound:
        return True
    return False


def test_ended_queries_are_kept_a_while_then_forgotten(store: Store) -> None:
    brief = LogQueries(_execute(store), keep_seconds=0.3)
    try:
        query_id = brief.start("a", ["/g"], QueryPlan("SELECT 1", {}, ["x"]))
        assert wait_for(lambda: _done(brief, query_id)) == "Complete"
        assert wait_for(lambda: _forgotten(brief, query_id))
        with pytest.raises(QueryNotFound):
            brief.stop(query_id)
    finally:
        brief.close()


def test_at_most_keep_max_ended_queries_are_kept(store: Store) -> None:
    runner = LogQueries(_execute(store), keep_max=2)
    try:
        ids = []
        for i in range(3):
            ids.append(runner.start(str(i), ["/g"], QueryPlan(f"SELECT {i}", {}, ["x"])))
            assert wait_for(lambda: _done(runner, ids[-1])) == "Complete"
        assert _forgotten(runner, ids[0])
        assert [runner.get(i).results for i in ids[1:]] == [[[("x", "1")]], [[("x", "2")]]]
    finally:
        runner.close()


def test_describe_filters_by_group_and_status(runner: LogQueries) -> None:
    a = runner.start("a", ["/a"], QueryPlan("SELECT 1", {}, ["x"]))
    b = runner.start("b", ["/b", "/c"], QueryPlan("SELECT 1", {}, ["x"]))
    wait_for(lambda: _done(runner, a) and _done(runner, b))
    assert [s.id for s in runner.describe(group="/c")] == [b]
    assert {s.id for s in runner.describe(status="Complete")} >= {a, b}
    assert runner.describe(status="Running") == []


def test_values_are_formatted_as_get_query_results_gives_them() -> None:
    moment = datetime(2026, 12, 3, 18, 29, 55, 453_999, tzinfo=UTC)
    assert format_value(moment) == "2026-12-03 18:29:55.453"
    assert format_value(20.0) == "20"
    assert format_value(20.39) == "20.39"
    assert format_value(float("nan")) is None
    assert format_value(None) is None
    assert format_value(b"\xff") == "\ufffd"
