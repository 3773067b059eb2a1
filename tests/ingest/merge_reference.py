"""How ingest merged one document into its trace and made its span rows at commit
1a7407b, before each entity's fields were read once and handed on: ``Assembler._explode``
with ``TraceState.apply`` and ``_segment`` and what they called (``status_of``,
``downstream_node``, ``http_facts``, ``stored_document``), each reading the fields it
needed from the entity itself. The reference ``test_merge_unchanged.py`` holds today's
merge to, row for row and state for state. Frozen: never edited to follow the merge (a
change of what merging makes changes the test, on purpose, not this copy). Drop it with
the test once the comparison has served.

Today's code is used for what that change left alone: the resolution of pending calls
and edges (``TraceState._settle``), the records, the shared nodes, the outcome bits."""

from __future__ import annotations

from collections.abc import Mapping
from sys import intern
from typing import Any, Final

import orjson

from fluoroscope.model.entityrecords import (
    Annotations,
    Downstream,
    Edge,
    Exceptions,
    Http,
    PendingEdge,
    SegmentRecord,
    Sub,
    segment_node,
    shared,
    shared_node,
)
from fluoroscope.model.inference import AWS_SERVICES, NodeId, outcome_of
from fluoroscope.model.stats import CLIENT_TYPE, Outcome, StatsSink
from fluoroscope.model.tracestate import TraceState
from fluoroscope.store.batch import IN_PROGRESS_FLAG

__all__ = ["Row", "explode"]

_MAX_EXCEPTIONS: Final = 16

Row = tuple[Any, ...]
"""A span row: ts, trace id, id, parent id, is_segment, name, origin, namespace, start,
end, flags, http status, the stored document's JSON."""


def explode(doc: dict[str, Any], state: TraceState, stats: StatsSink) -> list[Row]:
    """``Assembler._explode``: the rows of ``doc``'s entities (depth first), each merged
    into ``state``."""
    rows: list[Row] = []
    is_segment = doc.get("type") != "subsegment"
    parent: str = doc.get("parent_id") or ""
    stack: list[tuple[dict[str, Any], str, bool]] = [(doc, parent, is_segment)]
    while stack:
        entity, parent_id, seg = stack.pop()
        children = entity.get("subsegments")
        if children:
            eid = entity["id"]
            for child in reversed(children):
                stack.append((child, eid, False))
        status = _status_of(entity)
        bits = outcome_of(entity, status)
        _apply(state, entity, parent_id, seg, stats, bits)
        end: Any = entity.get("end_time")
        start: Any = entity["start_time"]
        namespace = entity.get("namespace")
        origin = entity.get("origin")
        complete = end is not None and not entity.get("in_progress")
        rows.append(
            (
                state.ts,
                state.trace_id,
                entity["id"],
                parent_id,
                1 if seg else 0,
                entity["name"],
                origin if isinstance(origin, str) else "",
                namespace if isinstance(namespace, str) else "",
                float(start),
                float(end) if complete else 0.0,
                bits if complete else bits | IN_PROGRESS_FLAG,
                status,
                orjson.dumps(_stored_document(entity, state.trace_id, parent_id, seg, complete)),
            )
        )
    return rows


