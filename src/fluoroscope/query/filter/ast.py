"""The expression tree of a parsed filter expression (``reference/xray-protocol.md`` §5).

Every node is a frozen dataclass with ``__slots__``; every node records where it came
from in the expression text as ``start`` (offset of its first character) and ``end``
(offset just past its last character). Positions are keyword-only, default to 0 and are
left out of ``==`` and ``hash``, so two trees parsed from differently spelled but
equivalent texts compare equal.

The shape (``Expr`` is any of the condition nodes)::

    Or(items: tuple[Expr, ...])        two or more; never directly holds an Or
    And(items: tuple[Expr, ...])       two or more; never directly holds an And
    Not(expr: Expr)                    "!" or NOT
    Compare(field: Keyword | Annotation, op: CompareOp, value: str | float | bool)
        op is one of  =  !=  <  <=  >  >=  contains  beginswith  endswith
        number keywords: value is float, op one of = != < <= > >=
        string keywords: value is str, op one of = != contains beginswith endswith
        annotations: value str (string ops), float (number ops) or bool (= !=)
    Flag(keyword: str)                 a boolean keyword that holds: "fault",
                                       "fault = true" and "fault != false" all give
                                       Flag("fault"); "!fault", "fault = false" and
                                       "fault != true" give Not(Flag("fault"))
    Exists(field: Keyword | Annotation)  a bare string keyword or annotation ("is set")
    Service(ref: ServiceRef | None, body: Expr | None)
        service("api") { fault }; service() is ref=None (any node); a bare
        id(...) is shorthand for service(id(...)) without a body
    Edge(source: ServiceRef, dest: ServiceRef, body: Expr | None)
    RootCause(category: "fault" | "error" | "responsetime",
              level: "service" | "entity" | "exception", body: Expr)
    RootCauseJson(json: str)           canonical JSON text of the #[...] literal, always
                                       an array of objects; ``.value`` parses it
    Group(attribute: "name" | "arn", value: str)

    Keyword(name: str)      canonical lowercase keyword, e.g. "responsetime",
                            "http.status", "http.url", "user", "name", "message"
    Annotation(key: str)    annotation key exactly as written (case kept)
    ServiceRef(name: str | None, type: str | None, account_id: str | None)
                            at least one is set; a plain "string" sets only name

Which keywords a ``Compare``/``Flag``/``Exists`` may carry depends on where it sits
(trace level, inside ``service(){}``, ``edge(){}`` or ``rootcause.*{}``); the parser
enforces the table in ``fluoroscope.query.filter.parser``. Contexts nest only one
level: a body never contains ``Service``, ``Edge``, ``RootCause``, ``RootCauseJson`` or
``Group``.

Numbers are always ``float`` (``http.status = 200`` gives ``200.0``). Strings are the
decoded values (escapes resolved), never the quoted source text. A ``bool`` value only
occurs on annotations; test ``isinstance(value, bool)`` before ``float`` (and note that
``True == 1.0``, so ``==`` on trees does not tell ``annotation.x = true`` from
``annotation.x = 1``; ``to_sexpr`` does).
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

__all__ = [
    "And",
    "Annotation",
    "Compare",
    "CompareOp",
    "Edge",
    "Exists",
    "Expr",
    "Field",
    "Flag",
    "Group",
    "Keyword",
    "Node",
    "Not",
    "Or",
    "RootCause",
    "RootCauseJson",
    "Service",
    "ServiceRef",
    "Value",
]

CompareOp: TypeAlias = Literal[
    "=", "!=", "<", "<=", ">", ">=", "contains", "beginswith", "endswith"
]
Value: TypeAlias = str | float | bool


@dataclass(frozen=True, slots=True)
class Node:
    """Base of every tree node: the source span ``[start, end)`` in the expression."""

    start: int = field(default=0, compare=False, kw_only=True)
    end: int = field(default=0, compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Keyword(Node):
    """A simple keyword used as a comparison field, by canonical lowercase name."""

    name: str


@dataclass(frozen=True, slots=True)
class Annotation(Node):
    """``annotation.key`` or ``annotation[key]``; ``key`` is case-sensitive."""

    key: str


Field: TypeAlias = Keyword | Annotation


@dataclass(frozen=True, slots=True)
class ServiceRef(Node):
    """A node identity: a plain ``"name"`` or ``id(name:, type:, account.id:)``."""

    name: str | None = None
    type: str | None = None
    account_id: str | None = None


@dataclass(frozen=True, slots=True)
class Or(Node):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class And(Node):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    expr: Expr


@dataclass(frozen=True, slots=True)
class Compare(Node):
    field: Field
    op: CompareOp
    value: Value


@dataclass(frozen=True, slots=True)
class Flag(Node):
    """A boolean keyword (``fault``, ``ok``, ``root``, ``remote`` ...) that is true."""

    keyword: str


@dataclass(frozen=True, slots=True)
class Exists(Node):
    """A string keyword or annotation that is set (bare ``http.url``, ``annotation.age``)."""

    field: Field


@dataclass(frozen=True, slots=True)
class Service(Node):
    ref: ServiceRef | None
    body: Expr | None = None


@dataclass(frozen=True, slots=True)
class Edge(Node):
    source: ServiceRef
    dest: ServiceRef
    body: Expr | None = None


@dataclass(frozen=True, slots=True)
class RootCause(Node):
    category: Literal["fault", "error", "responsetime"]
    level: Literal["service", "entity", "exception"]
    body: Expr


@dataclass(frozen=True, slots=True)
class RootCauseJson(Node):
    """``rootcause.json = #[{...}]``: ``json`` is canonical (sorted, compact) JSON text."""

    json: str

    @property
    def value(self) -> list[dict[str, object]]:
        """The parsed literal: a list of root-cause objects (a fresh copy each call)."""
        parsed: list[dict[str, object]] = _json.loads(self.json)
        return parsed


@dataclass(frozen=True, slots=True)
class Group(Node):
    attribute: Literal["name", "arn"]
    value: str


Expr: TypeAlias = (
    Or | And | Not | Compare | Flag | Exists | Service | Edge | RootCause | RootCauseJson | Group
)
