"""The functions of the Logs Insights language and the SQL each becomes.

``SCALAR`` maps a lower-case function name to ``(min args, max args, builder)``;
``AGGREGATE`` does the same for the aggregate functions allowed only in ``stats``.
A builder takes the compiling context and the call node and returns a typed ``Sql``;
it raises the context's error (an ``InsightsSyntaxError`` at the offending argument)
for an argument of the wrong shape. Tables, not chains of ``if``.

Semantics worth naming (``reference/logs.md`` §4): ``bin(p)``/``datefloor(t, p)``
round down to a multiple of ``p`` since the epoch, in UTC; ``substr(s, i[, n])`` counts
from 0; ``count(f)`` counts events where ``f`` is present; ``pct(f, p)`` is the
(interpolated, approximate at scale) ``p``-th percentile; ``earliest(f)``/``latest(f)``
the value of ``f`` in the earliest/latest event where it is present; ``toupper``/``tolower``
change ASCII letters only (the embedded engine has no Unicode case tables); numeric aggregates
read their argument as a number (text that is not a number is skipped, like a missing
value).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Protocol

from fluoroscope.query.insights import ast
from fluoroscope.query.insights.errors import InsightsSyntaxError
from fluoroscope.query.insights.sql import Kind, Params, Sql, to_num, to_str, to_time
from fluoroscope.query.insights.tokens import DURATION_UNITS

__all__ = ["AGGREGATE", "SCALAR", "Context"]


class Context(Protocol):
    """What a builder needs from the compiler."""

    params: Params

    def expr(self, node: ast.Expr) -> Sql:
        """Compile a scalar argument (no aggregate inside)."""

    def error(self, reason: str, node: ast.Node) -> InsightsSyntaxError:
        """The error to raise, pointing at ``node``."""

    def timestamp(self, node: ast.Node) -> Sql:
        """``@timestamp`` of the current row, or an error at ``node`` if there is none."""


Builder = Callable[[Context, ast.Call], Sql]


def _template(arg_kind: Kind | None, result: Kind, template: str) -> Builder:
    """A function whose arguments convert to ``arg_kind`` (None: as they are) and are
    substituted into ``template`` as ``{0}``, ``{1}``..."""

    def build(ctx: Context, call: ast.Call) -> Sql:
        args = [ctx.expr(a) for a in call.args]
        texts = [_convert(a, arg_kind).text for a in args]
        text = template.format(*texts)
        return Sql(f"toFloat64({text})" if result is Kind.NUM else text, result)

    return build


def _convert(e: Sql, kind: Kind | None) -> Sql:
    if kind is Kind.STR:
        return to_str(e)
    if kind is Kind.NUM:
        return to_num(e)
    if kind is Kind.TIME:
        return to_time(e)
    return e


def _variadic(arg_kind: Kind, result: Kind, name: str, wrap: str = "{}") -> Builder:
    def build(ctx: Context, call: ast.Call) -> Sql:
        texts = [wrap.format(_convert(ctx.expr(a), arg_kind).text) for a in call.args]
        return Sql(f"{name}({', '.join(texts)})", result)

    return build


def _period_ms(ctx: Context, node: ast.Expr) -> int:
    if not isinstance(node, ast.Duration):
        raise ctx.error("expected a time period such as 5m, 1h or 30s", node)
    ms = round(node.value * DURATION_UNITS[node.unit] * 1000)
    if not 1 <= ms <= 366 * 86_400_000:
        raise ctx.error("the period must be from 1ms to 366d", node)
    return ms


def _floor(t: Sql, ms: int) -> str:
    return f"toStartOfInterval({t.text}, toIntervalMillisecond({ms}))"


def _bin(ctx: Context, call: ast.Call) -> Sql:
    ms = _period_ms(ctx, call.args[0])
    return Sql(_floor(ctx.timestamp(call), ms), Kind.TIME)


def _datefloor(ctx: Context, call: ast.Call) -> Sql:
    t = to_time(ctx.expr(call.args[0]))
    return Sql(_floor(t, _period_ms(ctx, call.args[1])), Kind.TIME)


def _dateceil(ctx: Context, call: ast.Call) -> Sql:
    t = to_time(ctx.expr(call.args[0]))
    ms = _period_ms(ctx, call.args[1])
    floor = _floor(t, ms)
    return Sql(f"if({floor} = {t.text}, {floor}, {floor} + toIntervalMillisecond({ms}))", Kind.TIME)


def _substr(ctx: Context, call: ast.Call) -> Sql:
    s = to_str(ctx.expr(call.args[0])).text
    start = to_num(ctx.expr(call.args[1])).text
    if len(call.args) == 2:
        return Sql(f"substringUTF8({s}, toInt64({start}) + 1)", Kind.STR)
    length = to_num(ctx.expr(call.args[2])).text
    return Sql(f"substringUTF8({s}, toInt64({start}) + 1, toInt64({length}))", Kind.STR)


def _coalesce(ctx: Context, call: ast.Call) -> Sql:
    args = [ctx.expr(a) for a in call.args]
    kinds = {a.kind for a in args}
    kind = kinds.pop() if len(kinds) == 1 else Kind.STR
    texts = [_convert(a, kind).text for a in args]
    return Sql(f"coalesce({', '.join(texts)})", kind)


def _in_subnet(ctx: Context, call: ast.Call) -> Sql:
    ip = to_str(ctx.expr(call.args[0])).text
    cidr = call.args[1]
    if not isinstance(cidr, ast.Str):
        raise ctx.error('expected a subnet such as "10.0.0.0/8"', cidr)
    try:
        net = ipaddress.IPv4Network(cidr.value, strict=False)
    except ValueError as exc:
        raise ctx.error(f"invalid IPv4 subnet: {exc}", cidr) from None
    low, high = int(net.network_address), int(net.broadcast_address)
    return Sql(
        f"(isIPv4String({ip}) AND IPv4StringToNumOrDefault({ip}) BETWEEN {low} AND {high})",
        Kind.BOOL,
    )


SCALAR: dict[str, tuple[int, int, Builder]] = {
    "ispresent": (1, 1, _template(None, Kind.BOOL, "isNotNull({0})")),
    "isempty": (1, 1, _template(Kind.STR, Kind.BOOL, "(isNull({0}) OR {0} = '')")),
    "isblank": (1, 1, _template(Kind.STR, Kind.BOOL, "(isNull({0}) OR trimBoth({0}) = '')")),
    "strcontains": (2, 2, _template(Kind.STR, Kind.BOOL, "(position({0}, {1}) > 0)")),
    "strlen": (1, 1, _template(Kind.STR, Kind.NUM, "lengthUTF8({0})")),
    "toupper": (1, 1, _template(Kind.STR, Kind.STR, "upper({0})")),
    "tolower": (1, 1, _template(Kind.STR, Kind.STR, "lower({0})")),
    "trim": (1, 1, _template(Kind.STR, Kind.STR, "trimBoth({0})")),
    "ltrim": (1, 1, _template(Kind.STR, Kind.STR, "trimLeft({0})")),
    "rtrim": (1, 1, _template(Kind.STR, Kind.STR, "trimRight({0})")),
    "replace": (3, 3, _template(Kind.STR, Kind.STR, "replaceAll({0}, {1}, {2})")),
    "substr": (2, 3, _substr),
    "concat": (1, 64, _variadic(Kind.STR, Kind.STR, "concat", "ifNull({}, '')")),
    "coalesce": (1, 64, _coalesce),
    "abs": (1, 1, _template(Kind.NUM, Kind.NUM, "abs({0})")),
    "ceil": (1, 1, _template(Kind.NUM, Kind.NUM, "ceil({0})")),
    "floor": (1, 1, _template(Kind.NUM, Kind.NUM, "floor({0})")),
    "sqrt": (1, 1, _template(Kind.NUM, Kind.NUM, "sqrt({0})")),
    "log": (1, 1, _template(Kind.NUM, Kind.NUM, "log({0})")),
    "greatest": (1, 64, _variadic(Kind.NUM, Kind.NUM, "greatest")),
    "least": (1, 64, _variadic(Kind.NUM, Kind.NUM, "least")),
    "bin": (1, 1, _bin),
    "datefloor": (2, 2, _datefloor),
    "dateceil": (2, 2, _dateceil),
    "frommillis": (
        1,
        1,
        _template(Kind.NUM, Kind.TIME, "fromUnixTimestamp64Milli(toInt64({0}), 'UTC')"),
    ),
    "tomillis": (1, 1, _template(Kind.TIME, Kind.NUM, "toUnixTimestamp64Milli({0})")),
    "isvalidip": (1, 1, _template(Kind.STR, Kind.BOOL, "(isIPv4String({0}) OR isIPv6String({0}))")),
    "isvalidipv4": (1, 1, _template(Kind.STR, Kind.BOOL, "isIPv4String({0})")),
    "isvalidipv6": (1, 1, _template(Kind.STR, Kind.BOOL, "isIPv6String({0})")),
    "isipv4insubnet": (2, 2, _in_subnet),
}


def _count(ctx: Context, call: ast.Call) -> Sql:
    if not call.args or isinstance(call.args[0], ast.Star):
        return Sql("toFloat64(count())", Kind.NUM, True)
    return Sql(f"toFloat64(count({ctx.expr(call.args[0]).text}))", Kind.NUM, True)


def _numeric(function: str) -> Builder:
    def build(ctx: Context, call: ast.Call) -> Sql:
        return Sql(f"{function}({to_num(ctx.expr(call.args[0])).text})", Kind.NUM, True)

    return build


def _extreme(function: str) -> Builder:
    def build(ctx: Context, call: ast.Call) -> Sql:
        arg = ctx.expr(call.args[0])
        if arg.kind is Kind.TIME:
            return Sql(f"{function}({arg.text})", Kind.TIME, True)
        return Sql(f"{function}({to_num(arg).text})", Kind.NUM, True)

    return build


def _pct(ctx: Context, call: ast.Call) -> Sql:
    level = call.args[1]
    if not isinstance(level, ast.Num) or not 0 <= level.value <= 100:
        raise ctx.error("expected a percentile from 0 to 100", level)
    value = to_num(ctx.expr(call.args[0])).text
    return Sql(f"quantile({level.value / 100!r})({value})", Kind.NUM, True)


def _by_time(function: str) -> Builder:
    def build(ctx: Context, call: ast.Call) -> Sql:
        arg = ctx.expr(call.args[0])
        ts = ctx.timestamp(call)
        return Sql(f"{function}({arg.text}, {ts.text}, isNotNull({arg.text}))", arg.kind, True)

    return build


AGGREGATE: dict[str, tuple[int, int, Builder]] = {
    "count": (0, 1, _count),
    "count_distinct": (
        1,
        1,
        lambda ctx, call: Sql(f"toFloat64(uniq({ctx.expr(call.args[0]).text}))", Kind.NUM, True),
    ),
    "sum": (1, 1, _numeric("sum")),
    "avg": (1, 1, _numeric("avg")),
    "stddev": (1, 1, _numeric("stddevSamp")),
    "min": (1, 1, _extreme("min")),
    "max": (1, 1, _extreme("max")),
    "pct": (2, 2, _pct),
    "percentile": (2, 2, _pct),
    "earliest": (1, 1, _by_time("argMinIf")),
    "latest": (1, 1, _by_time("argMaxIf")),
}
