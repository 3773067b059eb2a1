"""Two printed forms of a filter tree.

``to_filter(expr)`` writes canonical filter text: lowercase keywords, uppercase
``AND OR CONTAINS BEGINSWITH ENDSWITH``, ``!`` for negation, JSON-escaped strings and
only the parentheses precedence needs. ``parse_filter(to_filter(e)) == e`` for every
tree the parser can produce.

``to_sexpr(expr)`` writes a compact, unambiguous S-expression used by the test corpus::

    (and (> responsetime 5) (not (flag partial)) (exists annotation[age]))
    (service "api" (or (flag fault) (> responsetime 2.5)))
    (edge id(name="a" type="AWS::Lambda::Function") "b")
    (rootcause fault.entity (= name "x"))  (rootcause.json [{"a":1}])  (group name "g")

Both are pure functions of the tree; positions are ignored.
"""

from __future__ import annotations

import json

from fluoroscope.query.filter.ast import (
    And,
    Compare,
    Edge,
    Exists,
    Expr,
    Field,
    Flag,
    Group,
    Keyword,
    Not,
    Or,
    RootCause,
    RootCauseJson,
    Service,
    ServiceRef,
    Value,
)

__all__ = ["to_filter", "to_sexpr"]

_OR, _AND, _UNARY = 1, 2, 3


_C1 = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


def _string(value: str) -> str:
    """A double-quoted literal; control characters (C0 and C1) escaped as the tokenizer
    requires, everything else literal."""
    return json.dumps(value, ensure_ascii=False).translate(_C1)


def _number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _string(value)
    return _number(value)


def _field(field: Field) -> str:
    if isinstance(field, Keyword):
        return field.name
    if field.key and all(c.isascii() and (c.isalnum() or c == "_") for c in field.key):
        return f"annotation.{field.key}"
    return f"annotation[{_string(field.key)}]"


def _ref(ref: ServiceRef) -> str:
    if ref.name is not None and ref.type is None and ref.account_id is None:
        return _string(ref.name)
    args = [
        f"{label}: {_string(value)}"
        for label, value in (("name", ref.name), ("type", ref.type), ("account.id", ref.account_id))
        if value is not None
    ]
    return f"id({', '.join(args)})"


def _precedence(expr: Expr) -> int:
    return _OR if isinstance(expr, Or) else _AND if isinstance(expr, And) else _UNARY


def _text(expr: Expr, at_least: int) -> str:
    text = _bare_text(expr)
    return f"({text})" if _precedence(expr) < at_least else text


def _body(body: Expr | None) -> str:
    return "" if body is None else f" {{ {_bare_text(body)} }}"


def _bare_text(expr: Expr) -> str:
    match expr:
        case Or(items):
            return " OR ".join(_text(item, _AND) for item in items)
        case And(items):
            return " AND ".join(_text(item, _UNARY) for item in items)
        case Not(inner):
            return "!" + _text(inner, _UNARY)
        case Compare(field, op, value):
            return f"{_field(field)} {op.upper()} {_value(value)}"
        case Flag(keyword):
            return keyword
        case Exists(field):
            return _field(field)
        case Service(ref, body):
            return f"service({'' if ref is None else _ref(ref)}){_body(body)}"
        case Edge(source, dest, body):
            return f"edge({_ref(source)}, {_ref(dest)}){_body(body)}"
        case RootCause(category, level, body):
            return f"rootcause.{category}.{level}{_body(body)}"
        case RootCauseJson(literal):
            return f"rootcause.json = #{literal}"
        case Group(attribute, value):
            return f"group.{attribute} = {_string(value)}"
    raise TypeError(f"not a filter expression node: {expr!r}")


def to_filter(expr: Expr) -> str:
    """Canonical filter text for ``expr`` (see the module docstring)."""
    return _bare_text(expr)


def _sexpr_field(field: Field) -> str:
    return field.name if isinstance(field, Keyword) else f"annotation[{field.key}]"


def _sexpr_ref(ref: ServiceRef | None) -> str:
    if ref is None:
        return "*"
    if ref.name is not None and ref.type is None and ref.account_id is None:
        return _string(ref.name)
    args = [
        f"{label}={_string(value)}"
        for label, value in (("name", ref.name), ("type", ref.type), ("account", ref.account_id))
        if value is not None
    ]
    return f"id({' '.join(args)})"


def _sexpr_body(body: Expr | None) -> str:
    return "" if body is None else " " + to_sexpr(body)


def to_sexpr(expr: Expr) -> str:
    """Compact S-expression for ``expr`` (see the module docstring)."""
    match expr:
        case Or(items) | And(items):
            name = "or" if isinstance(expr, Or) else "and"
            return f"({name} {' '.join(to_sexpr(item) for item in items)})"
        case Not(inner):
            return f"(not {to_sexpr(inner)})"
        case Compare(field, op, value):
            return f"({op} {_sexpr_field(field)} {_value(value)})"
        case Flag(keyword):
            return f"(flag {keyword})"
        case Exists(field):
            return f"(exists {_sexpr_field(field)})"
        case Service(ref, body):
            return f"(service {_sexpr_ref(ref)}{_sexpr_body(body)})"
        case Edge(source, dest, body):
            return f"(edge {_sexpr_ref(source)} {_sexpr_ref(dest)}{_sexpr_body(body)})"
        case RootCause(category, level, body):
            return f"(rootcause {category}.{level} {to_sexpr(body)})"
        case RootCauseJson(literal):
            return f"(rootcause.json {literal})"
        case Group(attribute, value):
            return f"(group {attribute} {_string(value)})"
    raise TypeError(f"not a filter expression node: {expr!r}")
