"""The embedded transport's inserts and results go through Arrow files, not chDB's
``Python()`` table function and "ArrowTable" format (both import pandas): inserts back
to back with other columns each get their own columns, values of every kind the store
writes come back as written, and an empty result keeps its columns, as chDB's own
format gives it."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from fluoroscope.store.store import Store


def test_inserts_back_to_back_with_other_columns_each_get_theirs(store: Store) -> None:
    """Each insert reads a new memory file whose path (/proc/self/fd/N) the next one
    reuses at once: the engine must not take the first one's columns for the second's."""
    t = store._t
    table = f"{store.database}.kinds"
    t.execute(
        f"CREATE TABLE {table} (k UInt64, s String, f Float64 DEFAULT 7, "
        "m Map(String, String), l Array(String), lc LowCardinality(String), b UInt8) "
        "ENGINE = MergeTree ORDER BY k"
    )
    first = pa.table({"k": pa.array([1, 2], pa.uint64()), "s": pa.array(["a", "tab\there"])})
    second = pa.table(
        {
            "k": pa.array([3], pa.uint64()),
            "f": pa.array([1.5]),
            "m": pa.array([[("x", "y")]], pa.map_(pa.string(), pa.string())),
            "l": pa.array([["p", "q'"]], pa.list_(pa.string())),
            "lc": pa.array(["low"]).dictionary_encode(),
            "b": pa.array([1], pa.uint8()),
        }
    )
    for _ in range(3):
        t.insert_arrow(table, first)
        t.insert_arrow(table, second)
    rows = t.query_arrow(f"SELECT * FROM {table} ORDER BY k LIMIT 3").to_pylist()
    assert rows == [
        {"k": 1, "s": "a", "f": 7.0, "m": [], "l": [], "lc": "", "b": 0},
        {"k": 1, "s": "a", "f": 7.0, "m": [], "l": [], "lc": "", "b": 0},
        {"k": 1, "s": "a", "f": 7.0, "m": [], "l": [], "lc": "", "b": 0},
    ]
    last = t.query_arrow(f"SELECT * FROM {table} WHERE k > 1 ORDER BY k LIMIT 2").to_pylist()
    assert last[0] == {"k": 2, "s": "tab\there", "f": 7.0, "m": [], "l": [], "lc": "", "b": 0}
    got = t.query_arrow(f"SELECT * FROM {table} WHERE k = 3 LIMIT 1").to_pylist()
    assert got == [
        {"k": 3, "s": "", "f": 1.5, "m": [("x", "y")], "l": ["p", "q'"], "lc": "low", "b": 1}
    ]


def test_columns_are_matched_by_name_in_any_order(store: Store) -> None:
    """An insert's columns need not come in the table's order: each goes to the column
    of its name (the engine reads the memory file as the insert's own input)."""
    t = store._t
    table = f"{store.database}.named"
    t.execute(
        f"CREATE TABLE {table} (ts DateTime, k UInt64, s String, n Array(UInt16)) "
        "ENGINE = MergeTree ORDER BY k"
    )
    data = pa.table(
        {
            "n": pa.array([[1, 2]], pa.list_(pa.uint16())),
            "s": pa.array(["x"]),
            "k": pa.array([5], pa.uint64()),
            "ts": pa.array([1_764_892_800], pa.uint32()),
        }
    )
    t.insert_arrow(table, data)
    got = t.query_arrow(f"SELECT toUnixTimestamp(ts) AS ts, k, s, n FROM {table}").to_pylist()
    assert got == [{"ts": 1_764_892_800, "k": 5, "s": "x", "n": [1, 2]}]


def test_an_insert_leaves_no_memory_file_open(store: Store) -> None:
    table = f"{store.database}.few"
    store._t.execute(f"CREATE TABLE {table} (k UInt64) ENGINE = MergeTree ORDER BY k")
    for _ in range(5):
        store._t.insert_arrow(table, pa.table({"k": pa.array([1], pa.uint64())}))
    assert not [p for p in Path("/proc/self/fd").iterdir() if "fluoroscope-insert" in _target(p)]


def _target(link: Path) -> str:
    try:
        return os.readlink(link)
    except OSError:
        return ""


def test_an_empty_result_keeps_its_columns(store: Store) -> None:
    empty = store._t.query_arrow("SELECT number FROM numbers(10) WHERE number > 100")
    assert (empty.column_names, empty.num_rows) == (["number"], 0)


def test_a_null_takes_its_types_default_and_a_column_left_out_its_default(store: Store) -> None:
    """A null in a column given is stored as its type's default, not as the column's
    DEFAULT expression (which an insert then need not plan); a column left out of the
    insert still takes its DEFAULT expression; a null array is empty either way."""
    t = store._t
    table = f"{store.database}.defaults"
    t.execute(
        f"CREATE TABLE {table} (k UInt64, a String, b String DEFAULT upper(a), "
        "n UInt32 DEFAULT 7, l Array(String) DEFAULT [a]) ENGINE = MergeTree ORDER BY k"
    )
    t.insert_arrow(table, pa.table({"k": pa.array([1], pa.uint64()), "a": ["x"]}))
    t.insert_arrow(
        table,
        pa.table(
            {
                "k": pa.array([2, 3], pa.uint64()),
                "a": ["y", "z"],
                "b": pa.array([None, "B"], pa.string()),
                "n": pa.array([None, 5], pa.uint32()),
                "l": pa.array([None, ["L"]], pa.list_(pa.string())),
            }
        ),
    )
    assert t.query_arrow(f"SELECT * FROM {table} ORDER BY k").to_pylist() == [
        {"k": 1, "a": "x", "b": "X", "n": 7, "l": ["x"]},
        {"k": 2, "a": "y", "b": "", "n": 0, "l": []},
        {"k": 3, "a": "z", "b": "B", "n": 5, "l": ["L"]},
    ]
