"""Generated traces for tests of ingest's graph statistics: nested subsegments,
AWS/HTTP/SQL downstream calls answered or not by an instrumented callee, in-progress
entities, streamed subsegments, documents shuffled into several batches (hypothesis)."""

from __future__ import annotations

import itertools
import time
from typing import Any

from hypothesis import strategies as st

from fluoroscope.model.graph import ServiceGraph, Statistics
from fluoroscope.model.ids import new_entity_id, new_trace_id

__all__ = ["NOW", "call_trace", "fleet", "graph_shape"]

NOW = float(int(time.time()) // 60 * 60 - 600)  # a minute boundary, 10 minutes ago

_status = st.sampled_from([None, 200, 200, 404, 429, 500, 503])
_aws_call = st.one_of(
    st.builds(lambda t: ("DynamoDB", {"table_name": t}), st.sampled_from(["users", "orders"])),
    st.builds(lambda: ("dynamodb", {"table_names": ["arn:aws:dynamodb:t/x"]})),
    st.builds(lambda b: ("S3", {"bucket_name": b, "request_id": "r"}), st.sampled_from(["b1"])),
    st.builds(lambda: ("SQS", {"queue_url": "https://sqs/123/jobs/"})),
    st.builds(lambda: ("lambda", {"function_name": "arn:aws:lambda:us:1:function:fn"})),
    st.builds(lambda: ("Ssm", {"operation": "GetParameter"})),
    st.builds(lambda: ("weird thing", {})),
)


class _Builder:
    """Draws one trace's documents."""

    def __init__(self, draw: st.DrawFn, trace_id: str, start: float) -> None:
        self.draw = draw
        self.trace_id = trace_id
        self.start = start
        self.docs: list[dict[str, Any]] = []

    def outcome(self, entity: dict[str, Any]) -> None:
        status = self.draw(_status)
        if status is not None:
            entity["http"] = {"response": {"status": status}}
        if self.draw(st.booleans()) and self.draw(st.booleans()):
            entity["fault"] = True

    def times(self, entity: dict[str, Any], start: float, in_progress_ok: bool = True) -> float:
        duration = self.draw(st.sampled_from([0.0004, 0.003, 0.02, 0.15, 1.2]))
        entity["start_time"] = start
        if in_progress_ok and self.draw(st.integers(0, 9)) == 0:
            entity["in_progress"] = True
        else:
            entity["end_time"] = start + duration
        return duration

    def subsegments(self, depth: int, start: float) -> list[dict[str, Any]]:
        subs: list[dict[str, Any]] = []
        for _ in range(self.draw(st.integers(0, 3 if depth < 2 else 1))):
            sub: dict[str, Any] = {"id": new_entity_id()}
            kind = self.draw(st.sampled_from(["local", "aws", "remote", "sql", "http"]))
            if kind == "aws":
                name, aws = self.draw(_aws_call)
                sub.update(name=name, namespace="aws", aws=aws)
            elif kind == "remote":
                sub.update(
                    name=self.draw(st.sampled_from(["api.example", "pay"])), namespace="remote"
                )
            elif kind == "sql":
                sub.update(name="db@host", sql={"url": "pg://db"})
            elif kind == "http":
                sub.update(name="cdn", http={"request": {"url": "http://cdn/x"}})
            else:
                sub.update(name=self.draw(st.sampled_from(["work", "parse"])), namespace="local")
            self.times(sub, start)
            self.outcome(sub)
            if kind == "local" and depth < 3:
                sub["subsegments"] = self.subsegments(depth + 1, start)
            elif kind in ("remote", "aws") and self.draw(st.booleans()):
                self.segment(sub["id"], start + 0.0001, depth + 1)  # an instrumented callee
            if not sub.get("subsegments"):
                sub.pop("subsegments", None)
            subs.append(sub)
        return subs

    def segment(self, parent_id: str | None, start: float, depth: int) -> None:
        name = self.draw(st.sampled_from(["api", "worker", "billing"]))
        seg: dict[str, Any] = {
            "id": new_entity_id(),
            "trace_id": self.trace_id,
            "name": name,
        }
        if self.draw(st.booleans()):
            seg["origin"] = "AWS::EC2::Instance"
        if parent_id:
            seg["parent_id"] = parent_id
        self.times(seg, start, in_progress_ok=depth > 0)
        self.outcome(seg)
        subs = self.subsegments(depth, start) if depth < 3 else []
        stream: bool = self.draw(st.booleans())
        if subs and stream:  # stream one subsegment on its own
            streamed = subs.pop()
            streamed.update(type="subsegment", trace_id=self.trace_id, parent_id=seg["id"])
            self.docs.append(streamed)
        if subs:
            seg["subsegments"] = subs
        self.docs.append(seg)


@st.composite
def fleet(
    draw: st.DrawFn, traces: int = 6, spread: float = 170.0, step: float = 1.0, batches: int = 4
) -> list[list[dict[str, Any]]]:
    """Up to ``traces`` traces' documents (the k-th begun ``spread`` seconds at most after
    :data:`NOW` + k ``step``: a small spread and no step put several in one id second),
    shuffled into up to ``batches`` batches."""
    docs: list[dict[str, Any]] = []
    for k in range(draw(st.integers(1, traces))):
        start = NOW + draw(st.floats(0, spread)) + k * step
        builder = _Builder(draw, new_trace_id(start), start)
        builder.segment(None, start, 0)
        docs += builder.docs
    order = draw(st.permutations(range(len(docs))))
    cuts = sorted(draw(st.lists(st.integers(0, len(docs)), max_size=batches - 1)))
    shuffled = [docs[i] for i in order]
    bounds = [0, *cuts, len(docs)]
    return [shuffled[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def call_trace(trace_id: str, start: float, *, fault: bool) -> list[dict[str, Any]]:
    """api calls billing over http: the caller's subsegment (until billing's segment
    arrives, the inferred node ``billing.internal``) and billing's segment."""
    call_id = new_entity_id()
    root: dict[str, Any] = {
        "id": new_entity_id(), "trace_id": trace_id, "name": "api", "start_time": start,
        "end_time": start + 0.5,
        "subsegments": [{"id": call_id, "name": "billing.internal", "namespace": "remote",
                         "start_time": start + 0.1, "end_time": start + 0.4,
                         "http": {"request": {"url": "http://billing/x"}}}],
    }  # fmt: skip
    callee: dict[str, Any] = {
        "id": new_entity_id(), "trace_id": trace_id, "parent_id": call_id, "name": "billing",
        "start_time": start + 0.12, "end_time": start + 0.38, "fault": fault,
    }  # fmt: skip
    return [root, callee]


def _counts(stats: Statistics | None) -> tuple[Any, ...] | None:
    if stats is None:
        return None
    return (
        stats.total, stats.ok, stats.errors, stats.throttles, stats.faults,
        round(stats.response_time, 9), tuple(stats.histogram),
    )  # fmt: skip


def graph_shape(graph: ServiceGraph) -> dict[tuple[str, str], Any]:
    """What two graphs must agree on: each node's flags and statistics, and its edges'."""
    nodes = graph.nodes
    return {
        (n.name, n.type): (
            n.root, n.inferred, n.client, _counts(n.statistics),
            sorted(
                ((nodes[e.target].name, nodes[e.target].type), _counts(e.statistics))
                for e in n.edges
            ),
        )
        for n in nodes
    }  # fmt: skip
