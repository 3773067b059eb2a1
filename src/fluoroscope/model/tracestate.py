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

import sys
from bisect import insort
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Final

from fluoroscope.model.inference import ERROR, FAULT, THROTTLE, NodeId, downstream_node, outcome
from fluoroscope.model.rootcause import root_causes
from fluoroscope.model.stats import CLIENT_TYPE, Contribution, Outcome, StatsSink
from fluoroscope.model.summary import AnnotationValue
from fluoroscope.model.summarycolumns import SummaryColumns

__all__ = ["TraceState"]

_INF: Final = float("inf")
_MAX_CHAIN: Final = 64
_MAX_EXCEPTIONS: Final = 16
_NOTHING_WATCHED: Final[frozenset[str]] = frozenset()  # one for every state: 216 bytes each


def _shared(value: Any) -> Any:
    """``value``, interned when it is a string: a cached state keeps the names, origins,
    zones, methods, user agents and annotation values of its documents, which repeat
    across traces, and a parsed document holds a string object of its own for each.
    Measured on the ingest benchmark's traces (``benchmarks/worker_memory.py``),
    interning them and sharing the empty ``watch`` cut a cached trace from 6,228 bytes
    to 5,190 (10,000 per worker by default)."""
    return sys.intern(value) if type(value) is str else value


_Http = tuple[str, int, str, str, str]
"""A segment's request URL, response status, method, user agent and client IP."""
_NO_HTTP: Final[_Http] = ("", 0, "", "", "")


def _http(http: Mapping[str, Any]) -> _Http:
    """What a summary shows of an http block: kept instead of the block, so a cached
    trace does not hold its documents' request and response objects."""
    request = http.get("request")
    if request is None or not (type(request) is dict or isinstance(request, Mapping)):
        request = {}
    response = http.get("response")
    if response is None or not (type(response) is dict or isinstance(response, Mapping)):
        response = {}
    status = response.get("status")
    if not (type(status) is int or (isinstance(status, int) and not isinstance(status, bool))):
        status = 0
    # str(x or "") as summaries always did, without a call for a string
    url = request.get("url")
    method = request.get("method")
    agent = request.get("user_agent")
    client_ip = request.get("client_ip")
    return (
        url if type(url) is str else str(url or ""),
        status,
        sys.intern(method) if type(method) is str else str(method or ""),
        sys.intern(agent) if type(agent) is str else str(agent or ""),
        client_ip if type(client_ip) is str else str(client_ip or ""),
    )


_Annotations = tuple[Any, ...]
"""An entity's annotations, flat: key, value, key, value... (``()`` for none): a tuple
of 2n items, where a dict keyed by (entity id, key) took a 56-byte key tuple each."""
_Exceptions = tuple[tuple[str, str], ...]
"""An entity's exceptions: (type, message) each (``()`` for none)."""

_MAX_SHARED_NODES: Final = 65_536
_NODES: dict[tuple[str, str], NodeId] = {}
"""Nodes already made, by (name, type): one object for every segment and call of a node
(a NodeId is 56 bytes, a cached trace has ~3-4) and no NodeId built for a known one.
Cleared when full (then only shared less). Shared by threads: one dict operation at a
time, under the GIL."""


def _node(node: NodeId) -> NodeId:
    """``node``, or the equal node made before (see :data:`_NODES`)."""
    found = _NODES.get(node)
    if found is not None:
        return found
    if len(_NODES) >= _MAX_SHARED_NODES:
        _NODES.clear()
    node = NodeId(_shared(node.name), _shared(node.type))
    _NODES[node] = node
    return node


def _segment_node(name: str, origin: str) -> NodeId:
    """The node of a segment named ``name`` of type ``origin``, shared (:data:`_NODES`)."""
    found = _NODES.get((name, origin))
    if found is not None:
        return found
    return _node(NodeId(name, origin))


_Edge = tuple[NodeId, NodeId, Outcome]
"""A call between two nodes of a trace: caller, callee, outcome."""


@dataclass(slots=True)
class _Segment:
    node: NodeId
    parent_id: str
    start: float
    end: float
    in_progress: bool
    bits: int
    # what a summary shows of the segment's http block, if any; dropped once the
    # segment has a known parent (only the root's is shown, and it is never the root)
    http: _Http | None
    user: str
    resource_arn: str
    account_id: str
    instance_id: str
    availability_zone: str
    annotations: _Annotations
    exceptions: _Exceptions
    # the call to it counted as an edge once its caller was known: (caller, its own
    # node then, outcome); kept when a later copy replaces the segment
    edge: _Edge | None


