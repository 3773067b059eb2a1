"""``model/tracesummary.py`` and ``model/rootcause.py`` (with ``SummaryColumns``'
``add_annotation``, ``add_cause`` and ``end_row``) as they were at commit 08b6be9, before
summaries were made cheaper (issue 21): the reference ``test_summary_unchanged.py`` holds
today's :func:`~fluoroscope.model.tracesummary.summarize` to, row for row and byte for
byte. Frozen: never edited to follow the summary (a change of what a summary holds
changes the test, on purpose, not this copy). Drop it with the test once the comparison
has served. Details are appended as dicts (the test encodes both sides alike)."""

from __future__ import annotations

from bisect import insort
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from fluoroscope.model.entityrecords import NO_HTTP, Annotations, Edge, Exceptions
from fluoroscope.model.inference import ERROR, FAULT, THROTTLE, NodeId
from fluoroscope.model.summary import AnnotationValue
from fluoroscope.model.summarycolumns import ANN_BOOL, ANN_NUMBER, ANN_STRING, SummaryColumns

if TYPE_CHECKING:
    from fluoroscope.model.tracestate import TraceState

__all__ = ["summarize"]

_INF: Final = float("inf")
Step: TypeAlias = tuple[str, tuple[tuple[str, str], ...], bool, float | None]
Cause: TypeAlias = tuple[int, tuple[Step, ...], bool, bool]
_MAX_PATH = 32
_FAILED = FAULT | ERROR


def _annotation_order(pair: tuple[AnnotationValue, list[int]]) -> tuple[str, AnnotationValue]:
    """Canonical order of one key's annotation values: by type, then value."""
    return type(pair[0]).__name__, pair[0]


def _root(state: TraceState) -> str | None:
    """The root segment's id: of the segments whose parent is not known, the first
    in canonical order. A segment whose parent is known is never the root again
    (entities stay), so what it kept of its http block for the summary is dropped.
    (``TraceState.root`` before summarize chose the root in its own loop.)"""
    best: str | None = None
    best_start = float("inf")
    segments, subs = state.segments, state.subs
    for sid, seg in segments.items():
        parent = seg.parent_id
        if parent and (parent in segments or parent in subs):
            if seg.http is not None:
                seg.http = None
            continue
        if seg.start < best_start or (seg.start == best_start and best is not None and sid < best):
            best, best_start = sid, seg.start
    return best


def _service_of(state: TraceState, eid: str, index: dict[NodeId, int]) -> int:
    """The index in ``index`` of the service owning entity ``eid``, -1 if unknown."""
    owner = state.owner(eid)
    return index[state.segments[owner].node] if owner is not None else -1


