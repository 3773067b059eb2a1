"""Compile a parsed filter expression into a condition on the trace summary table.

Every keyword the summary row answers exactly becomes SQL over its columns, with each
user value bound as a ``{pN:Type}`` parameter - nothing from the expression is ever
pasted into the statement. What the store cannot yet answer exactly is refused with an
:class:`~fluoroscope.model.errors.InvalidRequest` naming the construct and its position,
never approximated silently.

Semantics (reference §5.3, with our choices where it is silent):

* trace-level ``ok``/``error``/``fault`` describe the root segment; ``throttle`` and
  ``partial`` any segment; ``inferred`` whether the trace has inferred nodes.
* keywords with several values per trace (``user``, ``resource.arn``, ``instance.id``, ``availabilityzone``, annotations) hold when any
  value satisfies the comparison; ``!=`` holds when no value equals the operand.
* ``service(ref) { body }`` holds when some node of the trace matches ``ref`` and the
  body holds for that node's segments taken together: outcome flags are OR-ed over them,
  ``responsetime > x`` means some segment took longer than ``x`` (the slowest), and
  ``responsetime < x`` some segment was faster (the quickest).
* ``id(account.id: "a")`` matches a node whose ``AccountId`` (the ``aws.account_id`` of
  its first segment; empty for inferred nodes) is ``a``.
* inside ``rootcause.*{}``, ``first``/``last``/``index`` place the item in its
  enumerated list, from 0: a service in its cause's ``Services`` (one per cause, so
  always first and last), an entity in its ``EntityPath``, an exception in its entity's
  ``Exceptions`` (``fluoroscope.query.causes``).
* ``rootcause.json = #[...]`` holds when each listed root cause matches one of the
  trace's (:func:`fluoroscope.query.causes.json_condition`).

Pure and thread-safe.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.model.inference import ERROR, FAULT, THROTTLE
from fluoroscope.query import causes
from fluoroscope.query.filter import ast
from fluoroscope.query.filter.parser import parse_filter
from fluoroscope.store.store import ROOT_CAUSE_CATEGORIES, ROOT_CAUSE_LEVELS

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "Condition",
    "GroupResolver",
    "both",
    "compile_filter",
    "filter_condition",
    "sample_condition",
]

_ANN_STRING, _ANN_NUMBER, _ANN_BOOL = 0, 1, 2

# Trace-level scalar columns: keyword -> (column, ClickHouse parameter type)
_SCALARS: Final[dict[str, tuple[str, str]]] = {
    "responsetime": ("response_time", "Float64"),
    "duration": ("duration", "Float64"),
    "http.status": ("http_status", "Float64"),
    "http.url": ("http_url", "String"),
    "http.method": ("http_method", "String"),
    "http.useragent": ("user_agent", "String"),
    "http.clientip": ("client_ip", "String"),
}
# Trace-level array columns of strings: any element may satisfy the comparison.
_ARRAYS: Final[dict[str, str]] = {
    "user": "users",
    "resource.arn": "resource_arns",
    "instance.id": "instance_ids",
    "availabilityzone": "zones",
}
_FLAGS: Final[dict[str, str]] = {
    "ok": "(has_fault = 0 AND has_error = 0 AND has_throttle = 0)",
    "error": "has_error = 1",
    "fault": "has_fault = 1",
    "throttle": "has_throttle = 1",
    "partial": "is_partial = 1",
    "inferred": "has(svc_inferred, 1)",
}


@dataclass(frozen=True, slots=True)
class _Scope:
    """The columns a ``service(){}`` or ``edge(){}`` body reads, for the element at hand."""

    what: str
    bits: str
    quickest: str
    slowest: str
    extra_flags: tuple[tuple[str, str], ...] = ()

    def flag(self, keyword: str) -> str | None:
        bits = {
            "ok": ERROR | FAULT | THROTTLE,
            "error": ERROR,
            "fault": FAULT,
            "throttle": THROTTLE,
        }
        if keyword == "ok":
            return f"bitAnd({self.bits}, {bits['ok']}) = 0"
        if keyword in bits:
            return f"bitAnd({self.bits}, {bits[keyword]}) != 0"
        return dict(self.extra_flags).get(keyword)


# A quickest response time equal to the slowest is stored as NaN (store/encode.py).
_SERVICE_SCOPE: Final = _Scope(
    "service() { }",
    "sb",
    "if(isNaN(smin), smax, smin)",
    "smax",
    (("root", "sr = 1"), ("inferred", "si = 1")),
)
# service() scopes walk the per-service arrays side by side (measured at 5M spans: 45x
# faster than indexing them by position inside the lambda).
_SERVICE_ARRAYS: Final = (
    ("sb", "svc_bits"),  # first: the one kept when the body reads none (see _lambda)
    ("sn", "service_names"),
    ("st", "service_types"),
    ("sr", "svc_root"),
    ("si", "svc_inferred"),
    ("smin", "svc_min_rt"),
    ("smax", "svc_max_rt"),
)
_EDGE_SCOPE: Final = _Scope("edge() { }", "eb", "if(isNaN(emin), emax, emin)", "emax")
_EDGE_FACTS: Final = (("eb", "edge_bits"), ("emin", "edge_min_rt"), ("emax", "edge_max_rt"))
_ANNOTATION_ARRAYS: Final = (
    ("k", "ann_keys"), ("t", "ann_types"), ("s", "ann_strings"), ("n", "ann_numbers"),
)  # fmt: skip
_CAUSE_ARRAYS: Final = (
    ("rc", "rc_cat"), ("rl", "rc_level"), ("rn", "rc_name"), ("rt", "rc_type"),
    ("rm", "rc_message"), ("rr", "rc_remote"), ("ri", "rc_inferred"), ("rv", "rc_coverage"),
)  # fmt: skip
"""A root-cause item's columns as the lambda parameters root_cause() names them (only
those its test reads are handed to the lambda: see :func:`_lambda`)."""
# rootcause.*{} keywords -> the lambda parameters root_cause() gives the item's columns
_CAUSE_COLUMNS: Final = {"name": "rn", "type": "rt", "message": "rm"}
_NUMBER_OPS: Final = {"=": "=", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
_STRING_OPS: Final[dict[str, Callable[[str, str], str]]] = {
    "=": lambda col, p: f"{col} = {p}",
    "!=": lambda col, p: f"{col} != {p}",
    "contains": lambda col, p: f"position({col}, {p}) > 0",
    "beginswith": lambda col, p: f"startsWith({col}, {p})",
    "endswith": lambda col, p: f"endsWith({col}, {p})",
}


@dataclass(slots=True)
class Condition:
    """A SQL boolean expression over the ``traces`` table and its bound parameters."""

    sql: str
    params: dict[str, Any] = field(default_factory=dict)

    def prefixed(self, prefix: str) -> Condition:
        """The same condition with its parameters renamed ``prefix + name``, so several
        compiled conditions can be bound in one statement."""
        sql = self.sql
        for name in self.params:
            sql = sql.replace(f"{{{name}:", f"{{{prefix}{name}:")
        return Condition(sql, {prefix + name: v for name, v in self.params.items()})


GroupResolver = Callable[[str, str], str | None]
"""``(attribute, value) -> filter text`` of the group whose ``name``/``arn`` is ``value``
(``None`` for a group without a filter); raises InvalidRequest for an unknown group."""

_MAX_GROUP_NESTING: Final = 4


@dataclass(slots=True)
class _Compiler:
    groups: GroupResolver | None = None
    params: dict[str, Any] = field(default_factory=dict)
    depth: int = 0
    positions: bool = False  # the rootcause body being compiled uses first/last/index

    def bind(self, value: Any, type_: str) -> str:
        name = f"f{len(self.params)}"
        self.params[name] = value
        return f"{{{name}:{type_}}}"

    # -- trace level -----------------------------------------------------------------

    def expr(self, node: ast.Expr) -> str:
        match node:
            case ast.Or(items=items):
                return "(" + " OR ".join(self.expr(i) for i in items) + ")"
            case ast.And(items=items):
                return "(" + " AND ".join(self.expr(i) for i in items) + ")"
            case ast.Not(expr=inner):
                return f"NOT ({self.expr(inner)})"
            case ast.Flag(keyword=keyword):
                if keyword not in _FLAGS:
                    raise _unsupported(node, f"'{keyword}' at the trace level")
                return _FLAGS[keyword]
            case ast.Compare(field=ast.Annotation(key=key), op=op, value=value):
                return self.annotation(key, op, value)
            case ast.Compare(field=ast.Keyword(name=name), op=op, value=value):
                return self.keyword(node, name, op, value)
            case ast.Exists(field=ast.Annotation(key=key)):
                return f"has(ann_keys, {self.bind(key, 'String')})"
            case ast.Exists(field=ast.Keyword(name=name)):
                if name in _ARRAYS:
                    return f"notEmpty({_ARRAYS[name]})"
                if name in _SCALARS and _SCALARS[name][1] == "String":
                    return f"{_SCALARS[name][0]} != ''"
                raise _unsupported(node, f"'{name}' as an existence test")
            case ast.Service(ref=ref, body=body):
                return self.service(ref, body)
            case ast.Edge(source=source, dest=dest, body=body):
                return self.edge(source, dest, body)
            case ast.RootCause(category=category, level=level, body=body):
                return self.root_cause(category, level, body)
            case ast.RootCauseJson():
                return causes.json_condition(node, self.bind)
            case ast.Group(attribute=attribute, value=value):
                return self.group(node, attribute, value)
        raise _unsupported(node, type(node).__name__)  # pragma: no cover - exhaustive

    def group(self, node: ast.Node, attribute: str, value: str) -> str:
        if self.groups is None:
            raise _unsupported(node, "group references")
        if self.depth >= _MAX_GROUP_NESTING:
            raise InvalidRequest(
                f"group references nest deeper than {_MAX_GROUP_NESTING} (a group that refers to itself?)"
            )
        text = self.groups(attribute, value)
        if text is None or not text.strip():
            return "1"
        self.depth += 1
        try:
            return f"({self.expr(parse_filter(text))})"
        finally:
            self.depth -= 1

    def keyword(self, node: ast.Node, name: str, op: str, value: ast.Value) -> str:
        if name in _SCALARS:
            column, type_ = _SCALARS[name]
            if type_ == "Float64":
                guard = f"{column} >= 0 AND " if name == "responsetime" else ""
                if name == "http.status":
                    guard = f"{column} != 0 AND "
                return f"({guard}{column} {_NUMBER_OPS[op]} {self.bind(float(value), 'Float64')})"
            return "(" + _STRING_OPS[op](column, self.bind(str(value), "String")) + ")"
        if name in _ARRAYS:
            column = _ARRAYS[name]
            if op == "!=":
                return f"NOT has({column}, {self.bind(str(value), 'String')})"
            test = _STRING_OPS[op]("x", self.bind(str(value), "String"))
            return f"arrayExists(x -> {test}, {column})"
        raise _unsupported(node, f"'{name}' at the trace level")

    def annotation(self, key: str, op: str, value: ast.Value) -> str:
        k = self.bind(key, "String")
        prefilter = ""
        if isinstance(value, bool):
            test = f"t = {_ANN_BOOL} AND n {_NUMBER_OPS[op]} {self.bind(float(value), 'Float64')}"
        elif isinstance(value, float):
            test = f"t = {_ANN_NUMBER} AND n {_NUMBER_OPS[op]} {self.bind(value, 'Float64')}"
        else:
            p = self.bind(value, "String")
            if op == "!=":
                return (
                    "NOT arrayExists((k, t, s) -> k = "
                    f"{k} AND t = {_ANN_STRING} AND s = {p}, ann_keys, ann_types, ann_strings)"
                )
            test = f"t = {_ANN_STRING} AND " + _STRING_OPS[op]("s", p)
            if op == "=":  # the value among the trace's strings first: one cheap array
                prefilter = f"has(ann_strings, {p}) AND "
        exists = _lambda("arrayExists", list(_ANNOTATION_ARRAYS), f"k = {k} AND {test}")
        return f"({prefilter}{exists})" if prefilter else exists

    # -- service scope ---------------------------------------------------------------

    def service(self, ref: ast.ServiceRef | None, body: ast.Expr | None) -> str:
        found = self.service_test(ref, body)
        cheap = None
        if ref is not None and ref.account_id is not None:
            cheap = self.service_test(_without_account(ref), body)
        return self.prechecked([ref] if ref is not None else [], found, cheap)

    def service_test(self, ref: ast.ServiceRef | None, body: ast.Expr | None) -> str:
        parts = [self.ref(ref, "sn", "st", "sa")] if ref is not None else []
        if body is not None:
            parts.append(self.in_scope(body, _SERVICE_SCOPE))
        test = " AND ".join(p for p in parts if p) or "1"
        arrays = list(_SERVICE_ARRAYS)
        if ref is not None and ref.account_id is not None:
            arrays.append(("sa", causes.ACCOUNTS))
        return _lambda("arrayExists", arrays, test)

    def edge(self, source: ast.ServiceRef, dest: ast.ServiceRef, body: ast.Expr | None) -> str:
        found = self.edge_test(source, dest, body)
        cheap = None
        if source.account_id is not None or dest.account_id is not None:
            cheap = self.edge_test(_without_account(source), _without_account(dest), body)
        return self.prechecked([source, dest], found, cheap)

    def edge_test(self, source: ast.ServiceRef, dest: ast.ServiceRef, body: ast.Expr | None) -> str:
        """An edge whose caller and callee match: each end is tested against the
        (few) service indices matching its ref, computed once per row and handed to
        the lambda, which then reads only its own arguments (a lambda that indexes
        other arrays copies them per element: 5x slower measured)."""
        arrays, parts = [("s", "edge_src"), ("d", "edge_dst")], []
        for side, ref in (("s", source), ("d", dest)):
            matching = self.endpoint(ref)
            if matching is not None:
                arrays.append((f"x{side}", f"arrayWithConstant(length(edge_src), {matching})"))
                parts.append(f"has(x{side}, {side})")
        if body is not None:
            arrays += _EDGE_FACTS
            parts.append(self.in_scope(body, _EDGE_SCOPE))
        test = " AND ".join(parts) or "1"
        return _lambda("arrayExists", arrays, test)

    def endpoint(self, ref: ast.ServiceRef) -> str | None:
        """The indices (from 1) of the trace's services ``ref`` matches; None for any."""
        test = self.ref(ref, "n", "t", "a")
        if not test:
            return None
        arrays = [
            ("i", "arrayEnumerate(service_names)"), ("n", "service_names"), ("t", "service_types"),
        ]  # fmt: skip
        if ref.account_id is not None:
            arrays.append(("a", causes.ACCOUNTS))
        return _lambda("arrayFilter", arrays, test)

    def prechecked(self, refs: list[ast.ServiceRef], found: str, cheap: str | None) -> str:
        """``found`` behind cheap tests the engine can skip most rows with: each named
        service is in the trace; and, for account ids, ``cheap`` - the same test without
        them - then each account among the trace's."""
        checks: list[str] = []
        accounts: list[str] = []
        for ref in refs:
            if ref.name is not None:
                checks.append(f"has(service_names, {self.bind(ref.name, 'String')})")
            if ref.account_id is not None:
                account = self.bind(ref.account_id, "String")
                accounts.append(f"has({causes.ACCOUNTS}, {account})")
        checks += [cheap] if cheap is not None else []
        checks += accounts
        return "(" + " AND ".join([*checks, found]) + ")" if checks else found

    def root_cause(self, category: str, level: str, body: ast.Expr) -> str:
        cat = ROOT_CAUSE_CATEGORIES.index(category)
        lvl = ROOT_CAUSE_LEVELS.index(level)
        self.positions = False
        test = self.in_cause(body)
        arrays = list(_CAUSE_ARRAYS)
        if self.positions:  # derived only when first/last/index ask for them
            arrays += [("rp", causes.INDEX), ("rz", causes.LAST)]
        return _lambda("arrayExists", arrays, f"rc = {cat} AND rl = {lvl} AND {test}")

    def in_cause(self, node: ast.Expr) -> str:
        match node:
            case ast.Or(items=items):
                return "(" + " OR ".join(self.in_cause(i) for i in items) + ")"
            case ast.And(items=items):
                return "(" + " AND ".join(self.in_cause(i) for i in items) + ")"
            case ast.Not(expr=inner):
                return f"NOT ({self.in_cause(inner)})"
            case ast.Flag(keyword="remote"):
                return "rr = 1"
            case ast.Flag(keyword="inferred"):
                return "ri = 1"
            case ast.Compare(field=ast.Keyword(name="coverage"), op=op, value=value):
                return f"rv {_NUMBER_OPS[op]} {self.bind(float(value), 'Float64')}"
            case ast.Flag(keyword="first" | "last" as keyword):
                self.positions = True
                return "rp = 0.0" if keyword == "first" else "rz = 1"
            case ast.Compare(field=ast.Keyword(name="index"), op=op, value=value):
                self.positions = True
                return f"rp {_NUMBER_OPS[op]} {self.bind(float(value), 'Float64')}"
            case ast.Compare(
                field=ast.Keyword(name="name" | "type" | "message" as name), op=op, value=value
            ):
                column = _CAUSE_COLUMNS[name]
                return "(" + _STRING_OPS[op](column, self.bind(str(value), "String")) + ")"
            case ast.Exists(field=ast.Keyword(name="name" | "type" | "message" as name)):
                return _CAUSE_COLUMNS[name] + " != ''"
        raise _unsupported(node, "this condition inside rootcause.* { }")

    def ref(self, ref: ast.ServiceRef, name: str, type_: str, account: str) -> str:
        """A node identity test on the expressions giving a service's name, type and
        account id (the account's array is read only when ``ref`` names one)."""
        parts: list[str] = []
        if ref.name is not None:
            parts.append(f"{name} = {self.bind(ref.name, 'String')}")
        if ref.type is not None:
            parts.append(f"lower({type_}) = {self.bind(ref.type.lower(), 'String')}")
        if ref.account_id is not None:
            parts.append(f"{account} = {self.bind(ref.account_id, 'String')}")
        return " AND ".join(parts)

    def in_scope(self, node: ast.Expr, scope: _Scope) -> str:
        match node:
            case ast.Or(items=items):
                return "(" + " OR ".join(self.in_scope(i, scope) for i in items) + ")"
            case ast.And(items=items):
                return "(" + " AND ".join(self.in_scope(i, scope) for i in items) + ")"
            case ast.Not(expr=inner):
                return f"NOT ({self.in_scope(inner, scope)})"
            case ast.Flag(keyword=keyword) if scope.flag(keyword) is not None:
                return str(scope.flag(keyword))
            case ast.Compare(
                field=ast.Keyword(name="responsetime" | "duration"), op=op, value=value
            ):
                p = self.bind(float(value), "Float64")
                slowest, quickest = scope.slowest, scope.quickest
                return {
                    ">": f"{slowest} > {p}",
                    ">=": f"{slowest} >= {p}",
                    "<": f"{quickest} < {p}",
                    "<=": f"{quickest} <= {p}",
                    "=": f"({quickest} <= {p} AND {slowest} >= {p})",
                    "!=": f"NOT ({quickest} = {p} AND {slowest} = {p})",
                }[op]
        raise _unsupported(node, f"this condition inside {scope.what}")


