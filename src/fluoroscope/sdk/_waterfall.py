"""Recorded entries as a tree, and that tree as a text waterfall (for test failures).

:class:`Entry` wraps one segment or subsegment document (as emitted) with its
children, parent, duration and self time (its duration not covered by any child's).
:func:`render` draws root entries as indented lines — start offset, duration, self
time, the entry, its failure flags — marking chosen entries ``>>`` and printing
their exception with the top of its stack. Past ``limit`` lines only the marked
entries and their ancestors are drawn, the rest counted. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

__all__ = ["DOWNSTREAM", "Entry", "render"]

DOWNSTREAM: Final = frozenset(("aws", "remote"))
"""Namespaces of calls to other services (their time is spent elsewhere)."""

_STACK_FRAMES: Final = 4


class Entry:
    """One segment or subsegment of a recorded trace.

    ``doc`` is the document as emitted; ``children`` are ordered by start time.
    Times are in seconds; an entry still in progress ends at its latest child.
    """

    __slots__ = ("children", "doc", "parent")

    def __init__(self, doc: dict[str, Any], parent: Entry | None) -> None:
        self.doc = doc
        self.parent = parent
        self.children = sorted(
            (Entry(child, self) for child in doc.get("subsegments", ()) if isinstance(child, dict)),
            key=lambda e: e.start,
        )

    # -- fields ----------------------------------------------------------------------

    @property
    def id(self) -> str:
        return str(self.doc.get("id", ""))

    @property
    def trace_id(self) -> str:
        top = self
        while top.parent is not None and "trace_id" not in top.doc:
            top = top.parent
        return str(top.doc.get("trace_id", ""))

    @property
    def name(self) -> str:
        return str(self.doc.get("name", ""))

    @property
    def namespace(self) -> str | None:
        value = self.doc.get("namespace")
        return value if isinstance(value, str) else None

    @property
    def independent(self) -> bool:
        """Sent as a document of its own (a subsegment streamed or closed late)."""
        return self.doc.get("type") == "subsegment"

    @property
    def operation(self) -> str | None:
        aws = self.doc.get("aws")
        value = aws.get("operation") if isinstance(aws, dict) else None
        return value if isinstance(value, str) else None

    @property
    def label(self) -> str:
        """The name, with the AWS operation or the HTTP method when there is one."""
        if self.operation:
            return f"{self.name} {self.operation}"
        http = self.doc.get("http")
        request = http.get("request") if isinstance(http, dict) else None
        method = request.get("method") if isinstance(request, dict) else None
        return f"{self.name} {method}" if isinstance(method, str) else self.name

    @property
    def fault(self) -> bool:
        return bool(self.doc.get("fault"))

    @property
    def error(self) -> bool:
        return bool(self.doc.get("error"))

    @property
    def throttle(self) -> bool:
        return bool(self.doc.get("throttle"))

    @property
    def in_progress(self) -> bool:
        return bool(self.doc.get("in_progress"))

    @property
    def annotations(self) -> dict[str, Any]:
        value = self.doc.get("annotations")
        return dict(value) if isinstance(value, dict) else {}

    @property
    def exceptions(self) -> list[dict[str, Any]]:
        cause = self.doc.get("cause")
        found = cause.get("exceptions") if isinstance(cause, dict) else None
        return [e for e in found or () if isinstance(e, dict)]

    @property
    def start(self) -> float:
        value = self.doc.get("start_time")
        return float(value) if isinstance(value, int | float) else 0.0

    @property
    def end(self) -> float:
        value = self.doc.get("end_time")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        return max([self.start, *(c.end for c in self.children)])

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def self_time(self) -> float:
        """The duration not covered by any child (children clipped to this entry)."""
        start, end = self.start, self.end
        covered = 0.0
        reach = start
        for child in sorted(self.children, key=lambda c: c.start):
            lo, hi = max(child.start, reach), min(child.end, end)
            if hi > lo:
                covered += hi - lo
                reach = hi
        return max(0.0, (end - start) - covered)

    # -- navigation ------------------------------------------------------------------

    def walk(self) -> Iterator[Entry]:
        """This entry and every descendant, depth first, in start order."""
        yield self
        for child in self.children:
            yield from child.walk()

    def ancestors(self) -> Iterator[Entry]:
        """The parent, its parent, … up to the root."""
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def __repr__(self) -> str:
        return f"Entry({self.label!r}, {self.duration * 1000:.1f} ms)"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:9.1f} ms"


def _flags(entry: Entry) -> str:
    flags = [
        word
        for word, on in (
            ("FAULT", entry.fault),
            ("ERROR", entry.error),
            ("THROTTLE", entry.throttle),
            ("IN PROGRESS", entry.in_progress),
        )
        if on
    ]
    status = (
        entry.doc.get("http", {}).get("response", {})
        if isinstance(entry.doc.get("http"), dict)
        else {}
    )
    code = status.get("status") if isinstance(status, dict) else None
    if isinstance(code, int):
        flags.insert(0, str(code))
    return f"  [{' '.join(flags)}]" if flags else ""


def _exception_lines(entry: Entry, indent: str) -> list[str]:
    lines: list[str] = []
    for exc in entry.exceptions[:2]:
        if exc.get("remote") and not exc.get("message"):
            continue
        kind = exc.get("type") or "exception"
        lines.append(f"{indent}  {kind}: {exc.get('message', '')}")
        for frame in (exc.get("stack") or [])[:_STACK_FRAMES]:
            if isinstance(frame, dict):
                lines.append(
                    f"{indent}    at {frame.get('label', '?')} "
                    f"({frame.get('path', '?')}:{frame.get('line', '?')})"
                )
    return lines


def render(roots: Sequence[Entry], marked: set[int], *, limit: int = 60) -> str:
    """``roots`` as a waterfall; entries whose ``id()`` is in ``marked`` get ``>>``
    and their exceptions printed. Offsets are from the earliest root's start."""
    if not roots:
        return "  (no entries recorded)"
    origin = min(r.start for r in roots)
    total = sum(1 for r in roots for _ in r.walk())
    keep: set[int] | None = None
    if total > limit and marked:
        keep = set()
        for root in roots:
            for e in root.walk():
                if id(e) in marked:
                    keep.add(id(e))
                    keep.update(id(a) for a in e.ancestors())
    lines = [f"  {'':2}{'start':>12} {'duration':>12} {'self':>12}  entry"]
    hidden = 0

    def draw(entry: Entry, prefix: str, last: bool, depth: int) -> None:
        nonlocal hidden
        if keep is not None and id(entry) not in keep:
            hidden += sum(1 for _ in entry.walk())
            return
        if keep is None and len(lines) > limit:
            hidden += 1
        else:
            branch = "" if depth == 0 else ("└─ " if last else "├─ ")
            mark = ">>" if id(entry) in marked else "  "
            ns = f" ({entry.namespace})" if entry.namespace else ""
            lines.append(
                f"  {mark}{_ms(entry.start - origin)} {_ms(entry.duration)} "
                f"{_ms(entry.self_time)}  {prefix}{branch}{entry.label}{ns}{_flags(entry)}"
            )
            if id(entry) in marked:
                lines.extend(_exception_lines(entry, " " * 44 + prefix))
        child_prefix = prefix if depth == 0 else prefix + ("   " if last else "│  ")
        for i, child in enumerate(entry.children):
            draw(child, child_prefix, i == len(entry.children) - 1, depth + 1)

    for root in roots:
        draw(root, "", True, 0)
    if hidden:
        lines.append(f"  … {hidden} more entries not shown")
    return "\n".join(lines)
