"""The critical path of one trace, and each entry's self time. Pure; thread-safe.

Contract. The input is a trace's flat entities (:class:`Span`: id, parent id, start,
end or None while in progress). The rules, which the engine's across-traces query
(``fluoroscope.store.critpath``) follows step for step so both answer alike:

- The trace runs from ``t0`` (the earliest start) to ``t1`` (the latest end or start).
  An entity in progress, or ending before it starts, ends at ``t1`` / at its start.
- An entity whose parent is not in the trace (a root, an orphan) hangs under a virtual
  root whose window is ``[t0, t1]``. Parent cycles are never reached from it.
- The walk: an entity on the path has a window ``[lo, hi]``. Its children, latest end
  first (ties: later start first, then greater id), are tried with ``cur = hi``: a
  child, clamped to the window (``e = min(end, hi)``, ``s = max(start, lo)``, which
  absorbs clock skew; ``s`` is also kept at most ``e``), joins the path when
  ``lo < e <= cur``; it gets the window
  ``[s, e]`` and ``cur`` becomes ``s``. A child still running at ``cur`` (overlapping
  or asynchronous work that did not hold the parent up) is passed over.
- An entity's critical time is its window minus its path children's windows; these
  sum to ``t1 - t0`` (the virtual root keeps the gaps no root covers).
- Self time (every entity): its duration not covered by the union of its children's
  intervals, each clamped to it.
- An entity's service is the name of its nearest segment (itself or an ancestor within
  64 levels); ``""`` for a subsegment without one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CriticalPath", "PathEntry", "Span", "critical_path", "spans_from_documents"]

MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class Span:
    """One entity of a trace, children excluded."""

    id: str
    parent_id: str
    start: float
    end: float | None
    name: str = ""
    is_segment: bool = False
    operation: str = ""


@dataclass(frozen=True, slots=True)
class PathEntry:
    """An entity on the critical path: its window on the path and its critical time."""

    id: str
    service: str
    name: str
    operation: str
    start: float
    end: float
    critical: float


@dataclass(frozen=True, slots=True)
class CriticalPath:
    """The path (in window order), every entity's self time, and the trace's span."""

    start: float
    end: float
    entries: list[PathEntry]
    self_times: dict[str, float]

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def gaps(self) -> float:
        """Time of the trace no root entity covers."""
        return max(self.duration - sum(e.critical for e in self.entries), 0.0)


def _operation(doc: Mapping[str, Any]) -> str:
    aws = doc.get("aws")
    if doc.get("namespace") == "aws" and isinstance(aws, dict):
        op = aws.get("operation")
        return op if isinstance(op, str) else ""
    return ""


def spans_from_documents(documents: Iterable[Mapping[str, Any]]) -> list[Span]:
    """Flatten segment documents (nested subsegments included; inferred segments,
    which the server adds on read, left out) into spans."""
    out: list[Span] = []

    def number(value: object) -> float | None:
        return (
            float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        )

    def visit(doc: Mapping[str, Any], parent: str, segment: bool) -> None:
        if doc.get("inferred") is True:
            return
        eid = str(doc.get("id", ""))
        start = number(doc.get("start_time"))
        end = None if doc.get("in_progress") is True else number(doc.get("end_time"))
        out.append(
            Span(eid, parent, start or 0.0, end, str(doc.get("name", "")), segment, _operation(doc))
        )
        subs = doc.get("subsegments")
        if isinstance(subs, list):
            for sub in subs:
                if isinstance(sub, dict):
                    visit(sub, eid, False)

    for doc in documents:
        if isinstance(doc, Mapping):
            parent = doc.get("parent_id")
            visit(doc, parent if isinstance(parent, str) else "", doc.get("type") != "subsegment")
    return out


def critical_path(spans: Sequence[Span]) -> CriticalPath:
    """The critical path and self times of one trace's ``spans`` (rules: module doc)."""
    by_id: dict[str, Span] = {}
    for span in spans:
        by_id[span.id] = span
    items = list(by_id.values())
    if not items:
        return CriticalPath(0.0, 0.0, [], {})
    t0 = min(s.start for s in items)
    t1 = max(max(s.start for s in items), max((s.end or 0.0) for s in items))
    end = {s.id: t1 if s.end is None else max(s.end, s.start) for s in items}
    root = "\x00root"
    children: dict[str, list[Span]] = {}
    for s in items:
        parent = s.parent_id if s.parent_id in by_id and s.parent_id != s.id else root
        children.setdefault(parent, []).append(s)

    self_times: dict[str, float] = {}
    for s in items:
        lo, hi = s.start, end[s.id]
        covered, reach = 0.0, lo
        for c in sorted(children.get(s.id, []), key=lambda c: c.start):
            cs, ce = max(c.start, lo), min(end[c.id], hi)
            if ce <= reach:
                continue
            covered += ce - max(cs, reach)
            reach = ce
        self_times[s.id] = max(hi - lo - covered, 0.0)

    def service(s: Span) -> str:
        node: Span | None = s
        for _ in range(MAX_DEPTH + 1):
            if node is None:
                return ""
            if node.is_segment:
                return node.name
            node = by_id.get(node.parent_id) if node.parent_id != node.id else None
        return ""

    windows: dict[str, tuple[float, float]] = {root: (t0, t1)}
    order: list[str] = []
    queue = deque([root])
    while queue:  # breadth first: a parent's window is known before its children's
        parent = queue.popleft()
        lo, hi = windows[parent]
        cur = hi
        kids = sorted(children.get(parent, []), key=lambda c: (end[c.id], c.start, c.id))
        for c in reversed(kids):
            e = min(end[c.id], hi)
            begin = min(max(c.start, lo), e)
            if lo < e <= cur:
                windows[c.id] = (begin, e)
                order.append(c.id)
                queue.append(c.id)
                cur = begin
    path_children: dict[str, float] = {}
    for eid in order:
        s = by_id[eid]
        parent = s.parent_id if s.parent_id in windows and s.parent_id != eid else root
        lo, hi = windows[eid]
        path_children[parent] = path_children.get(parent, 0.0) + (hi - lo)
    entries = []
    for eid in sorted(order, key=lambda i: (windows[i][0], -windows[i][1], i)):
        s = by_id[eid]
        lo, hi = windows[eid]
        critical = max(hi - lo - path_children.get(eid, 0.0), 0.0)
        entries.append(PathEntry(eid, service(s), s.name, s.operation, lo, hi, critical))
    return CriticalPath(t0, t1, entries, self_times)
