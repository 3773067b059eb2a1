"""The embedded transport after a statement that fails while it executes: the next
answers must be right (chDB otherwise corrupts the next Arrow result)."""

from __future__ import annotations

import pytest

from fluoroscope.model.errors import StoreError
from fluoroscope.store.store import Store

FAILING = (
    "SELECT number, throwIf(number = 100000) FROM numbers(1000000)",
    "SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) = 1 "
    "SETTINGS max_execution_time = 1",
)


@pytest.mark.parametrize("statement", FAILING)
def test_the_statement_after_a_failed_one_answers_right(store: Store, statement: str) -> None:
    with pytest.raises(StoreError):
        store._t.query_arrow(statement)
    assert store._t.query_arrow("SELECT 5 AS x").to_pylist() == [{"x": 5}]
    assert store._t.query_arrow("SELECT number FROM numbers(3)").num_rows == 3
