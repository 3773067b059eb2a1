"""Root-cause analysis of one trace (TraceSummary's Fault/Error/ResponseTimeRootCauses).

* Fault and error causes: every entity carrying the flag none of whose children (own
  subsegments, or the segments of services it called) carries it is where the failure
  started. Its service is the root cause - or, for a downstream call nobody
  instrumented, the inferred node it calls - and the path runs from that service's
  segment down to the entity, with the exceptions each step recorded. Of several such
  entities of one service the path ends at the first in canonical order (the one that
  ended first, then the smallest id), and the causes are listed in that order: a
  failure's origin ends before the callers that saw it fail, and SDKs send entities as
  they end, so this is the order failures were met in when documents came in order.
* Response-time cause: from the root segment, follow the longest-running child at
  every step (of children running equally long, the first in canonical order); the
  service owning the last step is the cause, each step's coverage its share of the
  root's response time.

Nothing depends on the order the trace's documents were merged in: they arrive in any
order, and a trace rebuilt from the store meets its entities in the store's order.
X-Ray documents neither choice; canonical order makes its answer for a trace one (an
entity still in progress counts as ending when it started).

Pure functions over a :class:`~fluoroscope.model.tracestate.TraceState`; thread-safe
for a state nobody mutates meanwhile. Causes are plain tuples (:data:`Cause`, fields as
in :class:`~fluoroscope.model.summary.RootCause` and
:class:`~fluoroscope.model.summary.CauseEntity`): ingest computes them for every changed
trace and only flattens them into columns and JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from fluoroscope.model.inference import ERROR, FAULT, NodeId

if TYPE_CHECKING:
    from fluoroscope.model.tracestate import TraceState

__all__ = ["Cause", "Step", "root_causes"]

Step: TypeAlias = tuple[str, tuple[tuple[str, str], ...], bool, float | None]
"""One step of a cause's path: name, exceptions (type, message), remote, coverage."""
Cause: TypeAlias = tuple[int, tuple[Step, ...], bool, bool]
"""A root cause: service index, path, inferred, client impacting."""

_MAX_PATH = 32
_FAILED = FAULT | ERROR


def _end(state: TraceState, eid: str) -> float:
    """Entity ``eid``'s end time (``inf`` if unknown): canonical order is end, then id."""
    return state.times_of(eid)[1]


def _children(state: TraceState) -> dict[str, list[str]]:
    """Child ids per entity id: subsegments first, then segments, each in merge order
    (which means nothing: choices among them go by canonical order)."""
    children: dict[str, list[str]] = {}
    get = children.get
    for sid, sub in state.subs.items():
        parent = sub.parent
        kids = get(parent)
        if kids is None:
            children[parent] = [sid]
        else:
            kids.append(sid)
    for sid, seg in state.segments.items():
        parent = seg.parent_id
        if parent:
            kids = get(parent)
            if kids is None:
                children[parent] = [sid]
            else:
                kids.append(sid)
    return children


def _bits(state: TraceState, eid: str) -> int:
    seg = state.segments.get(eid)
    if seg is not None:
        return seg.bits
    sub = state.subs.get(eid)
    return sub.bits if sub is not None else 0


def _name(state: TraceState, eid: str) -> str:
    seg = state.segments.get(eid)
    if seg is not None:
        return seg.node.name
    sub = state.subs.get(eid)
    return sub.name if sub is not None else eid


def _path(state: TraceState, leaf: str) -> tuple[str, list[str]]:
    """The owning segment of ``leaf`` and the entity ids from it down to ``leaf``."""
    chain = [leaf]
    eid = leaf
    for _ in range(_MAX_PATH):
        if eid in state.segments:
            break
        sub = state.subs.get(eid)
        if sub is None:
            break
        eid = sub.parent
        chain.append(eid)
    chain.reverse()
    return chain[0], chain


def _duration(state: TraceState, eid: str) -> float:
    """How long entity ``eid`` ran (0 if unknown); a subsegment's if it is both."""
    sub = state.subs.get(eid)
    if sub is not None:
        return sub.end - sub.start
    seg = state.segments.get(eid)
    return seg.end - seg.start if seg else 0.0


