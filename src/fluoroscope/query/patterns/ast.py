"""The tree of a parsed FilterLogEvents filter pattern (``reference/logs.md`` §3.3).

Every node is a frozen dataclass; ``start``/``end`` (keyword-only, left out of ``==``)
record its span in the pattern text. The shape::

    Pattern :=
      MatchAll()                                 "" and " " (a quoted blank), match all
      Terms(all: tuple[str, ...], any: tuple[str, ...], none: tuple[str, ...])
            ERROR "a phrase" ?WARN ?FATAL -DEBUG: every term of ``all``, at least one of
            ``any`` (when there are some) and none of ``none`` appear in the message
      Json(expr: JsonExpr)                       { $.level = "ERROR" && $.n > 5 }
      Regex(pattern: str)                        %[Ee]rror%
      Delimited(fields: tuple[Column, ...])      [ip, user, ..., status=5*, bytes]

    JsonExpr :=
      JsonOr(items) | JsonAnd(items)             two or more items, never nested alike
      JsonCompare(path: Path, op: "=" "!=" "<" "<=" ">" ">=", value: str | float)
            strings (may hold ``*`` wildcards) only with = and !=
      JsonIs(path: Path, test: "null" | "true" | "false" | "missing")
            IS NULL, IS TRUE, IS FALSE, NOT EXISTS

    Path := tuple[str | int, ...]               $.a.b[0] -> ("a", "b", 0)

    Column(name: str | None, tests: tuple[ColumnTest, ...])
            name None is "..." (any number of columns); tests joined by ``any_of``
    ColumnTest(op, value: str | float)          status_code=5*, bytes>1000
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, TypeAlias

__all__ = [
    "Column",
    "ColumnTest",
    "CompareOp",
    "Delimited",
    "Json",
    "JsonAnd",
    "JsonCompare",
    "JsonExpr",
    "JsonIs",
    "JsonOr",
    "MatchAll",
    "Node",
    "Path",
    "Pattern",
    "Regex",
    "Terms",
]

CompareOp: TypeAlias = Literal["=", "!=", "<", "<=", ">", ">="]
Path: TypeAlias = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Node:
    start: int = field(default=0, compare=False, kw_only=True)
    end: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class MatchAll(Node):
    pass


@dataclass(frozen=True, slots=True)
class Terms(Node):
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()
    none: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JsonCompare(Node):
    path: Path
    op: CompareOp
    value: str | float


@dataclass(frozen=True, slots=True)
class JsonIs(Node):
    path: Path
    test: Literal["null", "true", "false", "missing"]


@dataclass(frozen=True, slots=True)
class JsonAnd(Node):
    items: tuple[JsonExpr, ...]


@dataclass(frozen=True, slots=True)
class JsonOr(Node):
    items: tuple[JsonExpr, ...]


JsonExpr: TypeAlias = JsonOr | JsonAnd | JsonCompare | JsonIs


@dataclass(frozen=True, slots=True)
class Json(Node):
    expr: JsonExpr


@dataclass(frozen=True, slots=True)
class Regex(Node):
    pattern: str


@dataclass(frozen=True, slots=True)
class ColumnTest(Node):
    op: CompareOp
    value: str | float


@dataclass(frozen=True, slots=True)
class Column(Node):
    name: str | None
    tests: tuple[ColumnTest, ...] = ()
    any_of: bool = False


@dataclass(frozen=True, slots=True)
class Delimited(Node):
    columns: tuple[Column, ...]


Pattern: TypeAlias = MatchAll | Terms | Json | Regex | Delimited
