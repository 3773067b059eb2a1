"""A trace's summary row from its state: services, edges, annotations, root causes.

:func:`summarize` appends one row to :class:`~fluoroscope.model.summarycolumns.SummaryColumns`
from a :class:`~fluoroscope.model.tracestate.TraceState`, every list in canonical order
(services by their segments' start, then id; inferred services by their call's start;
annotation values by type, then value; root causes by their entity's end), so a trace's
summary does not depend on the order its documents arrived in. Pure; called once per
changed trace per batch, the largest single part of ingest's work.
"""

from __future__ import annotations

from bisect import insort
from typing import TYPE_CHECKING, Any, Final

from fluoroscope.model.entityrecords import NO_HTTP, Annotations, Edge, Exceptions
from fluoroscope.model.inference import ERROR, FAULT, THROTTLE, NodeId
from fluoroscope.model.rootcause import root_causes
from fluoroscope.model.summary import AnnotationValue
from fluoroscope.model.summarycolumns import SummaryColumns

if TYPE_CHECKING:
    from fluoroscope.model.tracestate import TraceState

__all__ = ["summarize"]

_INF: Final = float("inf")


def _annotation_order(pair: tuple[AnnotationValue, list[int]]) -> tuple[str, AnnotationValue]:
    """Canonical order of one key's annotation values: by type, then value."""
    return type(pair[0]).__name__, pair[0]


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
    root_id = state.root()
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
        url, status, method, agent, client_ip = NO_HTTP
    start = state.min_start if state.min_start != inf else float(state.ts)
    end = max(state.max_end, start)
    duration = end - start
    cause_json: list[list[list[Any]]] = []
    for category, found_causes in enumerate(root_causes(state, index, root_id)):
        group: list[list[Any]] = []
        for cause in found_causes:
            at = base + cause[0]
            group.append(out.add_cause(category, cause, names[at], types[at]))
        cause_json.append(group)
    out.end_row(
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