def _entity(state: TraceState, eid: str, total: float | None = None) -> Step:
    sub = state.subs.get(eid)
    seg = state.segments.get(eid)
    start, end = (sub.start, sub.end) if sub else ((seg.start, seg.end) if seg else (0.0, 0.0))
    return (
        _name(state, eid),
        state.exceptions_of(eid),
        bool(sub and sub.remote),
        (end - start) / total if total else None,
    )


def root_causes(
    state: TraceState, index: dict[NodeId, int], root_id: str | None
) -> tuple[list[Cause], list[Cause], list[Cause]]:
    """The trace's fault, error and response-time root causes (one walk of its tree)."""
    segments = state.segments
    # Entities flagged FAULT or ERROR, segments first (most traces have none: then the
    # two failure walks are skipped). An id both a segment and a subsegment counts as
    # the segment, and twice, as it always has; the second visit finds its service seen.
    flagged: list[tuple[str, int]] = [
        (eid, seg.bits) for eid, seg in segments.items() if seg.bits & _FAILED
    ]
    for eid, sub in state.subs.items():
        bits = sub.bits
        if bits & _FAILED or eid in segments:
            seg = segments.get(eid)
            if seg is not None:
                bits = seg.bits
            if bits & _FAILED:
                flagged.append((eid, bits))
    if len(flagged) > 1:  # canonical order (stable: an id met twice stays twice)
        flagged.sort(key=lambda found: (_end(state, found[0]), found[0]))
    root = segments.get(root_id) if root_id is not None else None
    timed = root is not None and not root.in_progress and root.end - root.start > 0
    if not flagged and not timed:
        return [], [], []
    children = _children(state)
    return (
        _cause_of(state, children, flagged, FAULT, index, root_id) if flagged else [],
        _cause_of(state, children, flagged, ERROR, index, root_id) if flagged else [],
        _slowest_cause(state, children, index, root_id) if timed else [],
    )


def _cause_of(
    state: TraceState,
    children: dict[str, list[str]],
    flagged: list[tuple[str, int]],
    bit: int,
    index: dict[NodeId, int],
    root_id: str | None,
) -> list[Cause]:
    """Where the trace's fault (``bit`` = FAULT) or error (``bit`` = ERROR) started."""
    impacting = bool(root_id and state.segments[root_id].bits & bit)
    causes: list[Cause] = []
    seen: set[int] = set()
    for eid, bits in flagged:
        if not bits & bit:
            continue
        if any(_bits(state, c) & bit for c in children.get(eid, ())):
            continue  # the failure came from further down
        call = state.call_of(eid)
        if call is not None and call.inferred and call.node in index:
            service, inferred = index[call.node], True
            path: tuple[Step, ...] = ((call.node.name, state.exceptions_of(eid), True, None),)
        else:
            owner, chain = _path(state, eid)
            if owner not in state.segments:
                continue
            service, inferred = index[state.segments[owner].node], False
            path = tuple(_entity(state, e) for e in chain)
        if service in seen:
            continue
        seen.add(service)
        causes.append((service, path, inferred, impacting))
    return causes


def _slowest_cause(
    state: TraceState, children: dict[str, list[str]], index: dict[NodeId, int], root_id: str | None
) -> list[Cause]:
    """The service behind most of the root's response time (empty while it runs)."""
    if root_id is None:
        return []
    root = state.segments[root_id]
    total = root.end - root.start
    if root.in_progress or total <= 0:
        return []

    eid = root_id
    for _ in range(_MAX_PATH * 4):
        kids = children.get(eid)
        if not kids:
            break
        if len(kids) == 1:
            eid = kids[0]
            continue
        # the longest; of equally long ones the first in canonical order
        eid = kids[0]
        longest = _duration(state, eid)
        for kid in kids[1:]:
            took = _duration(state, kid)
            if took > longest or (
                took == longest and (_end(state, kid), kid) < (_end(state, eid), eid)
            ):
                eid, longest = kid, took
    call = state.call_of(eid)
    if call is not None and call.inferred and call.node in index:
        return [
            (
                index[call.node],
                ((call.node.name, (), True, _duration(state, eid) / total),),
                True,
                True,
            )
        ]
    owner, chain = _path(state, eid)
    if owner not in state.segments:
        return []
    path = tuple(_entity(state, e, total) for e in chain)
    return [(index[state.segments[owner].node], path, False, True)]
