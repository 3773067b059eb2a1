"""Compile a parsed filter pattern into a SQL condition over ``log_events`` columns.

``compile_pattern(pattern) -> (condition, params)``: ``condition`` reads the unqualified
columns ``message`` and ``json`` (the message's first JSON object) and binds every value
from the pattern as a ``{fpN:Type}`` parameter (``params`` maps ``fpN`` to the value);
the caller ANDs it into its own statement. Semantics (``reference/logs.md`` §3.3):

* terms and quoted phrases match case-sensitively anywhere in the message;
* a JSON pattern holds only for events with a JSON object; strings compare with ``*``
  as a wildcard (``!=``: the value is present and does not match); numbers compare as
  numbers (a value that is not a number never matches); ``IS NULL``/``IS TRUE``/``IS
  FALSE`` test the JSON value, ``NOT EXISTS`` its absence;
* a space-delimited pattern splits the message into columns at blanks, a ``"quoted"``
  or ``[bracketed]`` run being one column (quotes and brackets removed); without
  ``...`` the column count must match exactly; ``...`` stands for any number of
  columns, and columns after the last ``...`` are counted from the end;
* ``%regex%`` is an RE2 search of the message.

Pure and thread-safe.
"""

from __future__ import annotations

from typing import Any

from fluoroscope.query.insights.regex import check
from fluoroscope.query.patterns import ast

__all__ = ["compile_pattern"]

_COLUMNS = r'"[^"]*"|\[[^\]]*\]|[^\s"\[]+'


class _Params:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def bind(self, value: Any, sql_type: str) -> str:
        name = f"fp{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{sql_type}}}"


def _wildcard(value: str) -> str:
    """A LIKE pattern: the value literally, ``*`` as any run of characters."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _test(value_sql: str, op: ast.CompareOp, value: str | float, params: _Params) -> str:
    """``value_sql`` (a Nullable(String)) against one operand."""
    if isinstance(value, float):
        return f"(toFloat64OrNull({value_sql}) {op} {value!r})"
    if "*" in value:
        like = f"({value_sql} LIKE {params.bind(_wildcard(value), 'String')})"
        return like if op == "=" else f"({value_sql} IS NOT NULL AND NOT {like})"
    return f"({value_sql} {op} {params.bind(value, 'String')})"


def _json_raw(path: ast.Path, params: _Params) -> str:
    keys = [str(k + 1) if isinstance(k, int) else params.bind(k, "String") for k in path]
    return f"JSONExtractRaw(json, {', '.join(keys)})"


def _json_value(path: ast.Path, params: _Params) -> str:
    raw = _json_raw(path, params)
    return (
        f"multiIf({raw} IN ('', 'null'), NULL, startsWith({raw}, '\"'), "
        f"JSONExtractString({raw}), {raw})"
    )


def _json(expr: ast.JsonExpr, params: _Params) -> str:
    match expr:
        case ast.JsonOr(items):
            return "(" + " OR ".join(_json(i, params) for i in items) + ")"
        case ast.JsonAnd(items):
            return "(" + " AND ".join(_json(i, params) for i in items) + ")"
        case ast.JsonCompare(path, op, value):
            return _test(_json_value(path, params), op, value, params)
        case ast.JsonIs(path, test):
            raw = _json_raw(path, params)
            if test == "missing":
                return f"({raw} = '')"
            return f"({raw} = '{test}')"
    raise TypeError(f"not a JSON pattern node: {expr!r}")  # pragma: no cover


def _column(index: str, column: ast.Column, params: _Params) -> str:
    cell = f"replaceRegexpOne(arrayElement(_cols, {index}), '^[\"\\\\[](.*)[\"\\\\]]$', '\\\\1')"
    tests = [_test(cell, t.op, t.value, params) for t in column.tests]
    return "(" + (" OR " if column.any_of else " AND ").join(tests) + ")"


def _delimited(pattern: ast.Delimited, params: _Params) -> str:
    columns = pattern.columns
    ellipses = [i for i, c in enumerate(columns) if c.name is None]
    named = len(columns) - len(ellipses)
    conditions: list[str] = []
    if ellipses:
        conditions.append(f"length(_cols) >= {named}")
        head, tail = columns[: ellipses[0]], columns[ellipses[-1] + 1 :]
        conditions += [_column(str(i + 1), c, params) for i, c in enumerate(head) if c.tests]
        conditions += [
            _column(str(i - len(tail)), c, params) for i, c in enumerate(tail) if c.tests
        ]
    else:
        conditions.append(f"length(_cols) = {named}")
        conditions += [_column(str(i + 1), c, params) for i, c in enumerate(columns) if c.tests]
    body = " AND ".join(conditions)
    return f"arrayExists(_cols -> {body}, [extractAll(message, '{_sql_escape(_COLUMNS)}')])"


def _sql_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def compile_pattern(pattern: ast.Pattern) -> tuple[str, dict[str, Any]]:
    """The SQL condition of ``pattern`` and its parameters (see the module docstring).
    Never raises for a tree ``parse_pattern`` produced."""
    params = _Params()
    match pattern:
        case ast.MatchAll():
            return "1", {}
        case ast.Terms(every, some, none):
            parts = [f"(position(message, {params.bind(t, 'String')}) > 0)" for t in every]
            if some:
                alternatives = [
                    f"(position(message, {params.bind(t, 'String')}) > 0)" for t in some
                ]
                parts.append("(" + " OR ".join(alternatives) + ")")
            parts += [f"(position(message, {params.bind(t, 'String')}) = 0)" for t in none]
            return "(" + " AND ".join(parts) + ")", params.values
        case ast.Json(expr):
            return f"(json != '' AND {_json(expr, params)})", params.values
        case ast.Regex(regex):
            return f"match(message, {params.bind(check(regex).pattern, 'String')})", params.values
        case ast.Delimited():
            return _delimited(pattern, params), params.values
    raise TypeError(f"not a filter pattern: {pattern!r}")  # pragma: no cover
