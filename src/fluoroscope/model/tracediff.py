"""Two traces aligned entry by entry. Pure; thread-safe.

Contract. Each entity gets a path: the (service, name, operation) of every entity from
its root down to itself, each step numbered by its rank among same-keyed siblings in
start order (so the second DynamoDB GetItem of a request matches the other trace's
second). Entities with equal paths are matched; the rest are present in one trace
only. For each matched pair: both durations, the difference (b - a), and both critical
times (:mod:`fluoroscope.model.critpath`). Over entry keys (service, name,
operation): the critical time each trace spends in it and the difference - the
critical-path difference. ``similarity`` is matched / all distinct paths; below
:data:`UNRELATED` the traces are said to be of unrelated shapes (the answer still
lists what little matches). At most ``limit`` rows of each list are returned, largest
differences first, with the totals stated, so a trace of 10,000 entries gives a
bounded answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from fluoroscope.model.critpath import MAX_DEPTH, CriticalPath, Span, critical_path

__all__ = ["UNRELATED", "Aligned", "Comparison", "KeyDelta", "compare_traces", "entity_paths"]

UNRELATED = 0.2
Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class Aligned:
    """One path, with its entity in each trace (None where absent)."""

    path: tuple[str, ...]
    key: Key
    depth: int
    a_id: str | None
    b_id: str | None
    a_duration: float | None
    b_duration: float | None
    a_critical: float
    b_critical: float

    @property
    def delta(self) -> float | None:
        if self.a_duration is None or self.b_duration is None:
            return None
        return self.b_duration - self.a_duration


@dataclass(frozen=True, slots=True)
class KeyDelta:
    """The critical time each trace spends in one entry key."""

    key: Key
    a_critical: float
    b_critical: float

    @property
    def delta(self) -> float:
        return self.b_critical - self.a_critical


@dataclass(slots=True)
class Comparison:
    a_duration: float
    b_duration: float
    matched: list[Aligned] = field(default_factory=list)
    only_a: list[Aligned] = field(default_factory=list)
    only_b: list[Aligned] = field(default_factory=list)
    critical: list[KeyDelta] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # matched, only_a, only_b (all)
    similarity: float = 1.0

    @property
    def unrelated(self) -> bool:
        return self.similarity < UNRELATED


def _label(key: Key) -> str:
    service, name, operation = key
    text = name if not service or service == name else f"{service} > {name}"
    return f"{text} ({operation})" if operation else text


def entity_paths(spans: Sequence[Span]) -> dict[tuple[str, ...], tuple[Span, Key]]:
    """Each entity's path (module doc) -> (the entity, its entry key)."""
    by_id = {s.id: s for s in spans}
    children: dict[str, list[Span]] = {}
    for s in by_id.values():
        parent = s.parent_id if s.parent_id in by_id and s.parent_id != s.id else ""
        children.setdefault(parent, []).append(s)
    out: dict[tuple[str, ...], tuple[Span, Key]] = {}
    stack: list[tuple[str, tuple[str, ...], str, int]] = [("", (), "", 0)]
    while stack:
        parent, path, svc, depth = stack.pop()
        if depth > MAX_DEPTH:
            continue
        seen: dict[Key, int] = {}
        for s in sorted(children.get(parent, []), key=lambda c: (c.start, c.id)):
            own = s.name if s.is_segment else svc
            key = (own, s.name, s.operation)
            rank = seen[key] = seen.get(key, 0) + 1
            step = _label(key) + (f" #{rank}" if rank > 1 else "")
            out[(*path, step)] = (s, key)
            stack.append((s.id, (*path, step), own, depth + 1))
    return out


def compare_traces(a: Sequence[Span], b: Sequence[Span], *, limit: int = 500) -> Comparison:
    """``a`` against ``b`` (module doc)."""
    cpa, cpb = critical_path(a), critical_path(b)
    pa, pb = entity_paths(a), entity_paths(b)
    crit_a = {e.id: e.critical for e in cpa.entries}
    crit_b = {e.id: e.critical for e in cpb.entries}

    def duration(s: Span, cp: CriticalPath) -> float:
        return max((cp.end if s.end is None else s.end) - s.start, 0.0)

    rows: list[Aligned] = []
    for path in sorted(pa.keys() | pb.keys()):
        sa, ka = pa.get(path, (None, None))
        sb, kb = pb.get(path, (None, None))
        key = ka or kb
        assert key is not None
        rows.append(
            Aligned(
                path, key, len(path) - 1,
                sa.id if sa else None, sb.id if sb else None,
                duration(sa, cpa) if sa else None, duration(sb, cpb) if sb else None,
                crit_a.get(sa.id, 0.0) if sa else 0.0, crit_b.get(sb.id, 0.0) if sb else 0.0,
            )
        )  # fmt: skip
    matched = [r for r in rows if r.a_id and r.b_id]
    only_a = [r for r in rows if r.a_id and not r.b_id]
    only_b = [r for r in rows if r.b_id and not r.a_id]
    per_key: dict[Key, list[float]] = {}
    for e in cpa.entries:
        per_key.setdefault((e.service, e.name, e.operation), [0.0, 0.0])[0] += e.critical
    for e in cpb.entries:
        per_key.setdefault((e.service, e.name, e.operation), [0.0, 0.0])[1] += e.critical
    critical = sorted(
        (KeyDelta(k, v[0], v[1]) for k, v in per_key.items()),
        key=lambda d: (-abs(d.delta), d.key),
    )
    matched.sort(key=lambda r: (-abs(r.delta or 0.0), r.path))
    only_a.sort(key=lambda r: (-(r.a_duration or 0.0), r.path))
    only_b.sort(key=lambda r: (-(r.b_duration or 0.0), r.path))
    return Comparison(
        cpa.duration,
        cpb.duration,
        matched[:limit],
        only_a[:limit],
        only_b[:limit],
        critical[:limit],
        {"matched": len(matched), "only_a": len(only_a), "only_b": len(only_b)},
        len(matched) / len(rows) if rows else 1.0,
    )
