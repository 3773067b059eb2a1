"""X-Ray's Insights operations, Fluoroscope's own Insights endpoint, and the evaluator.

* ``GetInsightSummaries``, ``GetInsight``, ``GetInsightEvents``, ``GetInsightImpactGraph``
  answer with X-Ray's documented members (the stored records of
  :class:`~fluoroscope.query.faultinsights.InsightEngine`, trimmed to them), X-Ray's
  limits (times at most 30 days old, an impact graph's window at most 6 hours,
  ``MaxResults`` 1-100 and 1-50, at most one state) and ``InvalidRequestException``
  for what breaks them, an unknown insight or a token this server did not issue.
* ``POST /api/insights`` ``{StartTime, EndTime}`` is the console's: every insight
  overlapping the window with its timeline (rate and band per minute) and events, and
  the state of each insights-enabled group (``LEARNING`` says why no band exists yet).
* :class:`InsightEvaluator` runs :meth:`InsightEngine.evaluate` in its own daemon
  thread every ``interval`` seconds (``FLUOROSCOPE_INSIGHTS_INTERVAL``), never on the
  event loop; a failing pass is logged and the next one runs as usual.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from fluoroscope.model.errors import FluoroscopeError, InvalidRequest
from fluoroscope.query.faultinsights import InsightEngine
from fluoroscope.server.xray import require_time

if TYPE_CHECKING:
    from fluoroscope.server.app import ServerState

__all__ = ["API_ROUTES", "ROUTES", "InsightEvaluator"]

log = logging.getLogger("fluoroscope.insights")

_MAX_AGE: Final = 30 * 86_400
_MAX_GRAPH_WINDOW: Final = 6 * 3600
_ID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}"
)
_SUMMARY_MEMBERS: Final = (
    "InsightId", "GroupARN", "GroupName", "RootCauseServiceId", "Categories", "State",
    "StartTime", "EndTime", "Summary", "ClientRequestImpactStatistics",
    "RootCauseServiceRequestImpactStatistics", "TopAnomalousServices",
)  # fmt: skip
_EVENT_MEMBERS: Final = (
    "Summary", "EventTime", "ClientRequestImpactStatistics",
    "RootCauseServiceRequestImpactStatistics", "TopAnomalousServices",
)  # fmt: skip


class InsightEvaluator:
    """Evaluates every group's Insights in a background thread (see the module)."""

    def __init__(self, engine: InsightEngine, interval: float) -> None:
        self._engine = engine
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="insights", daemon=True)
        self.passes = 0

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop after the pass under way (blocking)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._engine.evaluate()
            except FluoroscopeError as exc:  # the store refused: try again next time
                log.warning("Insights were not evaluated: %s", exc)
            except Exception:  # a bug must not end the evaluations for good
                log.exception("Insights were not evaluated")
            self.passes += 1
            self._stop.wait(self._interval)


def _members(record: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {n: record[n] for n in names if n in record}


def _recent(body: dict[str, Any], key: str, now: float) -> float:
    value = require_time(body, key)
    if value < now - _MAX_AGE:
        raise InvalidRequest(f"{key} can't be more than 30 days old")
    return value


def _limit(body: dict[str, Any], most: int) -> int:
    value = body.get("MaxResults")
    if value is None:
        return most
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise InvalidRequest(f"MaxResults must be a whole number from 1 to {most}")
    return value


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"insights:{offset}".encode()).decode()


def _offset(body: dict[str, Any]) -> int:
    token = body.get("NextToken")
    if token is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(str(token).encode()).decode()
        kind, _, number = text.partition(":")
        if kind == "insights" and number.isdigit():
            return int(number)
    except (ValueError, UnicodeError):
        pass
    raise InvalidRequest("NextToken is not a token this server issued")


def _page(items: list[Any], body: dict[str, Any], most: int) -> tuple[list[Any], str | None]:
    limit, offset = _limit(body, most), _offset(body)
    page = items[offset : offset + limit]
    return page, _token(offset + limit) if offset + limit < len(items) else None


def _overlaps(record: dict[str, Any], start: float, end: float) -> bool:
    finish = record.get("EndTime")
    return bool(record["StartTime"] < end and (finish is None or finish >= start))


