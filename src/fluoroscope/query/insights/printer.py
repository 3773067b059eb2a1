"""Print a query tree back as canonical Logs Insights text.

``to_text(query)`` writes commands joined by `` | ``, lower-case keywords, double-quoted
strings (``\\\\ \\" \\n \\r \\t`` escaped), names bare when they tokenize as one name
and back-quoted otherwise, and only the parentheses precedence needs.
``parse(to_text(q)) == q`` for every tree the parser can produce. ``expr_text(e)`` prints
one expression; the compiler names an un-aliased ``stats`` column with it
(``count(*)``, ``bin(5m)``, ``pct(@duration, 99)``).

Pure functions of the tree; positions are ignored.
"""

from __future__ import annotations

import re

from fluoroscope.query.insights import ast

__all__ = ["expr_text", "name_text", "to_text"]

_OR, _AND, _NOT, _CMP, _ADD, _MUL, _POW, _UNARY, _ATOM = range(1, 10)
_LEVEL: dict[str, int] = {
    "or": _OR,
    "and": _AND,
    **dict.fromkeys(("=", "!=", "<", "<=", ">", ">="), _CMP),
    "+": _ADD,
    "-": _ADD,
    "*": _MUL,
    "/": _MUL,
    "%": _MUL,
    "^": _POW,
}
_BARE_NAME = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_@$]+)*")
_RESERVED = frozenset({"and", "or", "not", "like", "in", "as", "by", "asc", "desc"})
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def name_text(name: str) -> str:
    """A field name as it must be written: bare if it reads back as one name."""
    if _BARE_NAME.fullmatch(name) and name.lower() not in _RESERVED:
        return name
    return f"`{name}`"


def _string(value: str) -> str:
    return '"' + value.translate(_STRING_ESCAPES) + '"'


def _level(expr: ast.Expr) -> int:
    match expr:
        case ast.Binary(op):
            return _LEVEL[op]
        case ast.Not():
            return _NOT
        case ast.Like() | ast.In():
            return _CMP
        case ast.Neg():
            return _UNARY
    return _ATOM


def _sub(expr: ast.Expr, at_least: int) -> str:
    text = expr_text(expr)
    return f"({text})" if _level(expr) < at_least else text


def expr_text(expr: ast.Expr) -> str:
    """Canonical text of one expression."""
    match expr:
        case ast.Field(name):
            return name_text(name)
        case ast.Str(value):
            return _string(value)
        case ast.Num(value):
            return _number(value) if value >= 0 else f"({_number(value)})"
        case ast.Duration(value, unit):
            return f"{_number(value)}{unit}"
        case ast.Regex(pattern):
            return f"/{pattern}/"
        case ast.Star():
            return "*"
        case ast.Call(name, args):
            return f"{name}({', '.join(expr_text(a) for a in args)})"
        case ast.Neg(inner):
            return "-" + _sub(inner, _UNARY)
        case ast.Not(inner):
            return "not " + _sub(inner, _NOT)
        case ast.Binary(op, left, right):
            level = _LEVEL[op]
            if op == "^":
                return f"{_sub(left, _UNARY)} ^ {_sub(right, _POW)}"
            if level == _CMP:
                return f"{_sub(left, _ADD)} {op} {_sub(right, _ADD)}"
            return f"{_sub(left, level)} {op} {_sub(right, level + 1)}"
        case ast.Like(inner, pattern, negated):
            verb = "not like" if negated else "like"
            return f"{_sub(inner, _ADD)} {verb} {expr_text(pattern)}"
        case ast.In(inner, items, negated):
            verb = "not in" if negated else "in"
            return f"{_sub(inner, _ADD)} {verb} [{', '.join(expr_text(i) for i in items)}]"
    raise TypeError(f"not an expression node: {expr!r}")


def _alias(alias: ast.Alias) -> str:
    text = expr_text(alias.expr)
    return text if alias.name is None else f"{text} as {name_text(alias.name)}"


def _command(command: ast.Command) -> str:
    match command:
        case ast.Fields(items):
            return "fields " + ", ".join(_alias(a) for a in items)
        case ast.Display(items):
            return "display " + ", ".join(name_text(f.name) for f in items)
        case ast.Dedup(items):
            return "dedup " + ", ".join(name_text(f.name) for f in items)
        case ast.Filter(expr):
            return "filter " + expr_text(expr)
        case ast.Stats(aggs, by):
            text = "stats " + ", ".join(_alias(a) for a in aggs)
            return text + (" by " + ", ".join(_alias(a) for a in by) if by else "")
        case ast.Sort(keys):
            return "sort " + ", ".join(
                expr_text(k.expr) + (" desc" if k.descending else "") for k in keys
            )
        case ast.Limit(count):
            return f"limit {count}"
        case ast.Parse(source, pattern, regex, names):
            head = f"parse {expr_text(source)} "
            if regex:
                return head + f"/{pattern}/"
            return head + _string(pattern) + " as " + ", ".join(name_text(n) for n in names)
    raise TypeError(f"not a command node: {command!r}")


def to_text(query: ast.Query) -> str:
    """Canonical query text for ``query``."""
    return " | ".join(_command(c) for c in query.commands)