def _apply(
    state: TraceState,
    entity: dict[str, Any],
    parent_id: str,
    is_segment: bool,
    stats: StatsSink | None,
    bits: int,
) -> None:
    """``TraceState.apply``."""
    eid: str = entity["id"]
    start = float(entity["start_time"])
    end_raw = entity.get("end_time")
    in_progress = end_raw is None or bool(entity.get("in_progress"))
    segments, subs = state.segments, state.subs
    old_segment = segments.get(eid)
    old_sub = subs.get(eid)
    counted = (old_segment is not None and not old_segment.in_progress) or (
        old_sub is not None and old_sub.complete
    )
    if in_progress and counted:
        return
    end = float(end_raw) if end_raw is not None else start
    if start < state.min_start:
        state.min_start = start
    if not in_progress and end > state.max_end:
        state.max_end = end
    annotations: Annotations = ()
    found: Any = entity.get("annotations")
    if found:
        flat: list[Any] = []
        for key, value in found.items():
            flat.append(key)
            flat.append(shared(value))
        annotations = tuple(flat)
    exceptions: Exceptions = ()
    cause = entity.get("cause")
    if cause is not None and (type(cause) is dict or isinstance(cause, Mapping)):
        found = cause.get("exceptions")
        if isinstance(found, list):
            exceptions = tuple(
                (str(e.get("type") or ""), str(e.get("message") or ""))
                for e in found[:_MAX_EXCEPTIONS]
                if type(e) is dict or isinstance(e, Mapping)
            )
    if is_segment:
        if old_sub is not None:
            old_sub.annotations = old_sub.exceptions = ()
        segment = segments[eid] = _segment(
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
            shared(entity["name"]),
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
                stats.node(node, done, not parent_id)
                if not parent_id:
                    stats.edge(segment_node(node.name, CLIENT_TYPE), node, done)
            if parent_id:
                waiting = state.waiting
                if waiting is None:
                    state.waiting = {parent_id: [PendingEdge(eid, node, done)]}
                else:
                    pending = waiting.get(parent_id)
                    if pending is None:
                        waiting[parent_id] = [PendingEdge(eid, node, done)]
                    else:
                        pending.append(PendingEdge(eid, node, done))
                state._settle(stats)
                return
        else:
            called = _downstream_node(entity)
            if called is not None:
                sub.call = Downstream(shared_node(called), Outcome(start, end, bits))
                if state.unowned is None:
                    state.unowned = [eid]
                else:
                    state.unowned.append(eid)
                state._settle(stats)
                return
    if eid in state.watch and (state.unowned or state.waiting):
        state._settle(stats)


def _segment(
    entity: dict[str, Any],
    parent_id: str,
    start: float,
    end: float,
    in_progress: bool,
    bits: int,
    annotations: Annotations,
    exceptions: Exceptions,
    edge: Edge | None,
) -> SegmentRecord:
    """``TraceState._segment``."""
    origin = entity.get("origin")
    http = entity.get("http")
    if http is not None and type(http) is not dict:
        http = dict(http) if isinstance(http, Mapping) else None
    account_id = instance_id = availability_zone = ""
    aws = entity.get("aws")
    if aws is not None and (type(aws) is dict or isinstance(aws, Mapping)):
        account_id = intern(str(aws.get("account_id") or ""))
        ec2 = aws.get("ec2")
        if ec2 is not None and (type(ec2) is dict or isinstance(ec2, Mapping)):
            instance_id = intern(str(ec2.get("instance_id") or ""))
            availability_zone = intern(str(ec2.get("availability_zone") or ""))
    user = entity.get("user")
    arn = entity.get("resource_arn")
    return SegmentRecord(
        segment_node(entity["name"], origin if isinstance(origin, str) else ""),
        parent_id,
        start,
        end,
        in_progress,
        bits,
        _http_facts(http) if http else None,
        shared(user) if isinstance(user, str) else "",
        shared(arn) if isinstance(arn, str) else "",
        account_id,
        instance_id,
        availability_zone,
        annotations,
        exceptions,
        edge,
    )


def _http_facts(http: dict[str, Any]) -> Http:
    """``entityrecords.http_facts``."""
    request = http.get("request")
    if request is None or not (type(request) is dict or isinstance(request, Mapping)):
        request = {}
    response = http.get("response")
    if response is None or not (type(response) is dict or isinstance(response, Mapping)):
        response = {}
    status = response.get("status")
    if not (type(status) is int or (isinstance(status, int) and not isinstance(status, bool))):
        status = 0
    url = request.get("url")
    method = request.get("method")
    agent = request.get("user_agent")
    client_ip = request.get("client_ip")
    return (
        url if type(url) is str else str(url or ""),
        status,
        intern(method) if type(method) is str else str(method or ""),
        intern(agent) if type(agent) is str else str(agent or ""),
        client_ip if type(client_ip) is str else str(client_ip or ""),
    )


def _resource_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        return ""
    if field == "queue_url":
        return value.rstrip("/").rsplit("/", 1)[-1]
    if field in ("topic_arn", "state_machine_arn") or value.startswith("arn:"):
        return value.rsplit(":", 1)[-1]
    return value


def _downstream_node(sub: dict[str, Any]) -> NodeId | None:
    """``inference.downstream_node``."""
    namespace = sub.get("namespace")
    name = sub.get("name")
    if not isinstance(name, str):
        return None
    if namespace == "aws":
        key = name.lower().replace(" ", "")
        service = AWS_SERVICES.get(key)
        aws = sub.get("aws")
        if service is None:
            display = name if name[:1].isupper() else name.capitalize()
            return NodeId(display, f"AWS::{display}")
        if (type(aws) is dict or isinstance(aws, Mapping)) and service.resource_field:
            resource = _resource_name(service.resource_field, aws.get(service.resource_field))
            if not resource and service.resource_field == "table_name":
                names = aws.get("table_names") or aws.get("resource_names")
                if isinstance(names, list) and len(names) == 1:
                    resource = _resource_name("table_name", names[0])
            if resource:
                return NodeId(resource, service.resource_type)
        return NodeId(service.display, f"AWS::{service.display}")
    if "sql" in sub:
        return NodeId(name, "Database::SQL")
    if namespace == "remote":
        return NodeId(name, "remote")
    if namespace != "local":
        http = sub.get("http")
        if http is not None and (type(http) is dict or isinstance(http, Mapping)):
            return NodeId(name, "remote")
    return None


def _status_of(entity: dict[str, Any]) -> int:
    """``inference.status_of``."""
    http = entity.get("http")
    if http is None or not (type(http) is dict or isinstance(http, Mapping)):
        return 0
    response = http.get("response")
    if response is None or not (type(response) is dict or isinstance(response, Mapping)):
        return 0
    status = response.get("status")
    if type(status) is int or (isinstance(status, int) and not isinstance(status, bool)):
        return status
    return 0


def _stored_document(
    own: dict[str, Any], trace_id: str, parent_id: str, is_segment: bool, complete: bool
) -> dict[str, Any]:
    """``spandoc.stored_document``."""
    kept = dict(own)
    del kept["id"]
    if kept.get("subsegments"):
        del kept["subsegments"]
    if type(kept.get("start_time")) is float:
        del kept["start_time"]
    if complete:
        end = kept.get("end_time")
        if type(end) is float and end != 0.0:
            del kept["end_time"]
    if is_segment:
        if kept.get("trace_id") == trace_id:
            del kept["trace_id"]
        if parent_id and kept.get("parent_id") == parent_id:
            del kept["parent_id"]
    return kept
