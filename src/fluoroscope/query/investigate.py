"""Investigation of stored traces: one trace's critical path, two traces compared, the
critical path across a filtered set (computed in the engine: ``fluoroscope.store.critpath``).

Reads each trace's stored entities (children excluded, as stored; the inferred
segments the server adds on read are not entities and take no part) and applies the
pure rules of :mod:`fluoroscope.model.critpath` and :mod:`fluoroscope.model.tracediff`.
Blocking (store reads): call from a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fluoroscope.model.critpath import CriticalPath, Span, critical_path
from fluoroscope.model.errors import InvalidRequest
from fluoroscope.model.tracediff import Comparison, compare_traces
from fluoroscope.query.compile import Condition, both, sample_condition
from fluoroscope.store.store import EntityRow, Store

__all__ = [
    "MAX_ENTITIES", "MAX_TRACES", "PathShare", "SetPath", "compare", "critical_path_across",
    "spans_of", "trace_critical_path",
]  # fmt: skip

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


MAX_TRACES = 20_000
"""Above this many matching traces, the across-traces critical path reads a stable
sample of about this many (by trace id hash) and says so."""


@dataclass(frozen=True, slots=True)
class PathShare:
    """One entry key's part of the critical path over a set of traces (seconds)."""

    service: str
    name: str
    operation: str
    traces: int
    mean: float
    at_p50: float
    at_p99: float


@dataclass(slots=True)
class SetPath:
    """The critical path over a set: per key, and the set's figures."""

    entries: list[PathShare]
    matched: int  # traces meeting the filter in the window
    analysed: int  # traces whose path was walked (after sampling and size limits)
    p50: float
    p99: float
    sample_rate: float  # 1.0 when every matching trace was read
    message: str = ""


def critical_path_across(
    store: Store,
    start: float,
    end: float,
    condition: Condition | None,
    *,
    slowest_percent: float = 100.0,
    max_traces: int = MAX_TRACES,
) -> SetPath:
    """The critical path of the traces started in ``[start, end]`` meeting
    ``condition`` (or only their slowest ``slowest_percent`` %), computed in the engine.
    Bounded: past ``max_traces`` matching traces a stable sample is read (stated)."""
    if not 0.0 < slowest_percent <= 100.0:
        raise InvalidRequest("the slowest share must be a percentage in (0, 100]")
    where = condition or Condition("1", {})
    matched = store.count_traces(start, end, where.sql, where.params)
    rate = 1.0
    notes = []
    if matched > max_traces:
        rate = max_traces / matched
        where = both(where, sample_condition(max(rate, 0.0001))) or where
        notes.append(
            f"{matched} traces match; a stable sample of about {rate:.1%} of them "
            f"(~{max_traces}) was analysed."
        )
    rows = store.critical_path_stats(
        start, end, where.sql, where.params, slowest=1.0 - slowest_percent / 100.0
    )
    analysed = int(rows[0]["set_traces"]) if rows else 0
    entries = [
        PathShare(
            r["service"], r["name"], r["operation"], int(r["traces"]),
            float(r["mean"]), float(r["at_p50"] or 0.0), float(r["at_p99"] or 0.0),
        )
        for r in rows
    ]  # fmt: skip
    return SetPath(
        entries,
        matched,
        analysed,
        float(rows[0]["p50"]) if rows else 0.0,
        float(rows[0]["p99"]) if rows else 0.0,
        rate,
        " ".join(notes),
    )
