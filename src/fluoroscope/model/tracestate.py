"""Per-trace state: what a trace holds so far, its summary, its graph nodes and edges.

Pure logic shared by ingest (which keeps one per live trace and writes what it derives)
and query (which replays a stored trace through one to draw that trace's graph).

Documents of one trace arrive in any order and over minutes: the segment, subsegments
streamed before it, the caller's subsegment before or after the callee's segment, an
in-progress version before the complete one, and re-sent copies. :class:`TraceState`
merges them by entity id and derives, incrementally and exactly once per completed
entity:

* service-graph statistics (nodes from segments, edges from callers' subsegments,
  inferred nodes for downstream calls, retracted when the real segment turns up);
* the trace summary (:meth:`TraceState.summary`).

A state can be rebuilt from the stored rows (``replay``) after the cache dropped it or
the server restarted; a replay recounts nothing. Not thread-safe: one owner at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from sys import intern
from typing import Any, Final

from fluoroscope.model.entityrecords import (
    Annotations,
    CallEdge,
    Downstream,
    Edge,
    Exceptions,
    PendingEdge,
    SegmentRecord,
    Sub,
    http_facts,
    segment_node,
    shared,
    shared_annotations,
)
from fluoroscope.model.inference import NodeId, as_dict, call_target, http_status, outcome_of
from fluoroscope.model.stats import CLIENT_TYPE, Contribution, Outcome, StatsSink
from fluoroscope.model.summary import AnnotationValue
from fluoroscope.model.summarycolumns import SummaryColumns
from fluoroscope.model.tracesummary import summarize

__all__ = ["TraceState"]

_INF: Final = float("inf")
_MAX_CHAIN: Final = 64
_MAX_EXCEPTIONS: Final = 16
_NOTHING_WATCHED: Final[frozenset[str]] = frozenset()  # one for every state: 216 bytes each


_TUPLE_NEW: Final = tuple.__new__


def _outcome(start: float, end: float, bits: int) -> Outcome:
    """``Outcome(start, end, bits)`` without the interpreted ``__new__`` a NamedTuple
    has (2.4 times as fast as Python; compiled, no Python frame at all)."""
    return _TUPLE_NEW(Outcome, (start, end, bits))


@dataclass(slots=True, init=False)  # __init__ written out: see entityrecords
class TraceState:
    """Everything ingest knows about one trace.

    Kept small: ingest caches 10,000 per worker (``benchmarks/worker_memory.py``). An
    entity's facts (parent, annotations, exceptions, whether counted, the downstream
    call it made) live in its own record, not in a dict per fact keyed by its id, and
    what most traces never or no longer need (pending edges and calls) is ``None``
    until used. The calls between the trace's nodes (for edge() filters) are not
    kept apart: they are the inferred calls and the segments' edges.
    """

    trace_id: str
    ts: int
    revision: int
    segments: dict[str, SegmentRecord]
    subs: dict[str, Sub]  # subsegment id -> record
    unowned: list[str] | None  # downstream calls (sub ids) whose owner is unknown
    waiting: dict[str, list[PendingEdge]] | None  # parent id -> segments
    min_start: float
    max_end: float
    # ids whose change could resolve something still pending: the ids the last
    # resolution pass looked at without resolving (see _settle)
    watch: AbstractSet[str]

    def __init__(
        self,
        trace_id: str,
        ts: int,
        revision: int = 0,
        segments: dict[str, SegmentRecord] | None = None,
        subs: dict[str, Sub] | None = None,
        unowned: list[str] | None = None,
        waiting: dict[str, list[PendingEdge]] | None = None,
        min_start: float = _INF,
        max_end: float = 0.0,
        watch: AbstractSet[str] = _NOTHING_WATCHED,
    ) -> None:
        self.trace_id = trace_id
        self.ts = ts
        self.revision = revision
        self.segments = {} if segments is None else segments
        self.subs = {} if subs is None else subs
        self.unowned = unowned
        self.waiting = waiting
        self.min_start = min_start
        self.max_end = max_end
        self.watch = watch

    # -- views (built on demand: for tests and tools, never on ingest's path) ---------

    @property
    def counted(self) -> dict[str, None]:
        """The ids of the entities seen complete, whose statistics were counted."""
        out = {eid: None for eid, seg in self.segments.items() if not seg.in_progress}
        out.update((eid, None) for eid, sub in self.subs.items() if sub.complete)
        return out

    @property
    def annotations(self) -> dict[tuple[str, str], AnnotationValue]:
        """Every annotation of the trace, by (entity id, key)."""
        out: dict[tuple[str, str], AnnotationValue] = {}
        records: list[tuple[str, SegmentRecord | Sub]] = [
            *self.segments.items(),
            *self.subs.items(),
        ]
        for eid, record in records:
            flat = record.annotations
            for at in range(0, len(flat), 2):
                out[(eid, flat[at])] = flat[at + 1]
        return out

    def call_of(self, eid: str) -> Downstream | None:
        """The downstream call subsegment ``eid`` made, if any."""
        sub = self.subs.get(eid)
        return sub.call if sub is not None else None

    def exceptions_of(self, eid: str) -> Exceptions:
        """Entity ``eid``'s exceptions (type, message)."""
        seg = self.segments.get(eid)
        if seg is not None and seg.exceptions:
            return seg.exceptions
        sub = self.subs.get(eid)
        return sub.exceptions if sub is not None else ()

    # -- merging ---------------------------------------------------------------------

    def apply(
        self,
        entity: dict[str, Any],
        parent_id: str,
        is_segment: bool,
        stats: StatsSink | None,
        bits: int | None = None,
    ) -> None:
        """Merge one entity (children excluded) into the state.

        ``stats`` receives the statistics this entity completes; ``None`` replays an
        entity that was counted before (rebuilding the state from the store). ``bits``:
        the entity's :func:`~fluoroscope.model.inference.outcome`, when the caller has
        it already (computed here otherwise).
        """
        start = float(entity["start_time"])
        end_raw = entity.get("end_time")
        http = entity.get("http")
        status = http_status(http)
        self.merge(
            entity,
            entity["id"],
            entity["name"],
            start,
            float(end_raw) if end_raw is not None else start,
            end_raw is None or bool(entity.get("in_progress")),
            entity.get("namespace"),
            entity.get("origin"),
            http,
            status,
            outcome_of(entity, status) if bits is None else bits,
            parent_id,
            is_segment,
            stats,
        )

    def merge(
        self,
        entity: dict[str, Any],
        eid: str,
        name: Any,
        start: float,
        end: float,
        in_progress: bool,
        namespace: Any,
        origin: Any,
        http: Any,
        status: int,
        bits: int,
        parent_id: str,
        is_segment: bool,
        stats: StatsSink | None,
    ) -> None:
        """:meth:`apply` for an entity whose fields the caller has read already
        (``Assembler._explode``, which reads each field of an entity once for its row
        and for this): its ``id``, ``name``, ``start_time`` and ``end_time`` as floats
        (``end`` is ``start`` when it has none), whether it is ``in_progress`` (no end
        time, or the flag), its ``namespace``, ``origin`` and ``http`` fields (``None``
        when absent), its response ``status``
        (:func:`~fluoroscope.model.inference.http_status`) and its outcome ``bits``."""
        segments, subs = self.segments, self.subs
        old_segment = segments.get(eid)
        old_sub = subs.get(eid)
        # counted once a copy was seen complete (as a segment or as a subsegment): its
        # record stays complete, as stale in-progress copies are dropped here
        counted = (old_segment is not None and not old_segment.in_progress) or (
            old_sub is not None and old_sub.complete
        )
        if in_progress and counted:
            return  # a stale in-progress copy of an entity already seen complete
        if start < self.min_start:
            self.min_start = start
        if not in_progress and end > self.max_end:
            self.max_end = end
        annotations: Annotations = ()
        found: Any = entity.get("annotations")
        if found:
            # read as a dict (compiled: a dict's items without a generic method call)
            labels: dict[Any, Any] = found if type(found) is dict else dict(found)
            flat: list[Any] = []
            plain = True  # str keys, str or int values: shared by value (entityrecords)
            for key, value in labels.items():
                flat.append(key)
                flat.append(shared(value))
                if type(key) is not str or (type(value) is not str and type(value) is not int):
                    plain = False
            annotations = shared_annotations(tuple(flat)) if plain else tuple(flat)
        exceptions: Exceptions = ()
        cause = entity.get("cause")
        # ``type(x) is dict`` first: parsed JSON holds plain dicts, and the abc check
        # ``isinstance(x, Mapping)`` costs several times more.
        if cause is not None and (type(cause) is dict or isinstance(cause, Mapping)):
            found = cause.get("exceptions")
            if isinstance(found, list):
                exceptions = tuple(
                    (str(e.get("type") or ""), str(e.get("message") or ""))
                    for e in found[:_MAX_EXCEPTIONS]
                    if type(e) is dict or isinstance(e, Mapping)
                )
        # A later copy replaces the entity whole, its facts too: its own kind's record
        # is replaced; an id also merged as the other kind loses its facts there.
        if is_segment:
            if old_sub is not None:
                old_sub.annotations = old_sub.exceptions = ()
            segment = segments[eid] = self._segment(
                entity,
                name,
                origin,
                http,
                status,
                parent_id,
                start,
                end,
                in_progress,
                bits,
                annotations,
                exceptions,
                old_segment.called if old_segment is not None else None,
            )
        else:
            if old_segment is not None:
                old_segment.annotations = old_segment.exceptions = ()
            waiting = self.waiting
            if old_sub is None and waiting is not None and eid in waiting:
                # keyed by the string the waiting segments hold as their parent id, not a
                # second copy of it from this document (65 bytes a trace with a callee)
                for key in waiting:
                    if key == eid:
                        eid = key
                        break
            sub = subs[eid] = Sub(
                shared(name),
                bits,
                start,
                end,
                namespace in ("remote", "aws"),
                parent_id,
                not in_progress,
                annotations,
                exceptions,
                old_sub.call if old_sub is not None else None,
            )
        if not in_progress and not counted:
            if is_segment:
                done = _outcome(start, end, bits)
                node = segment.node
                if stats is not None:
                    stats.node(node, done, not parent_id)  # (root: by position, see StatsSink)
                    if not parent_id:
                        stats.edge(segment_node(node.name, CLIENT_TYPE), node, done)
                if parent_id:
                    waiting = self.waiting
                    if waiting is None:
                        self.waiting = {parent_id: [PendingEdge(eid, node, done)]}
                    else:
                        pending = waiting.get(parent_id)
                        if pending is None:
                            waiting[parent_id] = [PendingEdge(eid, node, done)]
                        else:
                            pending.append(PendingEdge(eid, node, done))
                    self._settle(stats)
                    return
            else:
                called = call_target(entity, name, namespace, http)
                if called is not None:
                    node = segment_node(called[0], called[1])  # shared: see call_target
                    sub.call = Downstream(node, None, False, None, start, end, bits)
                    if self.unowned is None:
                        self.unowned = [eid]
                    else:
                        self.unowned.append(eid)
                    self._settle(stats)
                    return
        # Nothing new is pending: only a change to an id the last pass looked at can
        # resolve anything (a pass that resolves nothing changes nothing).
        if eid in self.watch and (self.unowned or self.waiting):
            self._settle(stats)

    @staticmethod
    def _segment(
        entity: dict[str, Any],
        name: Any,
        origin: Any,
        http: Any,
        status: int,
        parent_id: str,
        start: float,
        end: float,
        in_progress: bool,
        bits: int,
        annotations: Annotations,
        exceptions: Exceptions,
        edge: CallEdge | None,
    ) -> SegmentRecord:
        http = as_dict(http)
        account_id = instance_id = availability_zone = ""
        # each block read as a dict (inference.as_dict), another mapping copied
        aws = as_dict(entity.get("aws"))
        if aws is not None:
            account_id = intern(str(aws.get("account_id") or ""))
            ec2 = as_dict(aws.get("ec2"))
            if ec2 is not None:
                instance_id = intern(str(ec2.get("instance_id") or ""))
                availability_zone = intern(str(ec2.get("availability_zone") or ""))
        user = entity.get("user")
        arn = entity.get("resource_arn")
        return SegmentRecord(
            segment_node(name, origin if isinstance(origin, str) else ""),
            parent_id,
            start,
            end,
            in_progress,
            bits,
            http_facts(http, status) if http else None,
            shared(user) if isinstance(user, str) else "",
            shared(arn) if isinstance(arn, str) else "",
            account_id,
            instance_id,
            availability_zone,
            annotations,
            exceptions,
            edge,
        )

    # -- resolution ------------------------------------------------------------------

    def owner(self, eid: str) -> str | None:
        """The id of the segment that contains entity ``eid``, if known yet."""
        segments, subs = self.segments, self.subs
        for _ in range(_MAX_CHAIN):
            if eid in segments:
                return eid
            sub = subs.get(eid)
            if sub is None:
                return None
            eid = sub.parent
        return None

    def _owner_watched(self, eid: str, watch: set[str]) -> str | None:
        """:meth:`owner`, adding every id it looks at to ``watch``."""
        segments, subs = self.segments, self.subs
        for _ in range(_MAX_CHAIN):
            if eid in segments:
                return eid
            watch.add(eid)
            sub = subs.get(eid)
            if sub is None:
                return None
            eid = sub.parent
        return None

    def _settle(self, stats: StatsSink | None) -> None:
        """Turn whatever can now be resolved into edges and inferred nodes.

        Whether a pending call or edge resolves depends only on the entries of the ids
        this pass looks at (owner chains, and the pending ids themselves), so they are
        kept in ``watch``: :meth:`apply` runs a pass again when one of them changes or
        something new is pending, and skips passes that could resolve nothing."""
        watch: set[str] = set()
        if self.unowned:
            for did in list(self.unowned):
                self._resolve_call(did, watch, stats)
        if self.waiting:
            for parent_id in list(self.waiting):
                self._resolve_waiting(parent_id, watch, stats)
        if not self.unowned:
            self.unowned = None
        if not self.waiting:
            self.waiting = None
        self.watch = watch if self.unowned or self.waiting else _NOTHING_WATCHED

    def _resolve_call(self, did: str, watch: set[str], stats: StatsSink | None) -> None:
        """Give downstream call ``did`` (unowned) its caller if its owner is known now."""
        owner = self._owner_watched(did, watch)
        if owner is None:
            return
        assert self.unowned is not None
        self.unowned.remove(did)
        made = self.subs[did].call
        assert made is not None
        made.caller = caller = self.segments[owner].node
        made.inferred = self.waiting is None or did not in self.waiting
        if made.inferred and stats is not None:
            done = made.outcome
            stats.node(made.node, done, False, True)  # not root, inferred
            stats.edge(caller, made.node, done)

    def _resolve_waiting(self, parent_id: str, watch: set[str], stats: StatsSink | None) -> None:
        """Count the edges of the segments waiting for ``parent_id`` if their caller is
        known now."""
        watch.add(parent_id)
        waiting = self.waiting
        assert waiting is not None
        sub = self.subs.get(parent_id)
        call = sub.call if sub is not None else None
        if call is not None:
            if call.caller is None:
                return  # the caller's owner is not known yet
            callees = waiting.pop(parent_id)
            done = call.outcome  # one tuple for the statistics and the callees' edges
            if call.inferred:
                call.inferred = False
                if stats is not None:
                    stats.node(call.node, done, root=False, inferred=True, weight=-1)
                if stats is not None:
                    stats.edge(call.caller, call.node, done, weight=-1)
            for callee in callees:
                self._edge(callee, call.caller, done, stats)
            return
        if sub is not None and not sub.complete:
            seg = self.segments.get(parent_id)
            if seg is None or seg.in_progress:
                return  # the calling subsegment is still in progress; its outcome is the edge's
        owner = self._owner_watched(parent_id, watch)
        if owner is None:
            return
        callees = waiting.pop(parent_id)
        caller = self.segments[owner].node
        for callee in callees:
            self._edge(callee, caller, callee.outcome, stats)

    def _edge(
        self, callee: PendingEdge, caller: NodeId, done: Outcome, stats: StatsSink | None
    ) -> None:
        """Count the call from ``caller`` to the segment ``callee`` waited for (and keep
        it on the segment, for edge() filters)."""
        if stats is not None:
            stats.edge(caller, callee.node, done)
        self.segments[callee.sid].called = CallEdge(caller, callee.node, done)

    def contributions(self) -> list[Contribution]:
        """What this trace adds to the service-graph statistics as it stands now: a
        node per completed segment (with its client edge when it is a root), an
        inferred node per unanswered downstream call, an edge per call between two of
        its nodes. Summed over the trace's batches, :meth:`apply` hands ``stats`` the
        same outcomes (less those of entities re-sent with other values, counted here
        as their latest version); group statistics retract one snapshot and add the
        next when a trace changes."""
        out: list[Contribution] = []
        subs = self.subs
        for sid, seg in self.segments.items():
            if not seg.in_progress or ((sub := subs.get(sid)) is not None and sub.complete):
                node = seg.node
                done = Outcome(seg.start, seg.end, seg.bits)
                out.append((node, None, done, not seg.parent_id, False))
                if not seg.parent_id:
                    out.append((NodeId(node.name, CLIENT_TYPE), node, done, False, False))
        for sub in subs.values():
            call = sub.call
            if call is not None and call.inferred:
                out.append((call.node, None, call.outcome, False, True))
        out.extend((*edge, False, False) for edge in self.calls())
        return out

    def calls(self) -> list[Edge]:
        """The calls between two nodes of the trace, seen from the caller: those of
        inferred nodes and those to segments whose caller is known."""
        out = [seg.called.edge for seg in self.segments.values() if seg.called is not None]
        for sub in self.subs.values():
            call = sub.call
            if call is not None and call.inferred:
                assert call.caller is not None
                out.append((call.caller, call.node, call.outcome))
        return out

    # -- summary ---------------------------------------------------------------------
    #
    # A summary must not depend on the order the trace's entities were merged in (its
    # documents arrive in any order; a trace rebuilt from the store meets them in the
    # store's order): wherever it lists or chooses, it goes by canonical order - start
    # time, then id - not by the merge order the dicts keep.

    def times_of(self, eid: str) -> tuple[float, float]:
        """Entity ``eid``'s start and end time (``inf`` both if unknown; an entity in
        progress ends when it started), for canonical order: summaries list by start,
        then id; root causes (:mod:`~fluoroscope.model.rootcause`) by end, then id."""
        seg = self.segments.get(eid)
        if seg is not None:
            return seg.start, seg.end
        sub = self.subs.get(eid)
        return (sub.start, sub.end) if sub is not None else (_INF, _INF)

    def summarize(self, out: SummaryColumns) -> None:
        """Append the trace's summary as of now to ``out``
        (:func:`fluoroscope.model.tracesummary.summarize`)."""
        summarize(self, out)
