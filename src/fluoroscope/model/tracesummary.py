"""A trace's summary row from its state: services, edges, annotations, root causes.

:func:`summarize` appends one row to :class:`~fluoroscope.model.summarycolumns.SummaryColumns`
from a :class:`~fluoroscope.model.tracestate.TraceState`, every list in canonical order
(services by their segments' start, then id; inferred services by their call's start;
annotation values by type, then value; root causes by their entity's end), so a trace's
summary does not depend on the order its documents arrived in. Pure but for one thing:
a segment whose parent is known drops what it kept of its http block (it is never the
root again); called once per changed trace per
batch, the largest single part of ingest's work. Shaped for mypyc: each of the trace's
records is visited once here and once in :func:`~fluoroscope.model.rootcause.root_causes`,
and few objects are made that the row does not keep (``tests/model/test_summary_unchanged.py``
holds the rows to those the earlier code made).
"""

from __future__ import annotations

from bisect import insort
from typing import TYPE_CHECKING, Any, Final

from fluoroscope.model.entityrecords import (
    NO_HTTP,
    Annotations,
    Downstream,
    Exceptions,
    SegmentRecord,
)
from fluoroscope.model.inference import ERROR, FAULT, THROTTLE, NodeId
from fluoroscope.model.rootcause import Cause, root_causes
from fluoroscope.model.summary import AnnotationValue
from fluoroscope.model.summarycolumns import SummaryColumns

if TYPE_CHECKING:
    from fluoroscope.model.tracestate import TraceState

__all__ = ["summarize"]

_INF: Final = float("inf")

_Call = tuple[NodeId, NodeId, int, float]
"""A call between two nodes of the trace, as its edge row takes it: caller, callee,
outcome bits, elapsed time (no Outcome tuple built for the records' fields)."""


def _service_of(state: TraceState, eid: str, index: dict[NodeId, int]) -> int:
    """The index in ``index`` of the service owning entity ``eid``, -1 if unknown."""
    owner = state.owner(eid)
    return index[state.segments[owner].node] if owner is not None else -1


def _annotate(
    annotations: dict[str, list[tuple[AnnotationValue, list[int]]]],
    flat: Annotations,
    where: int,
) -> None:
    """Add one entity's annotations (owned by service ``where``, -1 if unknown) to
    ``annotations``: key -> [(value, sorted service indices)], a value once per key and
    type. Values match as a dict keyed by (key, type, value) matched them: same type,
    and the same object or equal (a key holds one to three values: a scan, not a
    tuple and a hash per item)."""
    for at in range(0, len(flat), 2):
        key: str = flat[at]
        value: AnnotationValue = flat[at + 1]
        pairs = annotations.get(key)
        if pairs is None:
            annotations[key] = [(value, [where] if where >= 0 else [])]
            continue
        kind = type(value)
        for seen, ids in pairs:
            if type(seen) is kind and (seen is value or seen == value):
                if where >= 0 and where not in ids:
                    insort(ids, where)
                break
        else:
            pairs.append((value, [where] if where >= 0 else []))