@dataclass(slots=True)
class _Downstream:
    """A completed downstream call, waiting for its owner or standing as an inferred node."""

    node: NodeId
    outcome: Outcome
    inferred: bool = False  # counted as an inferred node (retract if a real callee appears)
    caller: NodeId | None = None


@dataclass(slots=True)
class Sub:
    """What a trace keeps of a subsegment: root-cause analysis' needs, its parent, its
    facts, and the downstream call it made (kept when a later copy replaces it)."""

    name: str
    bits: int
    start: float
    end: float
    remote: bool
    parent: str
    complete: bool  # seen complete (counted)
    annotations: _Annotations
    exceptions: _Exceptions
    call: _Downstream | None  # set when first seen complete, if it called downstream


@dataclass(slots=True)
class _PendingEdge:
    """A completed segment whose parent entity has not arrived yet."""

    sid: str
    node: NodeId
    outcome: Outcome


def _annotation_order(pair: tuple[AnnotationValue, list[int]]) -> tuple[str, AnnotationValue]:
    """Canonical order of one key's annotation values: by type, then value."""
    return type(pair[0]).__name__, pair[0]


@dataclass(slots=True)
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
    revision: int = 0
    segments: dict[str, _Segment] = field(default_factory=dict)
    subs: dict[str, Sub] = field(default_factory=dict)  # subsegment id -> record
    unowned: list[str] | None = None  # downstream calls (sub ids) whose owner is unknown
    waiting: dict[str, list[_PendingEdge]] | None = None  # parent id -> segments
    min_start: float = float("inf")
    max_end: float = 0.0
    # ids whose change could resolve something still pending: the ids the last
    # resolution pass looked at without resolving (see _settle)
    watch: AbstractSet[str] = _NOTHING_WATCHED

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
        records: list[tuple[str, _Segment | Sub]] = [*self.segments.items(), *self.subs.items()]
        for eid, record in records:
            flat = record.annotations
            for at in range(0, len(flat), 2):
                out[(eid, flat[at])] = flat[at + 1]
        return out

    def call_of(self, eid: str) -> _Downstream | None:
        """The downstream call subsegment ``eid`` made, if any."""
        sub = self.subs.get(eid)
        return sub.call if sub is not None else None

    def exceptions_of(self, eid: str) -> _Exceptions:
        """Entity ``eid``'s exceptions (type, message)."""
        seg = self.segments.get(eid)
        if seg is not None and seg.exceptions:
            return seg.exceptions
        sub = self.subs.get(eid)
        return sub.exceptions if sub is not None else ()

    # -- merging ---------------------------------------------------------------------

    def apply(
        self,
        entity: Mapping[str, Any],
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
        eid: str = entity["id"]
        start = float(entity["start_time"])
        end_raw = entity.get("end_time")
        in_progress = end_raw is None or bool(entity.get("in_progress"))
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
        end = float(end_raw) if end_raw is not None else start
        if start < self.min_start:
            self.min_start = start
        if not in_progress and end > self.max_end:
            self.max_end = end
        annotations: _Annotations = ()
        found: Any = entity.get("annotations")
        if found:
            flat: list[Any] = []
            for key, value in found.items():
                flat.append(key)
                flat.append(_shared(value))
            annotations = tuple(flat)
        exceptions: _Exceptions = ()
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
        if bits is None:
            bits = outcome(entity)
        # A later copy replaces the entity whole, its facts too: its own kind's record
        # is replaced; an id also merged as the other kind loses its facts there.
        if is_segment:
            if old_sub is not None:
                old_sub.annotations = old_sub.exceptions = ()
            segment = segments[eid] = self._segment(
                entity,
                parent_id,
                start,
                end,
                in_progress,
                bits,
                annotations,
                exceptions,
                old_segment.edge if old_segment is not None else None,
            )
        else:
            if old_segment is not None:
                old_segment.annotations = old_segment.exceptions = ()
            sub = subs[eid] = Sub(
                _shared(entity["name"]),
                bits,
                start,
                end,
                entity.get("namespace") in ("remote", "aws"),
                parent_id,
                not in_progress,
                annotations,
                exceptions,
                old_sub.call if old_sub is not None else None,
            )
        if not in_progress and not counted:
            if is_segment:
                done = Outcome(start, end, bits)
                node = segment.node
                if stats is not None:
                    stats.node(node, done, root=not parent_id)
                    if not parent_id:
                        stats.edge(NodeId(node.name, CLIENT_TYPE), node, done)
                if parent_id:
                    waiting = self.waiting
                    if waiting is None:
                        self.waiting = {parent_id: [_PendingEdge(eid, node, done)]}
                    else:
                        pending = waiting.get(parent_id)
                        if pending is None:
                            waiting[parent_id] = [_PendingEdge(eid, node, done)]
                        else:
                            pending.append(_PendingEdge(eid, node, done))
                    self._settle(stats)
                    return
            else:
                called = downstream_node(entity)
                if called is not None:
                    sub.call = _Downstream(_node(called), Outcome(start, end, bits))
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
        entity: Mapping[str, Any],
        parent_id: str,
        start: float,
        end: float,
        in_progress: bool,
        bits: int,
        annotations: _Annotations,
        exceptions: _Exceptions,
        edge: _Edge | None,
    ) -> _Segment:
        origin = entity.get("origin")
        http = entity.get("http")
        if http is not None and not (type(http) is dict or isinstance(http, Mapping)):
            http = None
        account_id = instance_id = availability_zone = ""
        aws = entity.get("aws")
        if aws is not None and (type(aws) is dict or isinstance(aws, Mapping)):
            account_id = sys.intern(str(aws.get("account_id") or ""))
            ec2 = aws.get("ec2")
            if ec2 is not None and (type(ec2) is dict or isinstance(ec2, Mapping)):
                instance_id = sys.intern(str(ec2.get("instance_id") or ""))
                availability_zone = sys.intern(str(ec2.get("availability_zone") or ""))
        user = entity.get("user")
        arn = entity.get("resource_arn")
        return _Segment(
            _segment_node(entity["name"], origin if isinstance(origin, str) else ""),
            parent_id,
            start,
            end,
            in_progress,
            bits,
            _http(http) if http else None,
            _shared(user) if isinstance(user, str) else "",
            _shared(arn) if isinstance(arn, str) else "",
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
        if made.inferred:
            if stats is not None:
                stats.node(made.node, made.outcome, root=False, inferred=True)
            if stats is not None:
                stats.edge(caller, made.node, made.outcome)

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
            if call.inferred:
                call.inferred = False
                if stats is not None:
                    stats.node(call.node, call.outcome, root=False, inferred=True, weight=-1)
                if stats is not None:
                    stats.edge(call.caller, call.node, call.outcome, weight=-1)
            for callee in callees:
                self._edge(callee, call.caller, call.outcome, stats)
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
        self, callee: _PendingEdge, caller: NodeId, done: Outcome, stats: StatsSink | None
    ) -> None:
        """Count the call from ``caller`` to the segment ``callee`` waited for (and keep
        it on the segment, for edge() filters)."""
        if stats is not None:
            stats.edge(caller, callee.node, done)
        self.segments[callee.sid].edge = (caller, callee.node, done)

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

    def calls(self) -> list[_Edge]:
        """The calls between two nodes of the trace, seen from the caller: those of
        inferred nodes and those to segments whose caller is known."""
        out = [seg.edge for seg in self.segments.values() if seg.edge is not None]
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

    def _root(self) -> str | None:
        """The root segment's id: of the segments whose parent is not known, the first
        in canonical order. A segment whose parent is known is never the root again
        (entities stay), so what it kept of its http block for the summary is dropped."""
        best: str | None = None
        best_start = float("inf")
        segments, subs = self.segments, self.subs
        for sid, seg in segments.items():
            parent = seg.parent_id
            if parent and (parent in segments or parent in subs):
                if seg.http is not None:
                    seg.http = None
                continue
            if seg.start < best_start or (
                seg.start == best_start and best is not None and sid < best
            ):
                best, best_start = sid, seg.start
        return best

    def _service_of(self, eid: str, index: dict[NodeId, int]) -> int:
        """The index in ``index`` of the service owning entity ``eid``, -1 if unknown."""
        owner = self.owner(eid)
        return index[self.segments[owner].node] if owner is not None else -1

    def summarize(self, out: SummaryColumns) -> None:
        """Append the trace's summary as of now to ``out``: one row holding what a
        :class:`~fluoroscope.model.summary.TraceSummary` would (bumps nothing; the
        caller sets ``revision``)."""
        # Once per changed trace per batch, the largest part of ingest's work: plain
        # loops writing straight into the columns, no objects per service or edge.
        inf = _INF
        segments = self.segments
        names, types = out.service_names, out.service_types
        f_bits, f_root, f_inferred = out.svc_bits, out.svc_root, out.svc_inferred
        f_min, f_max = out.svc_min_rt, out.svc_max_rt
        base = len(names)
        accounts: list[str] = []  # per service of this trace
        index: dict[NodeId, int] = {}
        root_id = self._root()
        entry: int | None = None
        users: dict[str, set[int]] = {}
        arns: list[str] = []
        instances: list[str] = []
        zones: list[str] = []
        any_bits = 0
        partial = False
        # entities' annotations (with the index of their owner's service: -1 unknown)
        # and exceptions (with their canonical order: start, then id)
        annotated: list[tuple[int, _Annotations]] = []
        calls: list[_Edge] = []  # between two nodes of the trace
        failed: list[tuple[float, str, int, _Exceptions]] = []
        # services numbered, and users, ARNs, instances and zones listed, in canonical
        # order of the segments (most traces have one to three)
        # ((start, id, segment) tuples sort without a key function)
        ordered = [(seg.start, sid, seg) for sid, seg in segments.items()]
        if len(ordered) > 1:
            ordered.sort()
        for _, sid, seg in ordered:
            node = seg.node
            idx = index.get(node)
            if idx is None:
                idx = index[node] = len(accounts)
                accounts.append(seg.account_id)
                names.append(node.name)
                types.append(node.type)
                f_bits.append(0)
                f_root.append(0)
                f_inferred.append(0)
                f_min.append(inf)
                f_max.append(0.0)
            at = base + idx
            bits = seg.bits
            f_bits[at] |= bits
            any_bits |= bits
            if seg.in_progress:
                partial = True
            else:
                elapsed = seg.end - seg.start
                if elapsed < f_min[at]:
                    f_min[at] = elapsed
                if elapsed > f_max[at]:
                    f_max[at] = elapsed
            if sid == root_id:
                entry = idx
                f_root[at] = 1
            if seg.annotations:
                annotated.append((idx, seg.annotations))
            if seg.exceptions:
                failed.append((seg.start, sid, idx, seg.exceptions))
            if seg.edge is not None:
                calls.append(seg.edge)
            if seg.user:
                found = users.get(seg.user)
                if found is None:
                    users[seg.user] = {idx}
                else:
                    found.add(idx)
            if seg.resource_arn and seg.resource_arn not in arns:
                arns.append(seg.resource_arn)
            if seg.instance_id and seg.instance_id not in instances:
                instances.append(seg.instance_id)
            if seg.availability_zone and seg.availability_zone not in zones:
                zones.append(seg.availability_zone)
        inferred = [
            (c.outcome.start, did, c)
            for did, sub in self.subs.items()
            if (c := sub.call) is not None and c.inferred
        ]
        if len(inferred) > 1:
            inferred.sort()  # canonical order: start, then id
        for _, _, call in inferred:
            node = call.node
            idx = index.get(node)
            if idx is None:
                idx = index[node] = len(accounts)
                accounts.append("")
                names.append(node.name)
                types.append(node.type)
                f_bits.append(0)
                f_root.append(0)
                f_inferred.append(0)
                f_min.append(inf)
                f_max.append(0.0)
            at = base + idx
            f_inferred[at] = 1
            done = call.outcome
            assert call.caller is not None  # inferred once its caller was known
            calls.append((call.caller, node, done))
            f_bits[at] |= done.bits
            any_bits |= done.bits
            elapsed = done.end - done.start
            if elapsed < f_min[at]:
                f_min[at] = elapsed
            if elapsed > f_max[at]:
                f_max[at] = elapsed
        count = len(accounts)
        out.service_accounts.extend(accounts)
        for at in range(base, base + count):
            if f_min[at] == inf:
                f_min[at] = 0.0
        # a row per call between two of the services (skipping calls of a caller whose
        # segment is unknown), then one per pair: its outcomes' bits, least and most time
        edges: list[tuple[int, int, int, float, float]] = []
        for src, dst, done in calls:
            source = index.get(src)
            dest = index.get(dst)
            if source is not None and dest is not None:
                elapsed = done.end - done.start
                edges.append((source + 1, dest + 1, done.bits, elapsed, elapsed))
        if len(edges) > 1:
            edges.sort()  # by the services' indices, pairs together
            merged = [edges[0]]
            for edge in edges[1:]:
                last = merged[-1]
                if edge[0] == last[0] and edge[1] == last[1]:
                    merged[-1] = (
                        edge[0],
                        edge[1],
                        last[2] | edge[2],
                        min(last[3], edge[3]),
                        max(last[4], edge[4]),
                    )
                else:
                    merged.append(edge)
            edges = merged
        for source, dest, bits, low, high in edges:
            out.edge_src.append(source)
            out.edge_dst.append(dest)
            out.edge_bits.append(bits)
            out.edge_min_rt.append(low)
            out.edge_max_rt.append(high)
        for sid, sub in self.subs.items():
            if sub.annotations or sub.exceptions:
                where = self._service_of(sid, index)
                if sub.annotations:
                    annotated.append((where, sub.annotations))
                if sub.exceptions:
                    failed.append((self.times_of(sid)[0], sid, where, sub.exceptions))
        if len(failed) > 1:
            failed.sort()  # canonical order (ids differ: an entity's are in one record)
        for _, _, where, found_exceptions in failed:
            for kind, message in found_exceptions:
                out.exc_types.append(kind)
                out.exc_messages.append(message)
                out.exc_services.append(where)

        # key -> [(value, sorted service indices)]; written with the keys sorted, each
        # key's values by type, then value
        annotations: dict[str, list[tuple[AnnotationValue, list[int]]]] = {}
        slots: dict[tuple[str, type, AnnotationValue], list[int]] = {}
        for where, flat in annotated:
            for at in range(0, len(flat), 2):
                key = flat[at]
                value = flat[at + 1]
                slot = (key, type(value), value)
                ids = slots.get(slot)
                if ids is None:
                    ids = slots[slot] = [where] if where >= 0 else []
                    pairs = annotations.get(key)
                    if pairs is None:
                        annotations[key] = [(value, ids)]
                    else:
                        pairs.append((value, ids))
                elif where >= 0 and where not in ids:
                    insort(ids, where)
        annotation_json: list[list[Any]] = []
        for key in sorted(annotations) if len(annotations) > 1 else annotations:
            pairs = annotations[key]
            if len(pairs) > 1:
                pairs.sort(key=_annotation_order)
            for value, ids in pairs:
                annotation_json.append([key, value, ids])
                out.add_annotation(key, value)
        user_ids = [[name, sorted(ids)] for name, ids in users.items()] if users else []
        if users:
            out.users.extend(users)
        out.resource_arns.extend(arns)
        out.instance_ids.extend(instances)
        out.zones.extend(zones)

        root = segments.get(root_id) if root_id else None
        if root is not None and root.http is not None:
            url, status, method, agent, client_ip = root.http
        else:
            url, status, method, agent, client_ip = _NO_HTTP
        start = self.min_start if self.min_start != inf else float(self.ts)
        end = max(self.max_end, start)
        duration = end - start
        cause_json: list[list[list[Any]]] = []
        for category, found_causes in enumerate(root_causes(self, index, root_id)):
            group: list[list[Any]] = []
            for cause in found_causes:
                at = base + cause[0]
                group.append(out.add_cause(category, cause, names[at], types[at]))
            cause_json.append(group)
        out.end_row(
            (
                self.ts, self.trace_id, self.revision, start, start + duration, duration,
                (root.end - root.start) if root is not None and not root.in_progress else -1.0,
                1 if root is not None and root.bits & FAULT else 0,
                1 if root is not None and root.bits & ERROR else 0,
                1 if any_bits & THROTTLE else 0,
                1 if partial or root is None else 0,
                method, url, status, agent, client_ip,
                names[base + entry] if entry is not None else "",
                types[base + entry] if entry is not None else "",
                count,
            ),
            {
                "s": [[names[base + i], types[base + i], accounts[i]] for i in range(count)],
                "e": entry,
                "a": annotation_json,
                "u": user_ids,
                "r": arns,
                "i": instances,
                "z": zones,
                "rc": cause_json,
            },
        )  # fmt: skip
