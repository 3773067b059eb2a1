"""Typed SQL fragments and parameter binding shared by the compiler's modules.

A ``Sql`` is a piece of ClickHouse SQL with the Insights type it stands for: ``STR``
(``Nullable(String)``), ``NUM`` (a number, always ``Float64``: the engine has no common
type for Int64 and Float64), ``TIME`` (``DateTime64(3, 'UTC')``) or
``BOOL`` (a ``UInt8`` condition). An absent field is ``NULL`` in every type. ``Params``
binds every value that came from the query text as a ``{pN:Type}`` parameter - user text
is never pasted into a statement. Numbers the parser produced (finite floats) are
written as literals.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Kind", "Params", "Sql", "literal", "number", "to_bool", "to_num", "to_str", "to_time"]


class Kind(enum.Enum):
    STR = "string"
    NUM = "number"
    TIME = "time"
    BOOL = "boolean"


@dataclass(frozen=True, slots=True)
class Sql:
    """``text``: the SQL; ``kind``: its type; ``agg``: whether it holds an aggregate."""

    text: str
    kind: Kind
    agg: bool = False


@dataclass
class Params:
    """The parameters of one statement, named ``p0, p1, ...``."""

    values: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any, sql_type: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{sql_type}}}"


_LITERAL_ESCAPES = str.maketrans({"\\": "\\\\", "'": "\\'"})


def literal(text: str) -> str:
    """A SQL string literal of the compiler's own constant text (never user text)."""
    return "'" + text.translate(_LITERAL_ESCAPES) + "'"


def number(value: float) -> str:
    """A finite float as a SQL literal (``toFloat64(...)`` keeps the type Float64)."""
    return f"toFloat64({value!r})"


def to_str(e: Sql) -> Sql:
    match e.kind:
        case Kind.STR:
            return e
        case Kind.BOOL:
            return Sql(f"toString(toUInt8({e.text}))", Kind.STR, e.agg)
    return Sql(f"toString({e.text})", Kind.STR, e.agg)


def to_num(e: Sql) -> Sql:
    match e.kind:
        case Kind.NUM:
            return e
        case Kind.STR:
            return Sql(f"toFloat64OrNull({e.text})", Kind.NUM, e.agg)
        case Kind.TIME:
            return Sql(f"toFloat64(toUnixTimestamp64Milli({e.text}))", Kind.NUM, e.agg)
    return Sql(f"toFloat64({e.text})", Kind.NUM, e.agg)


def to_time(e: Sql) -> Sql:
    match e.kind:
        case Kind.TIME:
            return e
        case Kind.STR:
            return Sql(f"toDateTime64OrNull({e.text}, 3, 'UTC')", Kind.TIME, e.agg)
    num = to_num(e)
    return Sql(f"fromUnixTimestamp64Milli(toInt64({num.text}), 'UTC')", Kind.TIME, e.agg)


def to_bool(e: Sql) -> Sql:
    match e.kind:
        case Kind.BOOL:
            return e
        case Kind.STR:
            return Sql(f"({e.text} NOT IN ('', '0', 'false'))", Kind.BOOL, e.agg)
    return Sql(f"({to_num(e).text} != 0)", Kind.BOOL, e.agg)