def summarize(state: TraceState, out: SummaryColumns) -> None:
    """Append the trace's summary as of now to ``out``: one row holding what a
    :class:`~fluoroscope.model.summary.TraceSummary` would (bumps nothing; the
    caller sets ``revision``)."""
    # Once per changed trace per batch, the largest part of ingest's work: plain
    # loops writing straight into the columns, no objects per service or edge, each
    # of the trace's records visited once here (and once more for root causes).
    inf = _INF
    segments = state.segments
    subs = state.subs
    names, types = out.service_names, out.service_types
    f_bits, f_root, f_inferred = out.svc_bits, out.svc_root, out.svc_inferred
    f_min, f_max = out.svc_min_rt, out.svc_max_rt
    base = len(names)
    accounts: list[str] = []  # per service of this trace
    index: dict[NodeId, int] = {}
    root_id: str | None = None
    root: SegmentRecord | None = None
    entry = -1
    users: dict[str, list[int]] = {}
    arns: list[str] = []
    instances: list[str] = []
    zones: list[str] = []
    any_bits = 0
    partial = False
    # annotations: key -> [(value, sorted service indices)] (see _annotate)
    annotations: dict[str, list[tuple[AnnotationValue, list[int]]]] = {}
    # exceptions, with their canonical order (start, then id)
    failed: list[tuple[float, str, int, Exceptions]] = []
    calls: list[_Call] = []  # between two nodes of the trace
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
            out.new_service(node.name, node.type)
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
        # the root: of the segments whose parent is not known, the first in canonical
        # order; a segment whose parent is known is never the root again, and drops
        # what it kept of its http block
        parent = seg.parent_id
        if parent and (parent in segments or parent in subs):
            if seg.http is not None:
                seg.http = None
        elif root is None and seg.start < inf:
            root_id, root = sid, seg
            entry = idx
            f_root[at] = 1
        if seg.annotations:
            _annotate(annotations, seg.annotations, idx)
        if seg.exceptions:
            failed.append((seg.start, sid, idx, seg.exceptions))
        called = seg.called
        if called is not None:
            calls.append((called.caller, called.node, called.bits, called.end - called.start))
        user = seg.user
        if user:
            found = users.get(user)
            if found is None:
                users[user] = [idx]
            elif idx not in found:
                insort(found, idx)
        if seg.resource_arn and seg.resource_arn not in arns:
            arns.append(seg.resource_arn)
        if seg.instance_id and seg.instance_id not in instances:
            instances.append(seg.instance_id)
        if seg.availability_zone and seg.availability_zone not in zones:
            zones.append(seg.availability_zone)
    # subsegments: inferred downstream calls, annotations and exceptions (their
    # owners' services are all numbered by now: a segment's)
    inferred: list[tuple[float, str, Downstream]] | None = None
    for did, sub in subs.items():
        c = sub.call
        if c is not None and c.inferred:
            if inferred is None:
                inferred = [(c.start, did, c)]
            else:
                inferred.append((c.start, did, c))
        if sub.annotations or sub.exceptions:
            where = _service_of(state, did, index)
            if sub.annotations:
                _annotate(annotations, sub.annotations, where)
            if sub.exceptions:
                failed.append((state.times_of(did)[0], did, where, sub.exceptions))
    if inferred is not None:
        if len(inferred) > 1:
            inferred.sort()  # canonical order: start, then id
        for _, _, call in inferred:
            node = call.node
            idx = index.get(node)
            if idx is None:
                idx = index[node] = len(accounts)
                accounts.append("")
                out.new_service(node.name, node.type)
            at = base + idx
            f_inferred[at] = 1
            assert call.caller is not None  # inferred once its caller was known
            bits = call.bits
            f_bits[at] |= bits
            any_bits |= bits
            elapsed = call.end - call.start
            calls.append((call.caller, node, bits, elapsed))
            if elapsed < f_min[at]:
                f_min[at] = elapsed
            if elapsed > f_max[at]:
                f_max[at] = elapsed
    count = len(accounts)
    out.service_accounts.extend(accounts)
    for at in range(base, base + count):
        if f_min[at] == inf:
            f_min[at] = 0.0
    if calls:
        _write_edges(out, calls, index)
    if failed:
        if len(failed) > 1:
            failed.sort()  # canonical order (ids differ: an entity's are in one record)
        for _, _, where, found_exceptions in failed:
            for kind, message in found_exceptions:
                out.exc_types.append(kind)
                out.exc_messages.append(message)
                out.exc_services.append(where)

    # written with the keys sorted, each key's values by type, then value
    annotation_json: list[list[Any]] = []
    if annotations:
        for key in sorted(annotations) if len(annotations) > 1 else annotations:
            pairs = annotations[key]
            if len(pairs) > 1:
                # (type name, value) decorated: equal ones never meet (one pair per key,
                # type and value), so the ids are never compared and the order is the
                # one sorting by that key makes
                decorated = [(type(value).__name__, value, ids) for value, ids in pairs]
                decorated.sort()
                for _, value, ids in decorated:
                    annotation_json.append([key, value, ids])
                    out.add_annotation(key, value)
            else:
                value, ids = pairs[0]
                annotation_json.append([key, value, ids])
                out.add_annotation(key, value)
    user_ids: list[list[Any]] = []
    if users:
        for name, ids in users.items():
            user_ids.append([name, ids])
        out.users.extend(users)
    if arns:
        out.resource_arns.extend(arns)
    if instances:
        out.instance_ids.extend(instances)
    if zones:
        out.zones.extend(zones)

    if root is not None and root.http is not None:
        url, status, method, agent, client_ip = root.http
    else:
        url, status, method, agent, client_ip = NO_HTTP
    start = state.min_start if state.min_start != inf else float(state.ts)
    end = max(state.max_end, start)
    duration = end - start
    fault, error, slowest = root_causes(state, index, root_id)
    scalars = (
        state.ts, state.trace_id, state.revision, start, start + duration, duration,
        (root.end - root.start) if root is not None and not root.in_progress else -1.0,
        1 if root is not None and root.bits & FAULT else 0,
        1 if root is not None and root.bits & ERROR else 0,
        1 if any_bits & THROTTLE else 0,
        1 if partial or root is None else 0,
        method, url, status, agent, client_ip,
        names[base + entry] if entry >= 0 else "",
        types[base + entry] if entry >= 0 else "",
        count,
    )  # fmt: skip
    if out.slim:
        # only the parts the details column keeps, each when not empty (see
        # SummaryColumns): no list per service, nor a dict of parts left out
        kept: dict[str, Any] = {}
        if entry >= 0:
            kept["e"] = entry
        if annotation_json:
            kept["a"] = annotation_json
        if user_ids:
            kept["u"] = user_ids
        if fault or error or slowest:
            kept["rc"] = [
                _write_causes(out, 0, fault, base) if fault else [],
                _write_causes(out, 1, error, base) if error else [],
                _write_causes(out, 2, slowest, base) if slowest else [],
            ]
        out.end_slim_row(scalars, kept)
        return
    out.end_row(
        scalars,
        {
            "s": [[names[base + i], types[base + i], accounts[i]] for i in range(count)],
            "e": entry if entry >= 0 else None,
            "a": annotation_json,
            "u": user_ids,
            "r": arns,
            "i": instances,
            "z": zones,
            "rc": [
                _write_causes(out, 0, fault, base) if fault else [],
                _write_causes(out, 1, error, base) if error else [],
                _write_causes(out, 2, slowest, base) if slowest else [],
            ],
        },
    )


