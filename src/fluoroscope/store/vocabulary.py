"""What the stored traces of a window name: service names and annotation keys (with their
values where there are few), for the console's filter autocomplete.

:func:`vocabulary_sql` builds one statement over ``traces`` (``ts`` in ``[lo, hi]``):
rows ``(kind, key, vals, n_values, traces)`` - ``kind`` ``service`` (key: the name) or
``annotation`` (key: the annotation key; ``vals``: up to ``max_values`` + 1 of its
values as filter literals' text, strings and numbers and booleans alike, ``n_values`` how many
there are), most frequent first, at most ``limit`` rows per kind. Pure;
parameters are bound, never interpolated.
"""

from __future__ import annotations

from typing import Any

from fluoroscope.model.summarycolumns import ANN_BOOL, ANN_NUMBER

__all__ = ["vocabulary_sql"]


def vocabulary_sql(
    db: str, lo: int, hi: int, *, limit: int = 200, max_values: int = 20
) -> tuple[str, dict[str, Any]]:
    """The statement and its parameters (see the module docstring)."""
    window = "ts >= toDateTime({lo:UInt32}) AND ts <= toDateTime({hi:UInt32})"
    value = (
        f"multiIf(tupleElement(a, 2) = {ANN_NUMBER}, toString(tupleElement(a, 4)), "
        f"tupleElement(a, 2) = {ANN_BOOL}, if(tupleElement(a, 4) != 0, 'true', 'false'), "
        "tupleElement(a, 3))"
    )
    services = (
        "SELECT 'service' AS kind, n AS key, CAST([], 'Array(String)') AS vals, "
        "toUInt64(0) AS n_values, count() AS traces "
        f"FROM (SELECT arrayJoin(arrayDistinct(service_names)) AS n FROM {db}.traces "
        f"WHERE {window}) GROUP BY n ORDER BY traces DESC, key LIMIT {{limit:UInt32}}"
    )
    annotations = (
        "SELECT 'annotation' AS kind, tupleElement(a, 1) AS key, "
        f"groupUniqArray({max_values + 1})({value}) AS vals, toUInt64(uniq({value})) AS n_values, "
        "count() AS traces "
        "FROM (SELECT arrayJoin(arrayZip(ann_keys, ann_types, ann_strings, ann_numbers)) AS a "
        f"FROM {db}.traces WHERE {window}) "
        "GROUP BY key ORDER BY traces DESC, key LIMIT {limit:UInt32}"
    )
    sql = f"SELECT * FROM ({services}) UNION ALL SELECT * FROM ({annotations})"
    return sql, {"lo": lo, "hi": hi, "limit": limit}