def summarize(state: TraceState, out: SummaryColumns) -> None:
    """Append the trace's summary as of now to ``out``: one row holding what a
    :class:`~fluoroscope.model.summary.TraceSummary` would (bumps nothing; the
    caller sets ``revision``)."""
    # Once per changed trace per batch, the largest part of ingest's work: plain
    # loops writing straight into the columns, no objects per service or edge.
    inf = _INF
    segments = state.segments
    names, types = out.service_names, out.service_types
    f_bits, f_root, f_inferred = out.svc_bits, out.svc_root, out.svc_inferred
    f_min, f_max = out.svc_min_rt, out.svc_max_rt
    base = len(names)
    accounts: list[str] = []  # per service of this trace
    index: dict[NodeId, int] = {}
    root_id = _root(state)
    entry: int | None = None
    users: dict[str, set[int]] = {}
    arns: list[str] = []
    instances: list[str] = []
    zones: list[str] = []
    any_bits = 0
    partial = False
    # entities' annotations (with the index of their owner's service: -1 unknown)
    # and exceptions (with their canonical order: start, then id)
    annotated: list[tuple[int, Annotations]] = []
    calls: list[Edge] = []  # between two nodes of the trace
    failed: list[tuple[float, str, int, Exceptions]] = []
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
        for did, sub in state.subs.items()
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
    for sid, sub in state.subs.items():
        if sub.annotations or sub.exceptions:
            where = _service_of(state, sid, index)
            if sub.annotations:
                annotated.append((where, sub.annotations))
            if sub.exceptions:
                failed.append((state.times_of(sid)[0], sid, where, sub.exceptions))
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
            _add_annotation(out, key, value)
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
        url, status, method, agent, client_ip = NO_HTTP
    start = state.min_start if state.min_start != inf else float(state.ts)
    end = max(state.max_end, start)
    duration = end - start
    cause_json: list[list[list[Any]]] = []
    for category, found_causes in enumerate(root_causes(state, index, root_id)):
        group: list[list[Any]] = []
        for cause in found_causes:
            at = base + cause[0]
            group.append(_add_cause(out, category, cause, names[at], types[at]))
        cause_json.append(group)
    _end_row(out,
        (
            state.ts, state.trace_id, state.revision, start, start + duration, duration,
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


# -- model/rootcause.py


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


# -- SummaryColumns' methods


def _end_row(self: SummaryColumns, scalars: tuple[Any, ...], details: dict[str, Any]) -> None:
    """Close the row whose list items were appended since the previous row's end."""
    self.scalars.append(scalars)
    self.details.append(details)
    offsets = self.offsets
    offsets["services"].append(len(self.service_names))
    offsets["facts"].append(len(self.svc_bits))
    offsets["users"].append(len(self.users))
    offsets["arns"].append(len(self.resource_arns))
    offsets["annotations"].append(len(self.ann_keys))
    offsets["exceptions"].append(len(self.exc_types))
    offsets["instances"].append(len(self.instance_ids))
    offsets["zones"].append(len(self.zones))
    offsets["edges"].append(len(self.edge_src))
    offsets["causes"].append(len(self.rc_cat))


def _add_annotation(self: SummaryColumns, key: str, value: AnnotationValue) -> None:
    """Append one (key, value) item of the row's annotations."""
    self.ann_keys.append(key)
    if isinstance(value, bool):
        self.ann_types.append(ANN_BOOL)
        self.ann_strings.append("")
        self.ann_numbers.append(float(value))
    elif isinstance(value, (int, float)):  # (a tuple: ``int | float`` is built per call)
        self.ann_types.append(ANN_NUMBER)
        self.ann_strings.append("")
        self.ann_numbers.append(float(value))
    else:
        self.ann_types.append(ANN_STRING)
        self.ann_strings.append(str(value))
        self.ann_numbers.append(0.0)


def _add_cause(
    self: SummaryColumns, category: int, cause: Cause, name: str, type_: str
) -> list[Any]:
    """Append one root cause's items (its service, named ``name`` and typed ``type_``,
    each entity of its path and each exception an entity recorded) and return its
    JSON for ``details`` (as :meth:`TraceSummary.details` writes it)."""
    service, path, inferred, impacting = cause
    as_int = 1 if inferred else 0
    any_remote = 0
    for step in path:
        if step[2]:
            any_remote = 1
            break
    cat, level, names, types = self.rc_cat, self.rc_level, self.rc_name, self.rc_type
    messages, remotes, inferreds = self.rc_message, self.rc_remote, self.rc_inferred
    coverages = self.rc_coverage
    cat.append(category)
    level.append(0)
    names.append(name)
    types.append(type_)
    messages.append("")
    remotes.append(any_remote)
    inferreds.append(as_int)
    coverages.append((path[-1][3] or 0.0) if path else 0.0)
    steps: list[list[Any]] = []
    for step_name, exceptions, remote, coverage in path:
        step_remote = 1 if remote else 0
        cat.append(category)
        level.append(1)
        names.append(step_name)
        types.append("")
        messages.append("")
        remotes.append(step_remote)
        inferreds.append(as_int)
        coverages.append(coverage or 0.0)
        for kind, message in exceptions:
            cat.append(category)
            level.append(2)
            names.append(kind)
            types.append("")
            messages.append(message)
            remotes.append(step_remote)
            inferreds.append(0)
            coverages.append(0.0)
        steps.append(
            [
                step_name,
                [list(x) for x in exceptions] if exceptions else [],
                step_remote,
                coverage,
            ]
        )
    return [service, as_int, 1 if impacting else 0, steps]