def _write_edges(out: SummaryColumns, calls: list[_Call], index: dict[NodeId, int]) -> None:
    """A row per pair of the services calls went between (skipping calls of a caller
    whose segment is unknown), by the services' indices: the OR of the calls' outcome
    bits, their least and most time."""
    src_col, dst_col, bits_col = out.edge_src, out.edge_dst, out.edge_bits
    low_col, high_col = out.edge_min_rt, out.edge_max_rt
    if len(calls) == 1:
        src, dst, bits, elapsed = calls[0]
        source = index.get(src)
        dest = index.get(dst)
        if source is not None and dest is not None:
            src_col.append(source + 1)
            dst_col.append(dest + 1)
            bits_col.append(bits)
            low_col.append(elapsed)
            high_col.append(elapsed)
        return
    # (pair, bits, time) sorted, then each pair's run folded in that order: what sorting
    # (source, dest, bits, time, time) tuples and merging neighbours made, fewer objects
    # (a pair is source << 32 | dest: services number far fewer than 2**32)
    edges: list[tuple[int, int, float]] = []
    for src, dst, bits, elapsed in calls:
        source = index.get(src)
        dest = index.get(dst)
        if source is not None and dest is not None:
            edges.append(((source + 1) << 32 | (dest + 1), bits, elapsed))
    if not edges:
        return
    if len(edges) > 1:
        edges.sort()
    pair, bits, low = edges[0]
    high = low
    for at in range(1, len(edges)):
        next_pair, next_bits, elapsed = edges[at]
        if next_pair == pair:
            bits |= next_bits
            if elapsed < low:  # min() and max() keep the first of equals, as here
                low = elapsed
            if elapsed > high:
                high = elapsed
            continue
        src_col.append(pair >> 32)
        dst_col.append(pair & 0xFFFFFFFF)
        bits_col.append(bits)
        low_col.append(low)
        high_col.append(high)
        pair, bits, low = next_pair, next_bits, elapsed
        high = low
    src_col.append(pair >> 32)
    dst_col.append(pair & 0xFFFFFFFF)
    bits_col.append(bits)
    low_col.append(low)
    high_col.append(high)


def _write_causes(out: SummaryColumns, category: int, causes: list[Cause], base: int) -> list[Any]:
    """Append one category's root causes to ``out`` and return their JSON."""
    names, types = out.service_names, out.service_types
    group: list[Any] = []
    for cause in causes:
        at = base + cause[0]
        group.append(out.add_cause(category, cause, names[at], types[at]))
    return group
