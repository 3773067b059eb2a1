"""Compile a parsed Logs Insights query into one ClickHouse statement over ``log_events``.

``compile(query, database=..., groups=..., start_ms=..., end_ms=...)`` returns a
``Compiled``: the SQL text, its parameters (every value from the query text, the group
names, the window and the account id are bound as ``{pN:Type}`` parameters, never pasted
into the SQL), the result field names in column order (the last is always ``@ptr``),
whether it is a ``stats`` query, and the row limit applied. Every filter, parse,
computation, aggregation, sort, dedup and limit runs in the engine; nothing is evaluated
row by row in Python.

Result columns are ``Nullable(String)``, one per field name, formatted as Logs Insights
shows them (times as ``2023-04-18 15:32:46.721`` in UTC, numbers in shortest form); a
NULL means the field is absent from that row (the API leaves it out).

How the pipeline maps (``reference/logs.md`` §4):

* The event rows come from ``log_events`` of the given groups within ``[start_ms,
  end_ms]`` (both inclusive); ``@xrayTraceId``/``@xraySegmentId`` fall back, for lines
  that carry only a request id, to ``log_requests`` (joined on group, stream and request
  id) when the query names them.
* ``fields``/``parse`` define named expressions (a ``parse`` glob is cut with substring
  searches: the first occurrence of the text before the first ``*``, then each ``*`` the
  shortest run up to the next piece of text; a regex ``parse`` uses RE2 groups); ``filter`` adds conditions; ``sort``,
  ``dedup`` (``LIMIT 1 BY``, rows with a missing key all kept) and ``limit`` order and
  cut. A command that needs the rows a ``limit``/``dedup`` left (a later ``filter``,
  ``sort``, ``stats`` or ``dedup``) reads them from a subquery.
* ``stats`` groups into a subquery whose columns are its ``by`` fields then its
  aggregates, named by alias or by the printed expression (``count(*)``, ``bin(5m)``);
  later commands see only those fields. When every aggregate ignores missing values
  and reads a field a ``parse`` of the same stage made, only the rows where the
  parse's text occurs are aggregated (a substring test per row instead of the whole
  pipeline), and the groups only the other rows hold are added back with their
  aggregates over missing values (an empty time bin keeps its row).
* Comparisons are numeric when either side is a number (``status >= 500`` reads the
  JSON text as a number; text that is not a number compares as missing), by time when
  either side is a time, else by text. ``like "s"`` is a case-sensitive substring test,
  ``like /re/`` and ``=~`` an RE2 search. ``sort`` orders text that is not a number
  before numbers, numbers by value, missing values last.
* Without ``fields``/``display`` an event query returns ``@timestamp``, ``@message``,
  ``@logStream``, ``@log`` and the fields ``parse`` created; the default order is
  ``@timestamp`` descending, and a stats query's is its time bins descending, then its
  other ``by`` fields ascending.

Pure and thread-safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fluoroscope.query.insights import ast
from fluoroscope.query.insights.errors import InsightsSyntaxError
from fluoroscope.query.insights.fields import RAW_COLUMNS, json_field, system
from fluoroscope.query.insights.functions import AGGREGATE, SCALAR
from fluoroscope.query.insights.parser import DEFAULT_LIMIT, MAX_LIMIT
from fluoroscope.query.insights.presence import IGNORE_MISSING, MISSING, field_names, grouped
from fluoroscope.query.insights.printer import expr_text
from fluoroscope.query.insights.regex import check
from fluoroscope.query.insights.sql import (
    Kind,
    Params,
    Sql,
    number,
    to_bool,
    to_num,
    to_str,
    to_time,
)

__all__ = ["Compiled", "compile"]

DEFAULT_ACCOUNT = "000000000000"
_DEFAULT_FIELDS = ("@timestamp", "@message", "@logStream", "@log")
_JOINED = {"trace_id": "e.r_trace_id", "segment_id": "e.r_segment_id"}
_LAMBDA_MAX_MS = 3_600_000  # how far an invocation's REPORT may lie outside the window


@dataclass(frozen=True, slots=True)
class Compiled:
    """One compiled query: run ``sql`` with ``params`` and the engine ``settings`` (to
    merge with the caller's own, e.g. ``max_execution_time``); each result row has one
    ``Nullable(String)`` column per name of ``fields`` (NULL = absent), in order."""

    sql: str
    params: dict[str, Any]
    fields: tuple[str, ...]
    is_stats: bool
    limit: int
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Stage:
    """One SELECT under construction."""

    alias: str
    source: str  # FROM text; "" for the base table (built at the end: the join may grow)
    raw: bool  # the event's columns are readable under ``alias``
    env: dict[str, Sql] = field(default_factory=dict)
    shown: list[str] = field(default_factory=list)
    display: list[str] | None = None
    where: list[str] = field(default_factory=list)
    order: list[tuple[str, str]] | None = None  # (expression, "ASC"/"DESC ...")
    default_order: list[tuple[str, str]] = field(default_factory=list)
    dedup: list[str] | None = None
    limit: int | None = None


class _Compiler:
    def __init__(
        self,
        query: ast.Query,
        database: str,
        groups: Sequence[str],
        start_ms: int,
        end_ms: int,
        account: str,
    ) -> None:
        self.query = query
        self.db = "`" + database.replace("\\", "\\\\").replace("`", "\\`") + "`"
        self.params = Params()
        self.groups = self.params.bind(list(groups), "Array(String)")
        self.start = self.params.bind(int(start_ms), "Int64")
        self.end = self.params.bind(int(end_ms), "Int64")
        self.account = self.params.bind(account, "String")
        self.join = _names_xray(query)
        self.subqueries = 0
        self.stage = _Stage("e", "", True)
        self.stage.default_order = [("e.ts", "DESC"), ("e.seq", "DESC")]
        self.mode = "row"  # "row", "by" (a stats by-item) or "aggs" (a stats aggregate)
        self.in_aggregate = False
        self.is_stats = False

    # -- context for the function builders -------------------------------------------

    def error(self, reason: str, node: ast.Node) -> InsightsSyntaxError:
        return InsightsSyntaxError(reason, self.query.text, node.start, node.end)

    def timestamp(self, node: ast.Node) -> Sql:
        return self.field("@timestamp", node)

    def col(self, name: str) -> str:
        stage = self.stage
        if stage.alias == "e" and name in _JOINED and self.join:
            return f"if(e.{name} != '', e.{name}, {_JOINED[name]})"
        return f"{stage.alias}.{name}"

    # -- fields ----------------------------------------------------------------------

    def field(self, name: str, node: ast.Node) -> Sql:
        stage = self.stage
        if name in stage.env:
            return stage.env[name]
        if not stage.raw:
            raise self.error(f"field '{name}' is not produced by the stats before it", node)
        if self.mode == "aggs" and not self.in_aggregate:
            raise self.error(
                f"field '{name}' must be inside an aggregate function or listed after 'by'",
                node,
            )
        found = system(name, self.col, self.account)
        return found if found is not None else json_field(name, self.col, self.params)

    # -- expressions -------------------------------------------------------------------

    def expr(self, node: ast.Expr) -> Sql:
        if not self.stage.raw and isinstance(node, ast.Call):
            produced = self.stage.env.get(expr_text(node))  # "sort count(*) desc"
            if produced is not None:
                return produced
        match node:
            case ast.Field(name):
                return self.field(name, node)
            case ast.Str(value):
                return Sql(self.params.bind(value, "String"), Kind.STR)
            case ast.Num(value):
                return Sql(number(value), Kind.NUM)
            case ast.Neg(negated_expr):
                num = to_num(self.expr(negated_expr))
                return Sql(f"(-{num.text})", Kind.NUM, num.agg)
            case ast.Not(denied):
                cond = to_bool(self.expr(denied))
                return Sql(f"(NOT {cond.text})", Kind.BOOL, cond.agg)
            case ast.Binary(op, left, right):
                return self.binary(op, self.expr(left), self.expr(right))
            case ast.Like(inner, pattern, negated):
                return self.like(to_str(self.expr(inner)), pattern, negated)
            case ast.In(tested, candidates, outside):
                probe = self.expr(tested)
                tests = [self.compare("=", probe, self.expr(c)).text for c in candidates]
                any_of = "(" + " OR ".join(tests) + ")"
                return Sql(f"(NOT {any_of})" if outside else any_of, Kind.BOOL, probe.agg)
            case ast.Call():
                return self.call(node)
            case ast.Duration():
                raise self.error(
                    "a time period is only allowed in bin(), datefloor() and dateceil()", node
                )
            case ast.Regex():
                raise self.error("a regular expression is only allowed after 'like' or '=~'", node)
            case ast.Star():
                raise self.error("'*' is only allowed in count(*)", node)
        raise TypeError(f"not an expression node: {node!r}")  # pragma: no cover

    def binary(self, op: str, left: Sql, right: Sql) -> Sql:
        agg = left.agg or right.agg
        if op in ("and", "or"):
            return Sql(f"({to_bool(left).text} {op.upper()} {to_bool(right).text})", Kind.BOOL, agg)
        if op in ("=", "!=", "<", "<=", ">", ">="):
            return self.compare(op, left, right)
        a, b = to_num(left).text, to_num(right).text
        if op == "^":
            return Sql(f"pow({a}, {b})", Kind.NUM, agg)
        return Sql(f"({a} {op} {b})", Kind.NUM, agg)

    def compare(self, op: str, left: Sql, right: Sql) -> Sql:
        kinds = {left.kind, right.kind}
        if kinds & {Kind.NUM, Kind.BOOL}:
            a, b = to_num(left), to_num(right)
        elif Kind.TIME in kinds:
            a, b = to_time(left), to_time(right)
        else:
            a, b = left, right
        return Sql(f"({a.text} {op} {b.text})", Kind.BOOL, left.agg or right.agg)

    def like(self, value: Sql, pattern: ast.Str | ast.Regex, negated: bool) -> Sql:
        if isinstance(pattern, ast.Str):
            test = f"(position({value.text}, {self.params.bind(pattern.value, 'String')}) > 0)"
        else:
            checked = check(pattern.pattern)  # the parser checked it already
            test = f"match({value.text}, {self.params.bind(checked.pattern, 'String')})"
        return Sql(f"(NOT {test})" if negated else test, Kind.BOOL, value.agg)

    def call(self, node: ast.Call) -> Sql:
        name = node.name
        entry = SCALAR.get(name)
        aggregate = entry is None and name in AGGREGATE
        if aggregate:
            if self.mode == "by":
                raise self.error("an aggregate function is not allowed after 'by'", node)
            if self.mode != "aggs":
                raise self.error(f"aggregate function '{name}' is only allowed in stats", node)
            if self.in_aggregate:
                raise self.error(f"aggregate function '{name}' inside another aggregate", node)
            entry = AGGREGATE[name]
        if entry is None:
            raise self.error(f"unknown function '{name}'", node)
        low, high, build = entry
        if not low <= len(node.args) <= high:
            wanted = str(low) if low == high else f"{low} to {high}"
            raise self.error(
                f"function '{name}' takes {wanted} argument{'' if high == 1 else 's'}, "
                f"got {len(node.args)}",
                node,
            )
        if any(isinstance(a, ast.Star) for a in node.args) and name != "count":
            raise self.error("'*' is only allowed in count(*)", node)
        if not aggregate:
            return build(self, node)
        self.in_aggregate = True
        try:
            return build(self, node)
        finally:
            self.in_aggregate = False

    # -- commands ----------------------------------------------------------------------

    def run(self) -> Compiled:
        for command in self.query.commands:
            self.command(command)
        return self.final()

    def command(self, command: ast.Command) -> None:
        stage = self.stage
        match command:
            case ast.Fields(items):
                for item in items:
                    self.define(_name(item), self.expr(item.expr))
            case ast.Display(shown):
                for one in shown:
                    self.field(one.name, one)
                stage.display = [one.name for one in shown]
            case ast.Filter(expr):
                self.close_if_cut()
                self.stage.where.append(to_bool(self.expr(expr)).text)
            case ast.Parse():
                self.parse(command)
            case ast.Stats():
                self.stats(command)
            case ast.Sort(sort_keys):
                self.close_if_cut()
                order: list[tuple[str, str]] = []
                for key in sort_keys:
                    order += _order_terms(self.expr(key.expr), key.descending)
                self.stage.order = order
            case ast.Limit(count):
                stage.limit = count if stage.limit is None else min(stage.limit, count)
            case ast.Dedup(dedup_fields):
                self.close_if_cut()
                keys = [self.field(f.name, f).text for f in dedup_fields]
                row = f"{self.stage.alias}.seq" if self.stage.raw else "rowNumberInAllBlocks()"
                missing = " OR ".join(f"isNull({k})" for k in keys)
                self.stage.dedup = [*keys, f"if({missing}, toUInt64({row}) + 1, 0)"]

    def define(self, name: str, value: Sql) -> None:
        self.stage.env[name] = value
        if name not in self.stage.shown:
            self.stage.shown.append(name)

    def parse(self, command: ast.Parse) -> None:
        source = f"ifNull({to_str(self.expr(command.source)).text}, '')"
        if command.regex:
            checked = check(command.pattern)
            pattern = self.params.bind(checked.pattern, "String")
            groups = f"extractGroups({source}, {pattern})"
            for name, index in checked.names:
                element = f"if(empty({groups}), NULL, arrayElement({groups}, {index}))"
                self.define_parsed(name, Sql(element, Kind.STR), f"match({source}, {pattern})")
            return
        pieces, needed = self.glob(source, command.pattern)
        for name, piece in zip(command.names, pieces, strict=True):
            self.define_parsed(name, piece, needed)

    def glob(self, source: str, glob: str) -> tuple[list[Sql], str | None]:
        """The fields of a ``parse`` glob, found with substring searches (no regex): the
        first occurrence of the text before the first ``*``, then each ``*`` takes the
        shortest run up to the next occurrence of the text after it (a trailing ``*``
        the rest). NULL for all when a piece is not found. Also a condition every row
        whose fields are present meets (each piece of text occurs: searches without a
        start, the cheap kind), or None when the glob has no text."""
        literals = glob.split("*")
        bound: dict[str, str] = {}

        def bind(text: str) -> str:
            if text not in bound:
                bound[text] = self.params.bind(text, "String")
            return bound[text]

        first = literals[0]
        at = f"position({source}, {bind(first)})" if first else "1"
        found = [f"({at} > 0)"]
        begin = f"({at} + {len(first.encode())})"
        spans: list[tuple[str, str | None]] = []
        for i, literal in enumerate(literals[1:], start=1):
            if not literal and i == len(literals) - 1:
                spans.append((begin, None))
                break
            stop = f"position({source}, {bind(literal)}, {begin})"
            found.append(f"({stop} > 0)")
            spans.append((begin, stop))
            begin = f"({stop} + {len(literal.encode())})"
        matched = " AND ".join(found)
        fields = []
        for start, end in spans:
            cut = f"substring({source}, {start})"
            if end is not None:
                cut = f"substring({source}, {start}, {end} - {start})"
            fields.append(Sql(f"if({matched}, {cut}, NULL)", Kind.STR))
        longest_first = sorted(filter(None, bound), key=len, reverse=True)
        needed = " AND ".join(f"(position({source}, {bound[t]}) > 0)" for t in longest_first)
        return fields, needed or None

    def define_parsed(self, name: str, value: Sql, needed: str | None) -> None:
        self.stage.env[name] = value
        self.parsed.append(name)
        self.presence[name] = (value, needed)

    parsed: list[str]
    presence: dict[str, tuple[Sql, str | None]]

    def presence_filter(self, command: ast.Stats) -> str | None:
        """A condition that may be added to a ``stats`` over the events without changing
        its groups' values, or None. When every aggregate ignores missing values and
        reads a field a ``parse`` of this stage made (present only in rows where the
        parse's pieces of text occur), the other rows add nothing to any aggregate: only
        the groups they alone hold (see :meth:`stats`)."""
        stage = self.stage
        if stage.source or self.join or not command.aggs:
            return None
        needed: set[str] = set()
        for item in command.aggs:
            call = item.expr
            if not (
                isinstance(call, ast.Call)
                and call.name in IGNORE_MISSING
                and call.args
                and isinstance(call.args[0], ast.Field)
            ):
                return None
            value, condition = self.presence.get(call.args[0].name, (None, None))
            if value is None or condition is None or stage.env.get(call.args[0].name) is not value:
                return None
            needed.add(condition)
        # The groups must not depend on what a parse (or fields) made.
        if any(n in stage.env for n in {"@timestamp", *field_names(command.by)}):
            return None
        return " OR ".join(f"({c})" for c in sorted(needed))

    def stats(self, command: ast.Stats) -> None:
        self.close_if_cut()
        self.is_stats = True
        try:
            self.mode = "by"
            by = [(_name(item), self.expr(item.expr), item) for item in command.by]
            self.mode = "aggs"
            aggs = []
            for item in command.aggs:
                value = self.expr(item.expr)
                if not value.agg:
                    raise self.error("expected an aggregate function such as count(*)", item)
                aggs.append((_name(item), value))
        finally:
            self.mode = "row"
        columns = [(n, v) for n, v, _ in by] + aggs
        needed = self.presence_filter(command)
        if needed is None:
            select = ", ".join(f"{v.text} AS c{i}" for i, (_, v) in enumerate(columns))
            group_by = f" GROUP BY {', '.join(f'c{i}' for i in range(len(by)))}" if by else ""
            inner = f"SELECT {select} FROM {self.source()}{self.where()}{group_by}"
        else:
            inner = self.filtered_stats(command, [v for _, v, _ in by], aggs, needed)
        alias = self.new_alias()
        stage = _Stage(alias, f"({inner}) AS {alias}", False)
        for i, (name, value) in enumerate(columns):
            stage.env[name] = Sql(f"{alias}.c{i}", value.kind)
            if name not in stage.shown:
                stage.shown.append(name)
        stage.default_order = [
            (f"{alias}.c{i}", "DESC" if v.kind is Kind.TIME else "ASC")
            for i, (_, v, _) in enumerate(by)
        ]
        self.stage = stage
        self.parsed = []
        self.presence = {}

    def filtered_stats(
        self, command: ast.Stats, by: list[Sql], aggs: list[tuple[str, Sql]], needed: str
    ) -> str:
        """The ``stats`` SELECT aggregating only the rows that meet ``needed`` (see
        :meth:`presence_filter`), with the groups only the other rows hold."""
        if not by:
            select = ", ".join(f"{v.text} AS c{i}" for i, (_, v) in enumerate(aggs))
            where = self.where()
            where += f" AND ({needed})" if where else f" WHERE {needed}"
            return f"SELECT {select} FROM {self.source()}{where}"
        # The aggregates again, over a missing value of every field of the parse.
        saved = dict(self.stage.env)
        for name in self.presence:
            self.stage.env[name] = Sql(MISSING, Kind.STR)
        self.mode = "aggs"
        try:
            empty = [self.expr(item.expr).text for item in command.aggs]
        finally:
            self.mode = "row"
            self.stage.env = saved
        by_texts, agg_texts = [v.text for v in by], [v.text for _, v in aggs]
        return grouped(self.source(), self.where(), needed, by_texts, agg_texts, empty)

    # -- stages ------------------------------------------------------------------------

    def new_alias(self) -> str:
        self.subqueries += 1
        return f"s{self.subqueries}"

    def source(self) -> str:
        stage = self.stage
        if stage.source:
            return stage.source
        table = f"{self.db}.log_events AS e"
        if not self.join:
            return table
        # The events of the window with their invocation's ids beside them.
        columns = ", ".join(f"e.{c} AS {c}" for c in RAW_COLUMNS)
        window = " AND ".join(self.window())
        since = f"fromUnixTimestamp64Milli({self.start}, 'UTC')"
        until = f"fromUnixTimestamp64Milli({self.end}, 'UTC')"
        slack = f"toIntervalMillisecond({_LAMBDA_MAX_MS})"
        return (
            f"(SELECT {columns}, r.trace_id AS r_trace_id, r.segment_id AS r_segment_id "
            f"FROM {table} LEFT JOIN (SELECT log_group, stream, request_id, any(trace_id) AS "
            f"trace_id, any(segment_id) AS segment_id FROM {self.db}.log_requests WHERE "
            f"log_group IN {self.groups} AND request_id != '' AND ts >= {since} - {slack} "
            f"AND ts <= {until} + {slack} GROUP BY log_group, stream, request_id) AS r "
            "ON e.log_group = r.log_group AND e.stream = r.stream AND e.request_id = "
            f"r.request_id WHERE {window}) AS e"
        )

    def window(self) -> list[str]:
        return [
            f"e.log_group IN {self.groups}",
            f"e.ts >= fromUnixTimestamp64Milli({self.start}, 'UTC')",
            f"e.ts <= fromUnixTimestamp64Milli({self.end}, 'UTC')",
        ]

    def where(self) -> str:
        stage = self.stage
        conditions = list(stage.where)
        if not stage.source and not self.join:
            conditions[:0] = self.window()
        return f" WHERE {' AND '.join(conditions)}" if conditions else ""

    def tail(self, default_limit: int | None) -> str:
        stage = self.stage
        order = stage.order if stage.order is not None else stage.default_order
        text = f" ORDER BY {', '.join(f'{e} {way}' for e, way in order)}" if order else ""
        if stage.dedup:
            text += f" LIMIT 1 BY {', '.join(stage.dedup)}"
        limit = stage.limit if stage.limit is not None else default_limit
        return text + (f" LIMIT {limit}" if limit is not None else "")

    def close_if_cut(self) -> None:
        """Read the rows a limit or dedup left from a subquery, keeping their order."""
        stage = self.stage
        if stage.limit is None and stage.dedup is None:
            return
        columns: list[str] = []
        if stage.raw:
            columns += [f"{self.col(c)} AS {c}" for c in RAW_COLUMNS]
        names = list(stage.env)
        columns += [f"{stage.env[n].text} AS v{i}" for i, n in enumerate(names)]
        order = stage.order if stage.order is not None else stage.default_order
        columns += [f"{e} AS o{i}" for i, (e, _) in enumerate(order)]
        inner = f"SELECT {', '.join(columns)} FROM {self.source()}{self.where()}{self.tail(None)}"
        alias = self.new_alias()
        new = _Stage(alias, f"({inner}) AS {alias}", stage.raw)
        new.env = {n: Sql(f"{alias}.v{i}", stage.env[n].kind) for i, n in enumerate(names)}
        new.shown, new.display = stage.shown, stage.display
        new.default_order = [(f"{alias}.o{i}", way) for i, (_, way) in enumerate(order)]
        self.stage = new

    def final(self) -> Compiled:
        stage = self.stage
        if stage.display is not None:
            names = list(stage.display)
        elif stage.shown:
            names = list(stage.shown)
        else:
            names = [*_DEFAULT_FIELDS, *(n for n in self.parsed if n not in _DEFAULT_FIELDS)]
        columns = [to_str(self.field(n, self.query)).text for n in names]
        ptr = (
            f"toString({self.col('seq')})"
            if stage.raw
            else ("concat('stats-', toString(rowNumberInAllBlocks()))")
        )
        names.append("@ptr")
        columns.append(ptr)
        select = ", ".join(f"{c} AS c{i}" for i, c in enumerate(columns))
        sql = f"SELECT {select} FROM {self.source()}{self.where()}{self.tail(self.limit)}"
        limit = stage.limit if stage.limit is not None else self.limit
        # The engine (26.5) loses a filter it pushes down through the log_requests join
        # below a subquery when constant conditions sit on both sides of a limit ("Not
        # found column and(...)"); such statements run without that push-down.
        settings = {"query_plan_filter_push_down": 0} if self.join and self.subqueries else {}
        return Compiled(sql, dict(self.params.values), tuple(names), self.is_stats, limit, settings)

    limit: int


def _name(item: ast.Alias) -> str:
    if item.name is not None:
        return item.name
    return item.expr.name if isinstance(item.expr, ast.Field) else expr_text(item.expr)


def _order_terms(value: Sql, descending: bool) -> list[tuple[str, str]]:
    way = "DESC" if descending else "ASC"
    if value.kind is not Kind.STR:
        return [(value.text, f"{way} NULLS LAST")]
    n = f"toFloat64OrNull({value.text})"
    # ascending: text that is not a number, then numbers, then missing values
    rank = f"multiIf(isNull({value.text}), {-1 if descending else 2}, isNull({n}), 0, 1)"
    return [(rank, way), (n, f"{way} NULLS LAST"), (value.text, f"{way} NULLS LAST")]


def _names_xray(node: object) -> bool:
    """Whether the tree names @xrayTraceId or @xraySegmentId anywhere."""
    return bool({"@xrayTraceId", "@xraySegmentId"} & field_names(node))


def compile(
    query: ast.Query,
    *,
    database: str,
    groups: Sequence[str],
    start_ms: int,
    end_ms: int,
    limit: int | None = None,
    account: str = DEFAULT_ACCOUNT,
) -> Compiled:
    """Compile ``query`` over the log groups ``groups`` of ``database`` between
    ``start_ms`` and ``end_ms`` (epoch milliseconds, both inclusive).

    ``limit``: the rows to return when the query has no ``limit`` command (StartQuery's
    ``limit``; default 10,000, at most 100,000). ``account``: the account id ``@log``
    names. Raises ``InsightsSyntaxError`` (pointing into ``query.text``) for what parses
    but cannot be compiled: an unknown function, a wrong argument count, a field a
    ``stats`` no longer produces, an aggregate outside ``stats``.
    """
    compiler = _Compiler(query, database, groups, start_ms, end_ms, account)
    compiler.parsed = []
    compiler.presence = {}
    compiler.limit = min(limit if limit is not None else DEFAULT_LIMIT, MAX_LIMIT)
    return compiler.run()