def _lambda(function: str, arrays: list[tuple[str, str]], test: str) -> str:
    """``function((p, ...) -> test, array, ...)`` over the first of ``arrays`` (parameter,
    array expression) and those whose parameter ``test`` reads: the engine reads and
    copies every array handed to a lambda, used or not (measured at 10M spans, 862k
    traces in the hour: ``service(id(account.id: "…")) { fault }`` went from 370 to 111 ms
    once the five unused service arrays were no longer passed)."""
    used = [arrays[0]]
    used += [(p, column) for p, column in arrays[1:] if re.search(rf"\b{p}\b", test)]
    params = ", ".join(p for p, _ in used)
    columns = ", ".join(column for _, column in used)
    return f"{function}(({params}) -> {test}, {columns})"


def _without_account(ref: ast.ServiceRef) -> ast.ServiceRef:
    return ast.ServiceRef(ref.name, ref.type, None, start=ref.start, end=ref.end)


def _unsupported(node: ast.Node, what: str) -> InvalidRequest:
    return InvalidRequest(
        f"{what} (at position {node.start}) cannot be evaluated by this server yet"
    )


def compile_filter(expression: ast.Expr, groups: GroupResolver | None = None) -> Condition:
    """The SQL condition selecting the traces for which ``expression`` holds;
    ``group.name``/``group.arn`` references are expanded through ``groups``."""
    compiler = _Compiler(groups)
    sql = compiler.expr(expression)
    return Condition(sql, compiler.params)


def filter_condition(text: str, groups: GroupResolver | None = None) -> Condition:
    """Parse and compile a FilterExpression; :class:`InvalidRequest` (a
    ``FilterSyntaxError`` pointing at the character) when it is malformed or cannot be
    evaluated yet."""
    return compile_filter(parse_filter(text), groups)


DEFAULT_SAMPLE_RATE: Final = 0.1


def sample_condition(rate: float) -> Condition:
    """Keep a stable pseudo-random ``rate`` share of traces (GetTraceSummaries
    ``Sampling``): a trace is in or out by a hash of its id, so pages stay consistent."""
    if not 0.0 < rate <= 1.0:
        raise InvalidRequest(f"the sampling rate must be in (0, 1], got {rate}")
    return Condition(
        "cityHash64(trace_id) % 10000 < {sample_rate:UInt32}", {"sample_rate": round(rate * 10000)}
    )


def both(first: Condition | None, second: Condition | None) -> Condition | None:
    """The conjunction of two conditions (either may be absent)."""
    if first is None or second is None:
        return first or second
    return Condition(f"({first.sql}) AND ({second.sql})", {**first.params, **second.params})
