"""X-Ray Insights: a group's fault rate leaving its expected band, and the service at fault.

Method (per group with ``InsightsEnabled``; every figure is computed in the engine from
the per-minute service-graph statistics of the group - :func:`group_rows` with a
60-second period, the group's own statistics where kept, else recomputed from spans -
never trace by trace):

* **the rate**: per minute, faults / requests over the group's *entry* nodes (the
  nodes its traces start at: the requests its clients made);
* **the band**: for minute ``m``, from the previous ``history_minutes`` minutes that
  hold at least ``min_requests`` requests and are not part of an insight, the median
  rate ``c`` and the scaled median absolute deviation ``s = 1.4826 * MAD`` (robust: an
  incident in the history does not move them). The band is ``c +/- w`` with
  ``w = max(deviations * s, 3 * sqrt(max(c, 0.01) * (1 - c) / n), floor)`` - the
  binomial term keeps a minute of ``n`` requests from leaving the band by chance;
* **too short a history**: fewer than ``min_minutes`` such minutes give no band; the
  minute is not judged and the group's state says so (``LEARNING`` with a reason);
* **judged minutes**: only minutes of at least ``min_requests`` requests are judged; the
  others (a quiet minute, an outage without traffic) neither open nor close anything;
* **opening**: ``open_after`` consecutive judged minutes above the band open an
  insight starting at the first of them;
* **closing**: ``close_after`` consecutive judged minutes back in the band close it;
  its end is the start of the first of them;
* **the root cause**: over the insight's window, each service's fault excess - its
  faults less its baseline fault rate (the ``history_minutes`` before the insight)
  times its requests - less the largest excess among the services it calls (what its
  downstream explains). The service with the largest unexplained excess is the root
  cause; every service with a positive excess is an anomalous service.

:class:`InsightEngine.evaluate` rescans the last ``lookback_minutes`` (and back to the
start of any insight still active) at each pass: the scan is deterministic, an
insight's id derives from its group and start minute, so passes agree with each other
and with a restart. The per-minute series of each group is kept between passes, all but
its last ``REREAD_MINUTES`` minutes, which are read again (late segments); an insight
stored as closed with the same end is not recomputed. Insights are persisted in the store (``api_settings``, kind
``xray-insight``) with their events and a timeline (rate and band per minute) for the
console, and forgotten once closed for longer than the retention period. Contract: blocking (store calls); :meth:`evaluate` for one thread at a time,
the reads thread-safe.
"""

from __future__ import annotations

import math
import statistics
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from fluoroscope.model.groups import Group
from fluoroscope.query.groups import GroupService
from fluoroscope.query.groupstats import GroupStats, group_rows
from fluoroscope.store.store import Store

__all__ = ["KIND", "BandSettings", "GroupState", "InsightEngine", "band", "group_graph_rows"]

KIND: Final = "xray-insight"
_NAMESPACE: Final = uuid.UUID("6a1f3c52-2f0e-4d0b-9a43-55b1d0c7e0aa")
_TIMELINE_PAD: Final = 30  # minutes of timeline kept either side of an insight
_MAX_TIMELINE: Final = 400
_MAX_SCAN_MINUTES: Final = 24 * 60
REREAD_MINUTES: Final = 10
"""Minutes before the end of the last pass read again at the next one (segments that
arrive later than this are not counted in a minute already read)."""


@dataclass(frozen=True, slots=True)
class BandSettings:
    """The method's parameters (see the module docstring)."""

    history_minutes: int = 180
    min_minutes: int = 30
    min_requests: int = 5
    deviations: float = 4.0
    floor: float = 0.05
    open_after: int = 2
    close_after: int = 2
    lookback_minutes: int = 180
    lag_seconds: int = 60  # minutes this recent are not complete yet


@dataclass(frozen=True, slots=True)
class Band:
    center: float
    lower: float
    upper: float


def band(history: list[float], requests: int, settings: BandSettings) -> Band | None:
    """The expected band for a minute of ``requests`` requests given the rates of its
    usable history minutes; None when they are fewer than ``settings.min_minutes``."""
    if len(history) < settings.min_minutes:
        return None
    center = statistics.median(history)
    spread = 1.4826 * statistics.median(abs(r - center) for r in history)
    p = max(center, 0.01)
    noise = 3 * math.sqrt(p * (1 - min(p, 0.99)) / max(requests, 1))
    width = max(settings.deviations * spread, noise, settings.floor)
    return Band(center, max(0.0, center - width), min(1.0, center + width))


