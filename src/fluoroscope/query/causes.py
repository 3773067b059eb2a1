"""Root causes in filter expressions: positions inside a cause, and ``rootcause.json``.

The ``traces`` table keeps a trace's root causes as parallel ``rc_*`` arrays, one item
per cause service (level 0), path entity (level 1) and exception (level 2), written in
order: each cause's service item, then for each entity of its path the entity item
followed by that entity's exception items
(:meth:`fluoroscope.model.summarycolumns.SummaryColumns.add_cause`).
That order is all the position information needed, so it is derived at read time:

* :data:`INDEX` - an item's position (a Float64) in its enumerated list, from 0: a
  service's in its cause's ``Services`` (always 0: a cause names one service), an
  entity's in its ``EntityPath``, an exception's in its entity's ``Exceptions``;
* :data:`LAST` - 1 when the item is the last of that list;
* :data:`NESTED` - the items regrouped per cause and, within a cause, per chunk: the
  service item alone, then each entity item followed by its exceptions, so that
  ``c[1][1]`` is a cause's service, ``c[i + 2][1]`` its entity ``i`` (from 0) and
  ``c[i + 2][j + 2]`` that entity's exception ``j``; an item is the tuple
  ``(category, level, name, type, message, remote, inferred, coverage)``.

These use only ``arraySplit``/``arrayMap``/``arrayFlatten`` (present in chdb-core-lite,
which lacks ``arrayCumSum``), are computed once per row outside any lambda, and are
indexed directly: no lambda scans another array. :func:`json_condition` compiles
``rootcause.json = #[...]`` over :data:`NESTED`. Pure functions; thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.query.filter import ast
from fluoroscope.store.store import ROOT_CAUSE_CATEGORIES

__all__ = ["ACCOUNTS", "INDEX", "LAST", "NESTED", "json_condition"]

Bind = Callable[[Any, str], str]
"""``(value, ClickHouse type) -> placeholder``: binds a user value as a query parameter."""


def _per_item(expression: str) -> str:
    """An array aligned with ``rc_level`` holding ``expression`` per item, where ``l`` is
    the item's level, ``m`` its 1-based place in its chunk (an entity or service item and
    the exception items after it), ``ch`` the chunk, ``j`` the chunk's 1-based place in
    its cause (1 = the service) and ``s`` the cause's levels."""
    chunks = "arraySplit(q -> q <= 1, s)"
    return (
        "arrayFlatten(arrayMap(s -> arrayFlatten(arrayMap((ch, j) -> arrayMap((l, m) -> "
        f"{expression}, ch, arrayEnumerate(ch)), {chunks}, arrayEnumerate({chunks}))), "
        "arraySplit(q -> q = 0, rc_level)))"
    )


# Float64, as ``index`` values are bound: the engine (26.5) folds ``x = 0 AND x = 0.``
# inside a lambda to false when the two constants differ in type.
INDEX: Final = _per_item("toFloat64(multiIf(l = 0, 0, l = 1, j - 2, m - 2))")
LAST: Final = _per_item(
    "toUInt8(multiIf(l = 0, 1, l = 1, j = length(arraySplit(q -> q <= 1, s)), m = length(ch)))"
)
NESTED: Final = (
    "arrayMap(s -> arraySplit(x -> x.2 <= 1, s), arraySplit(x -> x.2 = 0, arrayZip(rc_cat, "
    "rc_level, rc_name, rc_type, rc_message, rc_remote, rc_inferred, rc_coverage)))"
)
_CAT, _NAME, _TYPE, _MESSAGE, _REMOTE, _INFERRED, _COVERAGE = 1, 3, 4, 5, 6, 7, 8
_FAULT, _ERROR, _TIME = (ROOT_CAUSE_CATEGORIES.index(c) for c in ("fault", "error", "responsetime"))
ACCOUNTS: Final = "service_accounts"
"""Per-service account ids aligned with ``service_names``."""

_CAUSE_KEYS: Final = frozenset(("Services", "ClientImpacting"))
_SERVICE_KEYS: Final = frozenset(("Name", "Names", "Type", "AccountId", "Inferred", "EntityPath"))
_ENTITY_KEYS: Final = frozenset(("Name", "Exceptions", "Remote", "Coverage"))
_EXCEPTION_KEYS: Final = frozenset(("Name", "Message"))
_NEVER: Final = "0"
_SERVICE: Final = "c[1][1]"


