"""Print a filter-pattern tree back as pattern text: ``parse_pattern(to_pattern(p)) == p``
for every tree the parser produces. Pure; positions are ignored."""

from __future__ import annotations

import re

from fluoroscope.query.patterns import ast

__all__ = ["to_pattern"]

_BARE_TERM = re.compile(r'[^\s"?\-{\[%][^\s"]*')
_BARE_VALUE = re.compile(r"[A-Za-z_*][^\s=!<>(){}&|\",\[\]]*")
_BARE_KEY = re.compile(r"[^\s.\[\]=!<>(){}&|\"',*$]+")


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _term(text: str) -> str:
    return text if _BARE_TERM.fullmatch(text) else _quoted(text)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)


def _value(value: str | float) -> str:
    if isinstance(value, float):
        return _number(value)
    return value if _BARE_VALUE.fullmatch(value) else _quoted(value)


def _path(path: ast.Path) -> str:
    return "$" + "".join(f"[{k}]" if isinstance(k, int) else f".{k}" for k in path)


def _json(expr: ast.JsonExpr, top: bool = False) -> str:
    match expr:
        case ast.JsonOr(items):
            text = " || ".join(_json(i) for i in items)
            return text if top else f"({text})"
        case ast.JsonAnd(items):
            return " && ".join(_json(i) for i in items)
        case ast.JsonCompare(path, op, value):
            return f"{_path(path)} {op} {_value(value)}"
        case ast.JsonIs(path, test):
            suffix = "NOT EXISTS" if test == "missing" else f"IS {test.upper()}"
            return f"{_path(path)} {suffix}"
    raise TypeError(f"not a JSON pattern node: {expr!r}")  # pragma: no cover


def _column(column: ast.Column) -> str:
    if column.name is None:
        return "..."
    joiner = " || " if column.any_of else " && "
    tests = joiner.join(f"{column.name} {t.op} {_value(t.value)}" for t in column.tests)
    return tests or column.name


def to_pattern(pattern: ast.Pattern) -> str:
    """Pattern text for ``pattern``."""
    match pattern:
        case ast.MatchAll():
            return ""
        case ast.Terms(every, some, none):
            words = [_term(t) for t in every] + [f"?{_term(t)}" for t in some]
            return " ".join(words + [f"-{_term(t)}" for t in none])
        case ast.Json(expr):
            return "{ " + _json(expr, top=True) + " }"
        case ast.Regex(regex):
            return f"%{regex}%"
        case ast.Delimited(columns):
            return "[" + ", ".join(_column(c) for c in columns) + "]"
    raise TypeError(f"not a filter pattern: {pattern!r}")  # pragma: no cover
