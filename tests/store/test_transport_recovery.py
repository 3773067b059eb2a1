"""The embedded transport around the engine's faults: after a statement that fails while it
executes the next answers must be right (chDB otherwise corrupts the next Arrow result),
and no session encodes Arrow results in parallel (chDB's encoder can hang a query)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluoroscope.model.errors import StoreError
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport

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


ARROW_ENCODING = (
    "SELECT value FROM system.settings WHERE name = 'output_format_arrow_parallel_encoding'"
)


def test_every_session_encodes_arrow_results_serially(store: Store, chdb_dir: Path) -> None:
    """chDB 26.5's parallel Arrow encoder can leave a query waiting forever under CPU
    contention (chdb-core issue #212; transport._SESSION_SETTINGS): every session turns
    it off as it opens, and it stays off after a failed statement."""
    for transport in (store._t, ChdbTransport(chdb_dir / "chdb")):
        assert transport.query_arrow(ARROW_ENCODING).column(0).to_pylist() == ["0"]
    with pytest.raises(StoreError):
        store._t.query_arrow(FAILING[0])
    assert store._t.query_arrow(ARROW_ENCODING).column(0).to_pylist() == ["0"]