class _Json:
    """One ``rootcause.json`` literal being compiled (``node`` for error positions)."""

    def __init__(self, node: ast.RootCauseJson, bind: Bind) -> None:
        self.node = node
        self.bind = bind
        self.checks: list[str] = []  # cheap row tests that must hold for any match

    def fail(self, what: str) -> InvalidRequest:
        return InvalidRequest(
            f"rootcause.json (at position {self.node.start}): {what}; it takes root causes as "
            "GetTraceSummaries returns them: [{Services: [{Name, Names, Type, AccountId, "
            "Inferred, EntityPath: [{Name, Exceptions: [{Name, Message}], Coverage, "
            "Remote}]}], ClientImpacting}]"
        )

    def fields(self, value: object, allowed: frozenset[str], where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be a JSON object")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(f"unknown field {unknown[0]!r} in {where}")
        return value

    def text(self, value: object, where: str) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{where} must be a string")
        return self.bind(value, "String")

    def flag(self, value: object, where: str) -> int:
        if not isinstance(value, bool):
            raise self.fail(f"{where} must be true or false")
        return int(value)

    def items(self, value: object, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(f"{where} must be a JSON array")
        return value

    # -- one cause: tests on ``c``, the cause's chunks (see NESTED) -------------------

    def cause(self, pattern: object) -> str:
        fields = self.fields(pattern, _CAUSE_KEYS, "a root cause")
        categories = {_FAULT, _ERROR, _TIME}
        tests: list[str] = []
        if "ClientImpacting" in fields:
            impacting = self.flag(fields["ClientImpacting"], "ClientImpacting")
            categories -= {_TIME}  # response-time causes carry no ClientImpacting
            # a fault (error) cause impacts the client exactly when the root segment
            # faulted (erred) - model.rootcause - which has_fault (has_error) records
            cat = f"{_SERVICE}.{_CAT}"
            tests.append(
                f"({cat} = {_FAULT} AND has_fault = {impacting} OR "
                f"{cat} = {_ERROR} AND has_error = {impacting})"
            )
        if "Services" in fields:
            services = self.items(fields["Services"], "Services")
            if len(services) != 1:
                return _NEVER  # each stored cause names exactly one service
            tests.extend(self.service(services[0], categories))
        if not categories:
            return _NEVER
        listed = ", ".join(str(c) for c in sorted(categories))
        test = " AND ".join([f"{_SERVICE}.{_CAT} IN ({listed})", *tests])
        return f"arrayExists(c -> {test}, {NESTED})"

    def service(self, pattern: object, categories: set[int]) -> list[str]:
        fields = self.fields(pattern, _SERVICE_KEYS, "a service of Services")
        svc = _SERVICE
        tests: list[str] = []
        if "Name" in fields:
            name = self.text(fields["Name"], "Services[].Name")
            tests.append(f"{svc}.{_NAME} = {name}")
            self.checks.append(f"has(rc_name, {name})")
        if "Names" in fields:
            names = self.items(fields["Names"], "Services[].Names")
            if len(names) != 1:
                return [_NEVER]  # rendered as [Name]
            tests.append(f"{svc}.{_NAME} = {self.text(names[0], 'Services[].Names[]')}")
        if "Type" in fields:
            tests.append(f"{svc}.{_TYPE} = {self.text(fields['Type'], 'Services[].Type')}")
        if "Inferred" in fields:
            inferred = self.flag(fields["Inferred"], "Services[].Inferred")
            tests.append(f"{svc}.{_INFERRED} = {inferred}")
        if "AccountId" in fields:
            account = self.text(fields["AccountId"], "Services[].AccountId")
            tests.append(
                f"has(arrayZip(service_names, service_types, {ACCOUNTS}), "
                f"({svc}.{_NAME}, {svc}.{_TYPE}, {account}))"
            )
            self.checks.append(f"has({ACCOUNTS}, {account})")  # parsed once, not per cause
        if "EntityPath" in fields:
            path = self.items(fields["EntityPath"], "Services[].EntityPath")
            tests.append(f"length(c) = {len(path) + 1}")
            for position, entity in enumerate(path):
                tests.extend(self.entity(entity, f"c[{position + 2}]", categories))
        return tests

    def entity(self, pattern: object, chunk: str, categories: set[int]) -> list[str]:
        fields = self.fields(pattern, _ENTITY_KEYS, "an entity of EntityPath")
        item = f"{chunk}[1]"
        tests: list[str] = []
        if "Name" in fields:
            tests.append(f"{item}.{_NAME} = {self.text(fields['Name'], 'EntityPath[].Name')}")
        if "Remote" in fields:
            tests.append(f"{item}.{_REMOTE} = {self.flag(fields['Remote'], 'EntityPath[].Remote')}")
        if "Coverage" in fields:
            coverage = fields["Coverage"]
            if not isinstance(coverage, int | float) or isinstance(coverage, bool):
                raise self.fail("EntityPath[].Coverage must be a number")
            categories &= {_TIME}  # only response-time causes have coverage
            tests.append(f"{item}.{_COVERAGE} = {self.bind(float(coverage), 'Float64')}")
        if "Exceptions" in fields:
            categories -= {_TIME}  # response-time causes list no exceptions
            exceptions = self.items(fields["Exceptions"], "EntityPath[].Exceptions")
            tests.append(f"length({chunk}) = {len(exceptions) + 1}")
            for index, exception in enumerate(exceptions):
                tests.extend(self.exception(exception, f"{chunk}[{index + 2}]"))
        return tests

    def exception(self, pattern: object, item: str) -> list[str]:
        fields = self.fields(pattern, _EXCEPTION_KEYS, "an exception of Exceptions")
        tests: list[str] = []
        if "Name" in fields:
            tests.append(f"{item}.{_NAME} = {self.text(fields['Name'], 'Exceptions[].Name')}")
        if "Message" in fields:
            message = self.text(fields["Message"], "Exceptions[].Message")
            tests.append(f"{item}.{_MESSAGE} = {message}")
        return tests


def json_condition(node: ast.RootCauseJson, bind: Bind) -> str:
    """SQL holding when every root cause of the literal matches one of the trace's root
    causes (of any category). A cause matches when each field present in the literal
    equals the stored one - lists element by element and of the same length - while
    omitted fields match anything; a field only one kind of cause carries narrows the
    categories (``Coverage``: response time; ``Exceptions`` and ``ClientImpacting``:
    fault and error). Raises InvalidRequest for an empty literal, unknown fields or
    values of the wrong type."""
    compiler = _Json(node, bind)
    causes = node.value
    if not causes:
        raise compiler.fail("the literal lists no root cause")
    matches = [compiler.cause(c) for c in causes]
    return "(" + " AND ".join([*compiler.checks, *matches]) + ")"
