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


def _below(state: TraceState) -> dict[str, int]:
    """Per parent id, the OR of its children's bits (an id both kinds counts as the
    segment): whether a failure came from further down."""
    segments = state.segments
    below: dict[str, int] = {}
    for sid, sub in state.subs.items():
        parent = sub.parent
        seg = segments.get(sid)
        bits = seg.bits if seg is not None else sub.bits
        below[parent] = below.get(parent, 0) | bits
    for seg in segments.values():
        parent = seg.parent_id
        if parent:
            below[parent] = below.get(parent, 0) | seg.bits
    return below


def _longer(state: TraceState, kid: str, took: float, best: str) -> bool:
    """Whether ``kid``, running ``took``, goes before the longest child so far, ``best``:
    longer, or as long and before it in canonical order (end, then id)."""
    so_far = _duration(state, best)
    return took > so_far or (took == so_far and _before(state, kid, best))


def _before(state: TraceState, a: str, b: str) -> bool:
    """``(end of a, a) < (end of b, b)``, without the tuples."""
    end_a = _end(state, a)
    end_b = _end(state, b)
    return end_a < end_b or (end_a == end_b and a < b)


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
    """One step of a path: ``eid``'s name and exceptions (a segment's if it is both,
    as :meth:`TraceState.exceptions_of`), whether remote, its share of ``total``."""
    sub = state.subs.get(eid)
    seg = state.segments.get(eid)
    if sub is not None:
        start, end = sub.start, sub.end
    elif seg is not None:
        start, end = seg.start, seg.end
    else:
        start = end = 0.0
    if seg is not None and seg.exceptions:
        exceptions = seg.exceptions
    else:
        exceptions = sub.exceptions if sub is not None else ()
    return (
        seg.node.name if seg is not None else (sub.name if sub is not None else eid),
        exceptions,
        sub is not None and sub.remote,
        (end - start) / total if total else None,
    )


def root_causes(
    state: TraceState, index: dict[NodeId, int], root_id: str | None
) -> tuple[list[Cause], list[Cause], list[Cause]]:
    """The trace's fault, error and response-time root causes (one walk of its tree)."""
    segments, subs = state.segments, state.subs
    root = segments.get(root_id) if root_id is not None else None
    timed = root is not None and not root.in_progress and root.end - root.start > 0
    # One pass over the records: the entities flagged FAULT or ERROR (most traces have
    # none: then the two failure walks are skipped) and, for the response-time walk,
    # each parent's longest-running child (of equally long ones the first in canonical
    # order: a strict order, so met in any order the same child is chosen, as it was
    # from a list of each parent's children). An id both a segment and a subsegment
    # counts as the segment, and twice, as it always has; the second visit finds its
    # service seen. It runs as long as the subsegment.
    flagged: list[tuple[str, int]] = []
    longest: dict[str, str] = {}
    for eid, seg in segments.items():
        bits = seg.bits
        if bits & _FAILED:
            flagged.append((eid, bits))
        if timed:
            parent = seg.parent_id
            if parent:
                also = subs.get(eid)
                took = also.end - also.start if also is not None else seg.end - seg.start
                best = longest.get(parent)
                if best is None or _longer(state, eid, took, best):
                    longest[parent] = eid
    for eid, sub in subs.items():
        bits = sub.bits
        if bits & _FAILED or eid in segments:
            same = segments.get(eid)
            if same is not None:
                bits = same.bits
            if bits & _FAILED:
                flagged.append((eid, bits))
        if timed:
            parent = sub.parent
            best = longest.get(parent)
            if best is None or _longer(state, eid, sub.end - sub.start, best):
                longest[parent] = eid
    if not flagged and not timed:
        return [], [], []
    if len(flagged) > 1:
        # canonical order: end, then id (an id met twice is met with the same bits, so
        # the decorated tuples sort as the pairs would by that key, and stably)
        ordered = [(_end(state, eid), eid, bits) for eid, bits in flagged]
        ordered.sort()
        flagged = [(eid, bits) for _, eid, bits in ordered]
    below = _below(state) if flagged else {}
    return (
        _cause_of(state, below, flagged, FAULT, index, root_id) if flagged else [],
        _cause_of(state, below, flagged, ERROR, index, root_id) if flagged else [],
        _slowest_cause(state, longest, index, root_id) if timed else [],
    )


def _cause_of(
    state: TraceState,
    below: dict[str, int],
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
        if below.get(eid, 0) & bit:
            continue  # the failure came from further down (a child carries the flag)
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
    state: TraceState, longest: dict[str, str], index: dict[NodeId, int], root_id: str | None
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
        kid = longest.get(eid)  # the longest; of equally long ones the first in canonical order
        if kid is None:
            break
        eid = kid
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
