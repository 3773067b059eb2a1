"""Investigation of stored traces: one trace's critical path, two traces compared.

Reads each trace's stored entities (children excluded, as stored; the inferred
segments the server adds on read are not entities and take no part) and applies the
pure rules of :mod:`fluoroscope.model.critpath` and :mod:`fluoroscope.model.tracediff`.
Blocking (store reads): call from a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from fluoroscope.model.critpath import CriticalPath, Span, critical_path
from fluoroscope.model.errors import InvalidRequest
from fluoroscope.model.tracediff import Comparison, compare_traces
from fluoroscope.store.store import EntityRow, Store

__all__ = ["MAX_ENTITIES", "compare", "spans_of", "trace_critical_path"]

MAX_ENTITIES = 20_000
"""Traces with more entities are refused by these tools (stated in the error)."""


def spans_of(rows: Sequence[EntityRow]) -> list[Span]:
    """The spans of one trace's stored entity rows."""
    out: list[Span] = []
    for row in rows:
        doc = row.document
        start = doc.get("start_time")
        end = doc.get("end_time")
        aws = doc.get("aws")
        operation = ""
        if not row.is_segment and doc.get("namespace") == "aws" and isinstance(aws, dict):
            op = aws.get("operation")
            operation = op if isinstance(op, str) else ""
        out.append(
            Span(
                row.id,
                row.parent_id,
                float(start) if isinstance(start, int | float) else 0.0,
                None
                if doc.get("in_progress") is True or not isinstance(end, int | float)
                else float(end),
                str(doc.get("name", "")),
                row.is_segment,
                operation,
            )
        )
    return out


def _load(store: Store, trace_ids: Sequence[str]) -> dict[str, list[Span]]:
    rows = store.entities(trace_ids)
    for tid in trace_ids:
        if tid not in rows:
            raise InvalidRequest(f"there is no trace {tid}")
        if len(rows[tid]) > MAX_ENTITIES:
            raise InvalidRequest(
                f"trace {tid} has {len(rows[tid])} entities; at most {MAX_ENTITIES} are analysed"
            )
    return {tid: spans_of(r) for tid, r in rows.items()}


def trace_critical_path(store: Store, trace_id: str) -> CriticalPath:
    """The critical path of a stored trace (:class:`InvalidRequest` if unknown)."""
    return critical_path(_load(store, [trace_id])[trace_id])


def compare(store: Store, a: str, b: str, limit: int = 500) -> Comparison:
    """Trace ``a`` against trace ``b``."""
    spans = _load(store, [a, b])
    return compare_traces(spans[a], spans[b], limit=limit)
