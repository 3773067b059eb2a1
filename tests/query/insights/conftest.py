"""A module-wide store holding the lines of ``lines.py``, and a helper running a query."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fluoroscope.query.insights import compile, parse
from fluoroscope.store.logs import LogStore
from fluoroscope.store.store import Store
from tests.query.insights.lines import API, CHECKOUT, LINES, PAYMENT
from tests.query.insights.logrows import BASE_MS, store_lines

Rows = list[dict[str, str]]
Runner = Callable[..., Rows]


@pytest.fixture(scope="module")
def lines_store(chdb_dir: Path) -> Iterator[Store]:
    st = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    store_lines(st, LINES)
    yield st
    st.close()


@pytest.fixture(scope="module")
def run_query(lines_store: Store) -> Runner:
    """``run_query(text, groups=..., start=..., end=..., limit=...)``: the result rows as
    dicts of the present fields (``@ptr`` checked on every row, then left out), run with
    ``LogStore.query`` as StartQuery runs them."""

    def run(
        text: str,
        groups: tuple[str, ...] = (CHECKOUT, PAYMENT, API),
        start: int = -1000,
        end: int = 3_600_000,
        limit: int | None = None,
    ) -> Rows:
        compiled = compile(
            parse(text),
            database=lines_store.database,
            groups=groups,
            start_ms=BASE_MS + start,
            end_ms=BASE_MS + end,
            limit=limit,
        )
        table = LogStore(lines_store, 30).query(compiled.sql, compiled.params, compiled.settings)
        assert table.column_names == [f"c{i}" for i in range(len(compiled.fields))]
        assert compiled.fields[-1] == "@ptr"
        rows = []
        for row in table.to_pylist():
            assert row[f"c{len(compiled.fields) - 1}"]
            rows.append(
                {
                    name: row[f"c{i}"]
                    for i, name in enumerate(compiled.fields[:-1])
                    if row[f"c{i}"] is not None
                }
            )
        return rows

    return run
