"""Fluoroscope's own investigation endpoints (POST, JSON in and out, X-Ray error shapes).

``POST /api/trace/critical-path`` ``{"TraceId"}`` -> ``{"TraceId", "Start", "End",
"Duration", "Entries": [{"Id", "Service", "Name", "Operation", "Start", "End",
"Critical"}], "SelfTimes": {id: seconds}}`` (rules: :mod:`fluoroscope.model.critpath`).

``POST /api/critical-path`` ``{"StartTime", "EndTime", "FilterExpression"?,
"SlowestPercent"?}`` -> the critical path across the matching traces, computed in the
engine: ``Entries`` (per service, name, operation: ``Traces``, ``Mean``, ``AtP50``,
``AtP99`` seconds), ``TracesMatched``, ``TracesAnalysed``, ``P50``, ``P99``,
``SampleRate`` and a ``Message`` when only a sample was read.

``POST /api/trace/compare`` ``{"TraceIds": [a, b], "Limit"?}`` -> the alignment of
:mod:`fluoroscope.model.tracediff`: ``Matched``, ``OnlyA``, ``OnlyB`` (rows with
``Path``, ``Service``, ``Name``, ``Operation``, ``Depth``, ``A``/``B`` (``Id``,
``Duration``, ``Critical``), ``Delta``), ``CriticalPath`` (per entry key: ``A``, ``B``,
``Delta``), ``Counts`` (all rows, before the limit), ``Similarity``, ``Unrelated`` and
a ``Message`` when the shapes are unrelated or a list was cut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.model.ids import normalize_trace_id
from fluoroscope.model.tracediff import Aligned
from fluoroscope.query.investigate import compare, critical_path_across, trace_critical_path
from fluoroscope.server.xray import require_time

if TYPE_CHECKING:
    from fluoroscope.server.app import Handler, ServerState

__all__ = ["API_ROUTES"]

MAX_LIMIT: Final = 2000


def _trace_id(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidRequest(f"{what} must be a trace id")
    canonical = normalize_trace_id(value)
    if canonical is None:
        raise InvalidRequest(f"{what} is not a trace id: {value!r:.70}")
    return canonical


async def critical_path_of_trace(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    trace_id = _trace_id(body.get("TraceId"), "TraceId")
    cp = await run_in_threadpool(trace_critical_path, state.store, trace_id)
    return {
        "TraceId": trace_id,
        "Start": cp.start,
        "End": cp.end,
        "Duration": cp.duration,
        "Entries": [
            {
                "Id": e.id,
                "Service": e.service,
                "Name": e.name,
                "Operation": e.operation,
                "Start": e.start,
                "End": e.end,
                "Critical": e.critical,
            }
            for e in cp.entries
        ],
        "SelfTimes": cp.self_times,
    }


def _row(r: Aligned) -> dict[str, Any]:
    return {
        "Path": list(r.path),
        "Service": r.key[0],
        "Name": r.key[1],
        "Operation": r.key[2],
        "Depth": r.depth,
        "A": {"Id": r.a_id, "Duration": r.a_duration, "Critical": r.a_critical},
        "B": {"Id": r.b_id, "Duration": r.b_duration, "Critical": r.b_critical},
        "Delta": r.delta,
    }


async def compare_two_traces(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    ids = body.get("TraceIds")
    if not isinstance(ids, list) or len(ids) != 2:
        raise InvalidRequest("TraceIds must list exactly two trace ids")
    a, b = (_trace_id(v, "each of TraceIds") for v in ids)
    limit = body.get("Limit", 500)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"Limit must be a whole number from 1 to {MAX_LIMIT}")
    c = await run_in_threadpool(compare, state.store, a, b, limit)
    notes = []
    if c.unrelated:
        notes.append(
            f"These traces have unrelated shapes: only {c.similarity:.0%} of their entries "
            "match by service, name and path."
        )
    cut = {k: v for k, v in c.counts.items() if v > limit}
    if cut:
        notes.append(
            "Only the "
            + f"{limit} largest of each list are shown ("
            + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in cut.items())
            + ")."
        )
    answer: dict[str, Any] = {
        "TraceIds": [a, b],
        "Durations": [c.a_duration, c.b_duration],
        "Matched": [_row(r) for r in c.matched],
        "OnlyA": [_row(r) for r in c.only_a],
        "OnlyB": [_row(r) for r in c.only_b],
        "CriticalPath": [
            {
                "Service": d.key[0],
                "Name": d.key[1],
                "Operation": d.key[2],
                "A": d.a_critical,
                "B": d.b_critical,
                "Delta": d.delta,
            }
            for d in c.critical
        ],
        "Counts": {
            "Matched": c.counts["matched"],
            "OnlyA": c.counts["only_a"],
            "OnlyB": c.counts["only_b"],
        },
        "Similarity": c.similarity,
        "Unrelated": c.unrelated,
    }
    if notes:
        answer["Message"] = " ".join(notes)
    return answer


async def critical_path_of_set(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    start, end = require_time(body, "StartTime"), require_time(body, "EndTime")
    if end < start:
        raise InvalidRequest("EndTime must not precede StartTime")
    if end - start > state.retention_seconds:
        raise InvalidRequest("the time range is longer than the retention period")
    expression = body.get("FilterExpression")
    if expression is not None and not isinstance(expression, str):
        raise InvalidRequest("FilterExpression must be a string")
    slowest = body.get("SlowestPercent", 100)
    if not isinstance(slowest, int | float) or isinstance(slowest, bool):
        raise InvalidRequest("SlowestPercent must be a number")
    condition = None
    if expression and expression.strip():
        condition = await run_in_threadpool(state.groups.condition, expression)
    found = await run_in_threadpool(
        lambda: critical_path_across(
            state.store, start, end, condition, slowest_percent=float(slowest)
        )
    )
    answer: dict[str, Any] = {
        "Entries": [
            {
                "Service": e.service,
                "Name": e.name,
                "Operation": e.operation,
                "Traces": e.traces,
                "Mean": e.mean,
                "AtP50": e.at_p50,
                "AtP99": e.at_p99,
            }
            for e in found.entries
        ],
        "TracesMatched": found.matched,
        "TracesAnalysed": found.analysed,
        "P50": found.p50,
        "P99": found.p99,
        "SampleRate": found.sample_rate,
    }
    if found.message:
        answer["Message"] = found.message
    return answer


API_ROUTES: Final[dict[str, Handler]] = {
    "/api/critical-path": critical_path_of_set,
    "/api/trace/critical-path": critical_path_of_trace,
    "/api/trace/compare": compare_two_traces,
}
