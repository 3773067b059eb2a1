"""The tree of a parsed Logs Insights query (``reference/logs.md`` §4).

Every node is a frozen dataclass with ``__slots__`` recording its source span as
``start``/``end`` (keyword-only, left out of ``==`` and ``hash``, so two trees parsed
from differently spelled but equivalent texts compare equal).

The shape::

    Query(commands: tuple[Command, ...])          one or more, in pipeline order

    Command :=
      Fields(items: tuple[Alias, ...])            fields a, b + 1 as c
      Display(items: tuple[Field, ...])           display a, b
      Filter(expr: Expr)                          filter a > 5 and b like /x/
      Stats(aggs: tuple[Alias, ...], by: tuple[Alias, ...])
                                                  stats count(*) as n by bin(5m), f
      Sort(keys: tuple[SortKey, ...])             sort a desc, b   ("sort by" too)
      Limit(count: int)                           limit 20
      Parse(source: Expr, pattern: str, regex: bool, names: tuple[str, ...])
            glob (regex False): pattern holds '*' and names are given with 'as';
            regex (True): names are the pattern's named groups, in order
      Dedup(items: tuple[Field, ...])             dedup a, b

    Alias(expr: Expr, name: str | None)           "expr as name"; name None if unnamed
    SortKey(expr: Expr, descending: bool)         asc is the default

    Expr :=
      Field(name: str)                            @message, a.b.0.c, `foo-bar`
      Str(value: str)                             "text" / 'text' (decoded)
      Num(value: float)                           5, 2.5  (always float)
      Duration(value: float, unit: str)           5m, 1h, 30s  (unit in tokens.DURATION_UNITS)
      Regex(pattern: str)                         /re/ (pattern text between the slashes)
      Star()                                      the * of count(*)
      Call(name: str, args: tuple[Expr, ...])     lower-case function name
      Neg(expr: Expr)                             -x
      Not(expr: Expr)                             not x
      Binary(op: BinaryOp, left: Expr, right: Expr)
            op: "and" "or" "=" "!=" "<" "<=" ">" ">=" "+" "-" "*" "/" "%" "^"
      Like(expr: Expr, pattern: Str | Regex, negated: bool)
            "x like 'a'", "x like /a/", "x =~ /a/" (negated False), "x not like ..."
      In(expr: Expr, items: tuple[Expr, ...], negated: bool)   x [not] in [1, "a"]

Numbers are ``float``; strings the decoded values; field names as written (back quotes
removed). Which functions exist and which are aggregates is the business of
``fluoroscope.query.insights.functions``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

__all__ = [
    "Alias",
    "Binary",
    "BinaryOp",
    "Call",
    "Command",
    "Dedup",
    "Display",
    "Duration",
    "Expr",
    "Field",
    "Fields",
    "Filter",
    "In",
    "Like",
    "Limit",
    "Neg",
    "Node",
    "Not",
    "Num",
    "Parse",
    "Query",
    "Regex",
    "Sort",
    "SortKey",
    "Star",
    "Stats",
    "Str",
]

BinaryOp: TypeAlias = Literal[
    "and", "or", "=", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "^"
]


@dataclass(frozen=True, slots=True)
class Node:
    """Base of every node: the source span ``[start, end)`` in the query text."""

    start: int = field(default=0, compare=False, kw_only=True)
    end: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Field(Node):
    name: str


@dataclass(frozen=True, slots=True)
class Str(Node):
    value: str


@dataclass(frozen=True, slots=True)
class Num(Node):
    value: float


@dataclass(frozen=True, slots=True)
class Duration(Node):
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Regex(Node):
    pattern: str


@dataclass(frozen=True, slots=True)
class Star(Node):
    pass


@dataclass(frozen=True, slots=True)
class Call(Node):
    name: str
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Neg(Node):
    expr: Expr


@dataclass(frozen=True, slots=True)
class Not(Node):
    expr: Expr


@dataclass(frozen=True, slots=True)
class Binary(Node):
    op: BinaryOp
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Like(Node):
    expr: Expr
    pattern: Str | Regex
    negated: bool = False


@dataclass(frozen=True, slots=True)
class In(Node):
    expr: Expr
    items: tuple[Expr, ...]
    negated: bool = False


Expr: TypeAlias = (
    Field | Str | Num | Duration | Regex | Star | Call | Neg | Not | Binary | Like | In
)


@dataclass(frozen=True, slots=True)
class Alias(Node):
    expr: Expr
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SortKey(Node):
    expr: Expr
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Fields(Node):
    items: tuple[Alias, ...]


@dataclass(frozen=True, slots=True)
class Display(Node):
    items: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class Filter(Node):
    expr: Expr


@dataclass(frozen=True, slots=True)
class Stats(Node):
    aggs: tuple[Alias, ...]
    by: tuple[Alias, ...] = ()


@dataclass(frozen=True, slots=True)
class Sort(Node):
    keys: tuple[SortKey, ...]


@dataclass(frozen=True, slots=True)
class Limit(Node):
    count: int


@dataclass(frozen=True, slots=True)
class Parse(Node):
    source: Expr
    pattern: str
    regex: bool
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Dedup(Node):
    items: tuple[Field, ...]


Command: TypeAlias = Fields | Display | Filter | Stats | Sort | Limit | Parse | Dedup


@dataclass(frozen=True, slots=True)
class Query(Node):
    """``text``: the query text it was parsed from (compile errors point into it)."""

    commands: tuple[Command, ...]
    text: str = field(default="", compare=False, kw_only=True)