@dataclass(slots=True)
class _Minute:
    start: int
    total: int = 0
    ok: int = 0
    faults: int = 0

    @property
    def rate(self) -> float:
        return self.faults / self.total if self.total else 0.0


@dataclass(slots=True)
class GroupState:
    """What the last pass found for one group: ``OK``, ``LEARNING`` (no band: too
    short a history, ``reason`` says why), ``ACTIVE`` (an insight is open)."""

    group: str
    state: str
    reason: str = ""
    evaluated_at: float = 0.0
    usable_minutes: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "GroupName": self.group,
            "State": self.state,
            "Reason": self.reason,
            "EvaluatedAt": self.evaluated_at,
            "UsableHistoryMinutes": self.usable_minutes,
        }


@dataclass(slots=True)
class _Episode:
    start: int
    end: int | None  # None: still active
    detected: int
    minutes: list[int] = field(default_factory=list)


def group_graph_rows(
    store: Store,
    groups: GroupService,
    tracked: GroupStats,
    group: Group,
    start: float,
    end: float,
    period: int | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Node and edge statistics rows of ``group`` for calls started in ``[start, end)``."""
    expression = group.filter_expression
    if not expression or not expression.strip():
        return (
            store.stats("node", start, end, period=period).to_pylist(),
            store.stats("edge", start, end, period=period).to_pylist(),
        )
    condition = groups.condition(expression)
    kept = tracked.tracked(group.name)
    if kept is not None and kept.condition != condition:
        kept = None
    return group_rows(store, start, end, condition, kept, period=period)


def _stats(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {
        "FaultCount": sum(int(r["faults"]) for r in rows),
        "OkCount": sum(int(r["ok"]) for r in rows),
        "TotalCount": sum(int(r["total"]) for r in rows),
    }


def _service_id(name: str, type_: str) -> dict[str, Any]:
    """X-Ray's ServiceId; a service without an origin has no Type."""
    found: dict[str, Any] = {"Name": name, "Names": [name]}
    if type_:
        found["Type"] = type_
    return found


def root_cause(
    window_nodes: list[dict[str, Any]],
    window_edges: list[dict[str, Any]],
    base_nodes: list[dict[str, Any]],
) -> tuple[tuple[str, str] | None, list[tuple[str, str]]]:
    """The root-cause node ``(name, type)`` and the anomalous ones, most excess first
    (see the module docstring)."""
    base = {(r["name"], r["type"]): r for r in base_nodes}
    excess: dict[tuple[str, str], float] = {}
    for row in window_nodes:
        key = (row["name"], row["type"])
        before = base.get(key)
        rate = int(before["faults"]) / int(before["total"]) if before and before["total"] else 0.0
        excess[key] = int(row["faults"]) - rate * int(row["total"])
    calls: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for edge in window_edges:
        src, dst = (edge["src_name"], edge["src_type"]), (edge["dst_name"], edge["dst_type"])
        if src != dst:
            calls.setdefault(src, set()).add(dst)
    anomalous = sorted((k for k, v in excess.items() if v > 0), key=lambda k: (-excess[k], k))
    best: tuple[str, str] | None = None
    best_value = 0.0
    for key in anomalous:
        below = max((max(excess.get(d, 0.0), 0.0) for d in calls.get(key, ())), default=0.0)
        unexplained = excess[key] - below
        if unexplained > best_value + 1e-9:
            best, best_value = key, unexplained
    return best, anomalous


class InsightEngine:
    """Evaluates insights-enabled groups and answers for the stored insights."""

    def __init__(
        self,
        store: Store,
        groups: GroupService,
        tracked: GroupStats,
        *,
        clock: Callable[[], float],
        settings: BandSettings | None = None,
        retention_seconds: float = 30 * 86_400,
    ) -> None:
        self._store = store
        self._groups = groups
        self._tracked = tracked
        self._clock = clock
        self.settings = settings or BandSettings()
        self._retention = retention_seconds
        self._lock = threading.Lock()
        self._states: dict[str, GroupState] = {}
        # per (group, filter): (first minute, end, entry requests per minute) last read
        self._cache: dict[tuple[str, str], tuple[int, int, dict[int, _Minute]]] = {}

    # -- reads -----------------------------------------------------------------------

    def insights(self) -> list[dict[str, Any]]:
        """Every stored insight (full records), latest start first."""
        found = list(self._store.settings.all(KIND).values())
        return sorted(found, key=lambda i: (-i["StartTime"], i["InsightId"]))

    def insight(self, insight_id: str) -> dict[str, Any] | None:
        found = self._store.settings.get(KIND, insight_id)
        return found if isinstance(found, dict) else None

    def states(self) -> list[GroupState]:
        with self._lock:
            return sorted(self._states.values(), key=lambda s: s.group)

    def graph(self, group_name: str, start: float, end: float) -> tuple[list[Any], list[Any]]:
        group = self._groups.get(name=group_name)
        return group_graph_rows(self._store, self._groups, self._tracked, group, start, end)

    # -- evaluation ------------------------------------------------------------------

    def evaluate(self) -> list[GroupState]:
        """One pass over every insights-enabled group; returns their states."""
        now = self._clock()
        stored = []
        for insight in self.insights():  # past the retention period: forgotten
            if insight.get("EndTime", now) < now - self._retention:
                self._store.settings.delete(KIND, insight["InsightId"])
            else:
                stored.append(insight)
        states: dict[str, GroupState] = {}
        enabled = [g for g in self._groups.all() if g.insights_enabled]
        wanted = {(g.name, g.filter_expression or "") for g in enabled}
        self._cache = {k: v for k, v in self._cache.items() if k in wanted}
        for group in enabled:
            mine = [i for i in stored if i["GroupName"] == group.name]
            states[group.name] = self._evaluate_group(group, mine, now)
        with self._lock:
            self._states = states
        return list(states.values())

    def _evaluate_group(self, group: Group, stored: list[dict[str, Any]], now: float) -> GroupState:
        s = self.settings
        last = (int(now) - s.lag_seconds) // 60 * 60  # first minute not complete
        scan = last - s.lookback_minutes * 60
        for insight in stored:
            if insight["State"] == "ACTIVE":
                scan = min(scan, int(insight["StartTime"]))
        scan = max(scan, last - _MAX_SCAN_MINUTES * 60)
        minutes = self._series(group, scan - s.history_minutes * 60, last)
        excluded: set[int] = set()
        for insight in stored:
            if int(insight["StartTime"]) < scan:
                end = insight.get("EndTime") or scan
                excluded.update(range(int(insight["StartTime"]), min(int(end), scan), 60))
        state = GroupState(group.name, "OK", evaluated_at=now)
        episodes: list[_Episode] = []
        bands: dict[int, Band] = {}
        current: _Episode | None = None
        above = within = 0
        pending: list[int] = []
        returned: int | None = None  # the first minute back in the band
        for t in range(scan, last, 60):
            minute = minutes.get(t, _Minute(t))
            history = [
                minutes[h].rate
                for h in range(t - s.history_minutes * 60, t, 60)
                if h in minutes and minutes[h].total >= s.min_requests and h not in excluded
            ]
            expected = band(history, minute.total, s)
            state.usable_minutes = len(history)
            if expected is None:
                state.state = "LEARNING"
                state.reason = (
                    f"the group's history holds {len(history)} minutes of at least "
                    f"{s.min_requests} requests in the last {s.history_minutes} minutes; "
                    f"a band needs {s.min_minutes}"
                )
                continue
            state.state, state.reason = "OK", ""
            bands[t] = expected
            if current is not None:
                excluded.add(t)
            if minute.total < s.min_requests:
                continue  # too few requests to judge: neither opens nor closes
            out = minute.rate > expected.upper
            if current is None:
                if out:
                    above += 1
                    pending.append(t)
                    if above >= s.open_after:
                        current = _Episode(pending[0], None, t + 60, list(pending))
                        excluded.update(pending)
                else:
                    above, pending = 0, []
            else:
                if out:
                    within, returned = 0, None
                    current.minutes.append(t)
                else:
                    within += 1
                    returned = t if returned is None else returned
                    if within >= s.close_after:
                        current.end = returned
                        episodes.append(current)
                        current, above, pending, within, returned = None, 0, [], 0, None
        if current is not None:
            episodes.append(current)
            state.state = "ACTIVE"
        for episode in episodes:
            self._record(group, episode, minutes, bands, stored, now)
        return state

    def _series(self, group: Group, start: int, end: int) -> dict[int, _Minute]:
        """The group's entry requests per minute in ``[start, end)``: the minutes up to
        ``REREAD_MINUTES`` before the last pass's end are kept from earlier passes (for
        the same filter), the rest read from the engine."""
        ident = (group.name, group.filter_expression or "")
        cached = self._cache.get(ident)
        minutes: dict[int, _Minute] = {}
        read_from = start
        if cached is not None and cached[0] <= start < cached[1]:
            kept_until = max(start, cached[1] - REREAD_MINUTES * 60)
            minutes = {t: m for t, m in cached[2].items() if start <= t < kept_until}
            read_from = kept_until
        nodes, _ = group_graph_rows(
            self._store, self._groups, self._tracked, group, read_from, end, 60
        )
        for row in nodes:
            if not row.get("is_root"):
                continue
            m = minutes.setdefault(int(row["bucket"]), _Minute(int(row["bucket"])))
            m.total += int(row["total"])
            m.ok += int(row["ok"])
            m.faults += int(row["faults"])
        self._cache[ident] = (start, end, minutes)
        return minutes

    def _record(
        self,
        group: Group,
        episode: _Episode,
        minutes: dict[int, _Minute],
        bands: dict[int, Band],
        stored: list[dict[str, Any]],
        now: float,
    ) -> None:
        s = self.settings
        insight_id = str(uuid.uuid5(_NAMESPACE, f"{group.name}/{episode.start}"))
        old = next((i for i in stored if i["InsightId"] == insight_id), None)
        if old and old["State"] == "CLOSED" and old.get("EndTime") == episode.end:
            return  # closed as stored: nothing more to learn about it
        end = episode.end if episode.end is not None else (int(now) - s.lag_seconds) // 60 * 60
        end = max(end, episode.start + 60)
        window = group_graph_rows(
            self._store, self._groups, self._tracked, group, episode.start, end
        )
        base_nodes, _ = group_graph_rows(
            self._store,
            self._groups,
            self._tracked,
            group,
            episode.start - s.history_minutes * 60,
            episode.start,
        )
        cause, anomalous = root_cause(window[0], window[1], base_nodes)
        entry = [r for r in window[0] if r.get("is_root")]
        client = _stats(entry)
        cause_rows = [r for r in window[0] if cause and (r["name"], r["type"]) == cause]
        peak = max((minutes[t].rate for t in episode.minutes if t in minutes), default=0.0)
        expected = bands.get(episode.start)
        upper = expected.upper if expected else 0.0
        if cause is None:
            cause_text = "an unidentified service"
        else:
            cause_text = f"{cause[0]} ({cause[1]})" if cause[1] else cause[0]
        state = "ACTIVE" if episode.end is None else "CLOSED"
        summary = (
            f"Fault rate of group {group.name} rose to {peak:.0%} of requests, above its "
            f"expected band (up to {upper:.1%}); root cause: {cause_text}"
        )
        record: dict[str, Any] = {
            "InsightId": insight_id,
            "GroupName": group.name,
            "GroupARN": group.arn,
            "Categories": ["FAULT"],
            "State": state,
            "StartTime": float(episode.start),
            "Summary": summary,
            "ClientRequestImpactStatistics": client,
            "RootCauseServiceRequestImpactStatistics": _stats(cause_rows),
            "TopAnomalousServices": [{"ServiceId": _service_id(*k)} for k in anomalous[:5]],
        }
        if cause is not None:
            record["RootCauseServiceId"] = _service_id(*cause)
        if episode.end is not None:
            record["EndTime"] = float(episode.end)
        lo = episode.start - _TIMELINE_PAD * 60
        hi = min(end + _TIMELINE_PAD * 60, (int(now) - s.lag_seconds) // 60 * 60)
        timeline = []
        for t in range(max(lo, hi - _MAX_TIMELINE * 60), hi, 60):
            m = minutes.get(t, _Minute(t))
            b = bands.get(t)
            timeline.append(
                {"Time": float(t), "Requests": m.total, "Faults": m.faults,
                 "Rate": m.rate, "Lower": b.lower if b else None,
                 "Upper": b.upper if b else None}
            )  # fmt: skip
        record["Timeline"] = timeline
        events: list[dict[str, Any]] = list(old["Events"]) if old else []
        impact = {
            "ClientRequestImpactStatistics": client,
            "RootCauseServiceRequestImpactStatistics": record[
                "RootCauseServiceRequestImpactStatistics"
            ],
            "TopAnomalousServices": record["TopAnomalousServices"],
        }
        if not events:
            events.append({"Summary": summary, "EventTime": float(episode.detected), **impact})
        elif old and old.get("RootCauseServiceId") != record.get("RootCauseServiceId"):
            events.append(
                {"Summary": f"Root cause is now {cause_text}", "EventTime": now, **impact}
            )
        if episode.end is not None and not any(e.get("Closed") for e in events):
            events.append(
                {"Summary": f"Fault rate of group {group.name} returned to its expected band",
                 "EventTime": float(episode.end + s.close_after * 60), "Closed": True, **impact}
            )  # fmt: skip
        record["Events"] = events
        comparable = {k: v for k, v in (old or {}).items() if k != "LastUpdateTime"}
        if comparable == record:
            return
        record["LastUpdateTime"] = now
        self._store.settings.put(KIND, insight_id, record)