async def insight_summaries(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    now = state.clock()
    start, end = _recent(body, "StartTime", now), _recent(body, "EndTime", now)
    if end < start:
        raise InvalidRequest("EndTime must not precede StartTime")
    name, arn = body.get("GroupName"), body.get("GroupARN")
    group = await run_in_threadpool(state.groups.get, name, arn)
    states = body.get("States")
    if states is not None:
        if not isinstance(states, list) or len(states) > 1:
            raise InvalidRequest("States holds at most one state")
        if any(s not in ("ACTIVE", "CLOSED") for s in states):
            raise InvalidRequest("States may hold ACTIVE or CLOSED")
    records = await run_in_threadpool(state.insights.insights)
    chosen = [
        r
        for r in records
        if r["GroupName"] == group.name
        and _overlaps(r, start, end)
        and (not states or r["State"] in states)
    ]
    page, token = _page(chosen, body, 100)
    result: dict[str, Any] = {
        "InsightSummaries": [
            {**_members(r, _SUMMARY_MEMBERS), "LastUpdateTime": r["LastUpdateTime"]} for r in page
        ]
    }
    if token:
        result["NextToken"] = token
    return result


async def _record(body: dict[str, Any], state: ServerState) -> dict[str, Any]:
    insight_id = body.get("InsightId")
    if not isinstance(insight_id, str) or not _ID.fullmatch(insight_id):
        raise InvalidRequest("InsightId is required and must be an insight id (a UUID)")
    found = await run_in_threadpool(state.insights.insight, insight_id.lower())
    if found is None:
        raise InvalidRequest(f"insight {insight_id} does not exist")
    return found


async def get_insight(request: Request, body: dict[str, Any], state: ServerState) -> dict[str, Any]:
    return {"Insight": _members(await _record(body, state), _SUMMARY_MEMBERS)}


async def insight_events(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    record = await _record(body, state)
    events = sorted(record.get("Events", []), key=lambda e: -e["EventTime"])  # latest first
    page, token = _page(events, body, 50)
    result: dict[str, Any] = {"InsightEvents": [_members(e, _EVENT_MEMBERS) for e in page]}
    if token:
        result["NextToken"] = token
    return result


async def impact_graph(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    now = state.clock()
    start, end = _recent(body, "StartTime", now), require_time(body, "EndTime")
    if end < start:
        raise InvalidRequest("EndTime must not precede StartTime")
    if end - start > _MAX_GRAPH_WINDOW:
        raise InvalidRequest("the time range between StartTime and EndTime is over six hours")
    if _offset(body):
        raise InvalidRequest("NextToken is not a token this server issued")
    record = await _record(body, state)
    lo, hi = int(start) // 60 * 60, -(-int(end) // 60) * 60
    nodes, edges = await run_in_threadpool(state.insights.graph, record["GroupName"], lo, hi)
    keys = sorted(
        {(r["name"], r["type"]) for r in nodes}
        | {(e["src_name"], e["src_type"]) for e in edges}
        | {(e["dst_name"], e["dst_type"]) for e in edges}
    )
    refs = {key: index for index, key in enumerate(keys)}
    calls: dict[tuple[str, str], set[int]] = {}
    for e in edges:
        calls.setdefault((e["src_name"], e["src_type"]), set()).add(
            refs[(e["dst_name"], e["dst_type"])]
        )
    services = [
        {
            "ReferenceId": refs[k],
            "Name": k[0],
            "Names": [k[0]],
            **({"Type": k[1]} if k[1] else {}),
            "Edges": [{"ReferenceId": ref} for ref in sorted(calls.get(k, ()))],
        }
        for k in keys
    ]  # fmt: skip  (no Type for a service without an origin, as GetServiceGraph)
    return {
        "InsightId": record["InsightId"],
        "StartTime": start,
        "EndTime": end,
        "ServiceGraphStartTime": float(lo),
        "ServiceGraphEndTime": float(hi),
        "Services": services,
    }


async def console_insights(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    """``{StartTime, EndTime}`` -> ``{Insights: [records], Groups: [states]}``."""
    start, end = require_time(body, "StartTime"), require_time(body, "EndTime")
    if end < start:
        raise InvalidRequest("EndTime must not precede StartTime")
    records = await run_in_threadpool(state.insights.insights)
    return {
        "Insights": [r for r in records if _overlaps(r, start, end)],
        "Groups": [s.to_api() for s in state.insights.states()],
    }


API_ROUTES: Final = {"/api/insights": console_insights}
ROUTES: Final = (
    ("/InsightSummaries", "GetInsightSummaries", insight_summaries),
    ("/Insight", "GetInsight", get_insight),
    ("/InsightEvents", "GetInsightEvents", insight_events),
    ("/InsightImpactGraph", "GetInsightImpactGraph", impact_graph),
)
