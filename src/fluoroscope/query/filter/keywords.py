"""The filter language's vocabulary as tables: keyword types, operators, scopes.

Shared by the parser (which enforces them) and the compiler (which maps them to
storage). Changing what a keyword admits means editing a table here, not code.

- ``KEYWORD_TYPES``: every simple keyword's ``ValueType`` (boolean, number, string).
- ``OPERATORS``: comparison token → AST operator; ``OPERATORS_FOR``: which operators a
  value type admits (booleans ``= !=``; numbers ``= != < <= > >=``; strings ``= !=
  contains beginswith endswith``).
- ``SCOPE_KEYWORDS``: the simple keywords allowed at trace level, inside
  ``service(){}``, ``edge(){}``, ``rootcause.*{}`` and in an entity selector
  (§5.3; annotations are allowed in the first three, ``ANNOTATION_SCOPES``).
- ``COMPOUND_SCOPES``: where ``service``, ``edge``, ``id``, ``rootcause.*``,
  ``rootcause.json`` and ``group.name``/``group.arn`` may appear (never nested in a body).
"""

from __future__ import annotations

import enum
from typing import Literal

from fluoroscope.query.filter.ast import CompareOp
from fluoroscope.query.filter.tokens import TokenKind

__all__ = [
    "ANNOTATION_EXPECTS",
    "ANNOTATION_SCOPES",
    "COMPOUND_SCOPES",
    "ID_ARGS",
    "KEYWORD_TYPES",
    "OPERATORS",
    "OPERATORS_FOR",
    "ROOT_CAUSES",
    "SCOPE_KEYWORDS",
    "UNARY_START",
    "VALUE_TOKENS",
    "RootCauseKey",
    "Scope",
    "ValueType",
]


class Scope(enum.Enum):
    """Where a condition sits; the value is how error messages name the place."""

    TRACE = "at trace level"
    SERVICE = "inside service(){...}"
    EDGE = "inside edge(){...}"
    ROOT_CAUSE = "inside rootcause.*{...}"
    SELECTOR = "in an entity selector"


class ValueType(enum.Enum):
    """The type of a simple keyword; the value is how error messages name a value."""

    BOOLEAN = "true or false"
    NUMBER = "a number"
    STRING = "a string"


_B, _N, _S = ValueType.BOOLEAN, ValueType.NUMBER, ValueType.STRING

KEYWORD_TYPES: dict[str, ValueType] = {
    **dict.fromkeys(
        (
            "ok",
            "error",
            "throttle",
            "fault",
            "partial",
            "inferred",
            "root",
            "first",
            "last",
            "remote",
        ),
        _B,
    ),
    **dict.fromkeys(
        ("responsetime", "duration", "http.status", "index", "coverage"),
        _N,
    ),
    **dict.fromkeys(
        (
            "http.url",
            "http.method",
            "http.useragent",
            "http.clientip",
            "user",
            "name",
            "type",
            "message",
            "availabilityzone",
            "instance.id",
            "resource.arn",
        ),
        _S,
    ),
}

OPERATORS: dict[TokenKind, CompareOp] = {
    TokenKind.EQ: "=",
    TokenKind.NE: "!=",
    TokenKind.LT: "<",
    TokenKind.LE: "<=",
    TokenKind.GT: ">",
    TokenKind.GE: ">=",
    TokenKind.CONTAINS: "contains",
    TokenKind.BEGINSWITH: "beginswith",
    TokenKind.ENDSWITH: "endswith",
}

OPERATORS_FOR: dict[ValueType, tuple[CompareOp, ...]] = {
    _B: ("=", "!="),
    _N: ("=", "!=", "<", "<=", ">", ">="),
    _S: ("=", "!=", "contains", "beginswith", "endswith"),
}

VALUE_TOKENS: dict[TokenKind, ValueType] = {
    TokenKind.TRUE: _B,
    TokenKind.FALSE: _B,
    TokenKind.NUMBER: _N,
    TokenKind.STRING: _S,
}

_TRACE_KEYWORDS = frozenset(
    (
        "ok",
        "error",
        "throttle",
        "fault",
        "partial",
        "inferred",
        "responsetime",
        "duration",
        "http.status",
        "http.url",
        "http.method",
        "http.useragent",
        "http.clientip",
        "user",
        "availabilityzone",
        "instance.id",
        "resource.arn",
    )
)
SCOPE_KEYWORDS: dict[Scope, frozenset[str]] = {
    Scope.TRACE: _TRACE_KEYWORDS,
    Scope.SERVICE: _TRACE_KEYWORDS | {"root", "name", "type"},
    Scope.EDGE: frozenset(
        (
            "ok",
            "error",
            "throttle",
            "fault",
            "responsetime",
            "duration",
            "http.status",
            "http.url",
            "http.method",
            "http.useragent",
            "http.clientip",
        )
    ),
    Scope.ROOT_CAUSE: frozenset(
        ("name", "type", "message", "inferred", "remote", "first", "last", "index", "coverage")
    ),
    Scope.SELECTOR: frozenset(),
}
ANNOTATION_SCOPES = frozenset((Scope.TRACE, Scope.SERVICE, Scope.EDGE))

RootCauseKey = tuple[
    Literal["fault", "error", "responsetime"], Literal["service", "entity", "exception"]
]
ROOT_CAUSES: dict[str, RootCauseKey] = {
    "rootcause.fault.service": ("fault", "service"),
    "rootcause.fault.entity": ("fault", "entity"),
    "rootcause.fault.exception": ("fault", "exception"),
    "rootcause.error.service": ("error", "service"),
    "rootcause.error.entity": ("error", "entity"),
    "rootcause.error.exception": ("error", "exception"),
    "rootcause.responsetime.service": ("responsetime", "service"),
    "rootcause.responsetime.entity": ("responsetime", "entity"),
}
_TOP = frozenset((Scope.TRACE,))
_NODES = frozenset((Scope.TRACE, Scope.SELECTOR))
COMPOUND_SCOPES: dict[str, frozenset[Scope]] = {
    "service": _NODES,
    "edge": _NODES,
    "id": _NODES,
    "rootcause.json": _TOP,
    "group.name": _TOP,
    "group.arn": _TOP,
    **dict.fromkeys(ROOT_CAUSES, _TOP),
}
ID_ARGS: dict[str, str] = {"name": "name", "type": "type", "account.id": "account_id"}
UNARY_START = frozenset(
    (TokenKind.BANG, TokenKind.NOT, TokenKind.LPAREN, TokenKind.WORD, TokenKind.ANNOTATION)
)
ANNOTATION_EXPECTS: dict[CompareOp, str] = {
    "=": "a string, a number, true or false",
    "!=": "a string, a number, true or false",
    **dict.fromkeys(("<", "<=", ">", ">="), "a number"),
    **dict.fromkeys(("contains", "beginswith", "endswith"), "a string"),
}
