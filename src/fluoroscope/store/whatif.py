"""What-if replay of sampling rules over stored trace summaries, in the engine.

:func:`replay_sql` builds one statement that assigns each trace of a window to the
first rule (in the order given) matching it as the SDKs match a request - service name
and type of its entry service, host and path of its URL, its HTTP method, any of its
resource ARNs; ``*`` and ``?`` wildcards, case-insensitive; an empty value (a trace
without HTTP) matches, as the SDKs treat a missing request attribute - then counts the
traces per rule and wall-clock second and the number each rule would keep there: its
reservoir first (per second, over all clients), then its fixed rate of the rest
(an expected value). Rules with ``Attributes`` match nothing: the SDKs skip them, and
the stored traces do not hold request headers. Seconds are summed into ``period``
buckets. Every value reaches the engine as a bound parameter.

Contract: pure SQL building; :meth:`Store.replay_sampling` runs it (blocking).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fluoroscope.model.sampling import SamplingRule

__all__ = ["like_pattern", "replay_sql"]


def like_pattern(pattern: str) -> str:
    """A rule's wildcard pattern as a LIKE pattern (``*`` -> ``%``, ``?`` -> ``_``)."""
    out = []
    for c in pattern:
        if c in "\\%_":
            out.append("\\" + c)
        elif c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        else:
            out.append(c)
    return "".join(out)


_FIELDS = (
    ("service_name", "entry_name", False),
    ("service_type", "entry_type", False),
    ("host", "domain(http_url)", True),
    ("http_method", "http_method", True),
    ("url_path", "path(http_url)", True),
)


def _condition(index: int, rule: SamplingRule, params: dict[str, Any]) -> str:
    if rule.attributes:
        return "0"
    parts: list[str] = []
    for attribute, column, empty_matches in _FIELDS:
        pattern = getattr(rule, attribute)
        if pattern == "*":
            continue
        name = f"r{index}_{attribute}"
        params[name] = like_pattern(pattern)
        test = f"{column} ILIKE {{{name}:String}}"
        parts.append(f"({column} = '' OR {test})" if empty_matches else test)
    if rule.resource_arn != "*":
        name = f"r{index}_arn"
        params[name] = like_pattern(rule.resource_arn)
        parts.append(f"arrayExists(a -> a ILIKE {{{name}:String}}, resource_arns)")
    return " AND ".join(parts) or "1"


def replay_sql(
    db: str, rules: Sequence[SamplingRule], start: float, end: float, period: int
) -> tuple[str, dict[str, Any]]:
    """The statement and its parameters; rows ``(rule index, bucket start, matched,
    kept)``. ``rules`` in the order they are tried, the catch-all last."""
    params: dict[str, Any] = {
        "lo": max(int(start) - 3600, 0),
        "hi": int(end) + 3600,
        "start": float(start),
        "end": float(end),
        "period": int(period),
        "reservoirs": [int(r.reservoir_size) for r in rules],
        "rates": [float(r.fixed_rate) for r in rules],
    }
    branches: list[str] = []
    for index, rule in enumerate(rules[:-1]):
        branches.append(f"{_condition(index, rule, params)}, {index}")
    last = len(rules) - 1
    assign = f"multiIf({', '.join(branches)}, {last})" if branches else str(last)
    sql = f"""
        WITH {{reservoirs:Array(Int64)}} AS reservoirs, {{rates:Array(Float64)}} AS rates
        SELECT rule, toFloat64(intDiv(second, {{period:UInt32}}) * {{period:UInt32}}) AS bucket,
               toUInt64(sum(n)) AS matched,
               sum(least(toInt64(n), reservoirs[rule + 1])
                   + rates[rule + 1] * greatest(toInt64(n) - reservoirs[rule + 1], 0)) AS kept
        FROM (
            SELECT toUInt32({assign}) AS rule, toUInt32(floor(start_time)) AS second,
                   count() AS n
            FROM {db}.traces FINAL
            WHERE ts >= {{lo:UInt32}} AND ts <= {{hi:UInt32}}
              AND start_time >= {{start:Float64}} AND start_time < {{end:Float64}}
            GROUP BY rule, second
        )
        GROUP BY rule, bucket
        ORDER BY rule, bucket
    """
    return sql, params
