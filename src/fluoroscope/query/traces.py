"""Whole traces for BatchGetTraces: merged segment documents plus inferred segments.

Stored rows hold each entity without its children. :func:`assemble_trace` nests every
subsegment back under its parent (embedded and streamed alike, ordered by start time)
and adds, for each downstream call that no instrumented segment answered, the inferred
segment X-Ray would show (reference §2.11, §6.1; same node rule as the service graph).
Pure functions over caller-owned data; thread-safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any, Final

from fluoroscope.model.inference import downstream_node
from fluoroscope.model.summary import Trace
from fluoroscope.store.store import EntityRow, Store

__all__ = ["assemble_trace", "get_traces"]

_COPIED_TO_INFERRED: Final = ("aws", "http", "sql", "error", "fault", "throttle", "cause")


def _inferred_id(subsegment_id: str) -> str:
    return hashlib.blake2b(subsegment_id.encode(), digest_size=8).hexdigest()


def _start(doc: dict[str, Any]) -> float:
    value = doc.get("start_time")
    return float(value) if isinstance(value, int | float) else 0.0


def assemble_trace(trace_id: str, rows: Sequence[EntityRow]) -> Trace:
    """Rebuild ``trace_id``'s documents from its stored entity rows."""
    docs: dict[str, dict[str, Any]] = {}
    children: dict[str, list[dict[str, Any]]] = {}
    segments: list[dict[str, Any]] = []
    for row in rows:
        doc = dict(row.document)
        doc.pop("subsegments", None)
        docs[row.id] = doc
        if row.is_segment:
            segments.append(doc)
    orphans: list[dict[str, Any]] = []
    parented: set[str] = set()
    for row in rows:
        if row.is_segment:
            if row.parent_id:
                parented.add(row.parent_id)
            continue
        if row.parent_id in docs:
            children.setdefault(row.parent_id, []).append(docs[row.id])
        else:
            orphans.append(docs[row.id])
    for parent_id, kids in children.items():
        kids.sort(key=_start)
        docs[parent_id]["subsegments"] = kids

    inferred: list[dict[str, Any]] = []
    start = float("inf")
    end = 0.0
    for row in rows:
        doc = docs[row.id]
        s = _start(doc)
        e = doc.get("end_time")
        start = min(start, s)
        if isinstance(e, int | float):
            end = max(end, float(e))
        if row.is_segment or row.id in parented:
            continue
        node = downstream_node(doc)
        if node is None:
            continue
        synthetic: dict[str, Any] = {
            "id": _inferred_id(row.id),
            "name": node.name,
            "trace_id": trace_id,
            "parent_id": row.id,
            "start_time": doc.get("start_time"),
            "inferred": True,
            "origin": node.type,
        }
        if "end_time" in doc:
            synthetic["end_time"] = doc["end_time"]
        else:
            synthetic["in_progress"] = True
        for key in _COPIED_TO_INFERRED:
            if key in doc:
                synthetic[key] = doc[key]
        inferred.append(synthetic)

    segments.sort(key=_start)
    orphans.sort(key=_start)
    inferred.sort(key=_start)
    duration = max(end - start, 0.0) if start != float("inf") else 0.0
    return Trace(trace_id, duration, segments + orphans + inferred)


def get_traces(store: Store, trace_ids: Iterable[str]) -> tuple[list[Trace], list[str]]:
    """The traces found (in request order) and the ids not found. Blocking."""
    wanted = list(dict.fromkeys(trace_ids))
    rows = store.entities(wanted)
    found = [assemble_trace(tid, rows[tid]) for tid in wanted if tid in rows]
    missing = [tid for tid in wanted if tid not in rows]
    return found, missing
