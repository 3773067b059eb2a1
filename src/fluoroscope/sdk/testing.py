"""Trace assertions for tests: record what the code under test traced, in memory, and check it.

::

    from fluoroscope.sdk.testing import TraceRecorder

    with TraceRecorder() as traces:             # or the pytest fixture ``fluoroscope_traces``
        handle_request()
    trace = traces.one()                        # the single trace recorded (fails otherwise)
    trace.assert_no_fault()
    trace.assert_calls("DynamoDB", at_most=3)   # name patterns are fnmatch globs
    trace.assert_no_call("payments*", inside="transaction")
    trace.assert_self_time_under(0.200)

While a :class:`TraceRecorder` is open, every tracer of the process samples everything
and hands its closed segments to the recorder instead of its emitter (nothing is sent;
no server or daemon is needed). Segments closed in other threads of the process are
recorded too; other processes are not. Each failed assertion raises ``AssertionError``
whose message names what was expected and prints the trace's waterfall with the
offending entries marked ``>>`` (see :mod:`fluoroscope.sdk._waterfall`).

Standard library only.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

from fluoroscope.sdk._emitters import InMemoryEmitter
from fluoroscope.sdk._recording import RECORDING
from fluoroscope.sdk._waterfall import DOWNSTREAM, Entry, render

__all__ = ["DOWNSTREAM", "Entry", "Trace", "TraceRecorder", "build_entries"]

Predicate = Callable[[Entry], bool]


def build_entries(documents: Sequence[dict[str, Any]]) -> list[Entry]:
    """The root entries of ``documents`` (as emitted), subsegments sent on their own
    attached under their parents; an ``in_progress`` document is replaced by the final
    one of the same id. Roots are ordered by start time."""
    latest: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for doc in documents:
        key = str(doc.get("id"))
        if key not in latest:
            order.append(key)
        elif doc.get("in_progress") and not latest[key].get("in_progress"):
            continue
        latest[key] = doc
    entries: dict[str, Entry] = {}
    tops: list[Entry] = []
    for key in order:
        top = Entry(latest[key], None)
        tops.append(top)
        for entry in top.walk():
            entries.setdefault(entry.id, entry)
    roots: list[Entry] = []
    for top in tops:
        parent = entries.get(str(top.doc.get("parent_id"))) if top.independent else None
        if parent is not None and parent is not top:
            top.parent = parent
            parent.children.append(top)
            parent.children.sort(key=lambda e: e.start)
        else:
            roots.append(top)
    roots.sort(key=lambda e: e.start)
    return roots


def _matcher(
    name: str | None,
    namespace: str | None = None,
    operation: str | None = None,
    where: Predicate | None = None,
) -> Predicate:
    def match(entry: Entry) -> bool:
        if name is not None and not (
            fnmatch.fnmatchcase(entry.name, name) or fnmatch.fnmatchcase(entry.label, name)
        ):
            return False
        if namespace is not None and entry.namespace != namespace:
            return False
        if operation is not None and not fnmatch.fnmatchcase(entry.operation or "", operation):
            return False
        return where is None or where(entry)

    return match


def _describe(name: str | None, namespace: str | None, operation: str | None) -> str:
    parts = [repr(name) if name is not None else "any entry"]
    if namespace is not None:
        parts.append(f"namespace={namespace!r}")
    if operation is not None:
        parts.append(f"operation={operation!r}")
    return " ".join(parts)


class _Checks:
    """Queries and assertions over a set of root entries (a trace, or all recorded)."""

    def roots(self) -> list[Entry]:
        raise NotImplementedError

    def _title(self) -> str:
        raise NotImplementedError

    # -- queries ---------------------------------------------------------------------

    def entries(
        self,
        name: str | None = None,
        *,
        namespace: str | None = None,
        operation: str | None = None,
        where: Predicate | None = None,
    ) -> list[Entry]:
        """Every entry (segment or subsegment, depth first) matching all the criteria:
        ``name`` a glob on the name or on ``"name operation"`` (``"DynamoDB PutItem"``),
        ``namespace`` exact (``"aws"``, ``"remote"``), ``operation`` a glob on the AWS
        operation, ``where`` any predicate."""
        match = _matcher(name, namespace, operation, where)
        return [e for root in self.roots() for e in root.walk() if match(e)]

    def _fail(self, headline: str, offending: Sequence[Entry], extra: str = "") -> None:
        __tracebackhide__ = True
        marked = {id(e) for e in offending}
        body = render(self.roots(), marked)
        message = f"{headline}\n{extra}" if extra else headline
        raise AssertionError(f"{message}\n\n{self._title()}\n{body}")

    # -- assertions ------------------------------------------------------------------

    def assert_calls(
        self,
        name: str | None = None,
        *,
        at_most: int | None = None,
        at_least: int | None = None,
        exactly: int | None = None,
        namespace: str | None = None,
        operation: str | None = None,
        where: Predicate | None = None,
    ) -> list[Entry]:
        """The number of entries matching (as :meth:`entries`) is within the bounds;
        returns them. ``assert_calls("DynamoDB", at_most=3)``."""
        __tracebackhide__ = True
        found = self.entries(name, namespace=namespace, operation=operation, where=where)
        what = _describe(name, namespace, operation)
        n = len(found)
        wrong = None
        if exactly is not None and n != exactly:
            wrong = f"exactly {exactly}"
        elif at_most is not None and n > at_most:
            wrong = f"at most {at_most}"
        elif at_least is not None and n < at_least:
            wrong = f"at least {at_least}"
        if wrong is not None:
            self._fail(f"expected {wrong} calls to {what}, found {n}", found)
        return found

    def assert_no_call(
        self,
        name: str | None = None,
        *,
        inside: str | Predicate | None = None,
        namespace: str | None = None,
        operation: str | None = None,
        where: Predicate | None = None,
    ) -> None:
        """No entry matching the criteria, anywhere, or (with ``inside``, a name glob or
        a predicate) below an entry that ``inside`` matches."""
        __tracebackhide__ = True
        found = self.entries(name, namespace=namespace, operation=operation, where=where)
        what = _describe(name, namespace, operation)
        if inside is None:
            if found:
                self._fail(f"expected no call to {what}, found {len(found)}", found)
            return
        within = inside if callable(inside) else _matcher(inside)
        offending = [e for e in found if any(within(a) for a in e.ancestors())]
        if offending:
            where_text = repr(inside) if isinstance(inside, str) else "the entry given"
            self._fail(
                f"expected no call to {what} inside {where_text}, found {len(offending)}",
                offending,
            )

    def assert_no_fault(self) -> None:
        """No entry is marked ``fault`` (a server-side failure, an uncaught exception)."""
        __tracebackhide__ = True
        offending = [e for root in self.roots() for e in root.walk() if e.fault]
        if offending:
            self._fail(f"expected no fault, found {len(offending)} faulty entries", offending)

    def assert_no_error(self) -> None:
        """No entry is marked ``fault``, ``error`` (a client-side failure) or ``throttle``."""
        __tracebackhide__ = True
        offending = [
            e for root in self.roots() for e in root.walk() if e.fault or e.error or e.throttle
        ]
        if offending:
            self._fail(
                f"expected no fault, error or throttle, found {len(offending)} entries",
                offending,
            )

    def assert_self_time_under(
        self,
        seconds: float,
        name: str | None = None,
        *,
        namespace: str | None = None,
        where: Predicate | None = None,
    ) -> float:
        """The summed self time (an entry's duration not covered by its children) of
        the matching entries is under ``seconds``; returns it. Without criteria: every
        entry that is not a downstream call (namespace ``aws``/``remote``) nor inside
        one, i.e. the time spent in the traced code itself."""
        __tracebackhide__ = True
        if name is None and namespace is None and where is None:
            chosen = [
                e
                for root in self.roots()
                for e in root.walk()
                if not any(x.namespace in DOWNSTREAM for x in (e, *e.ancestors()))
            ]
            what = "the traced code"
        else:
            chosen = self.entries(name, namespace=namespace, where=where)
            what = _describe(name, namespace, None)
        total = sum(e.self_time for e in chosen)
        if total >= seconds:
            top = sorted(chosen, key=lambda e: e.self_time, reverse=True)[:5]
            top = [e for e in top if e.self_time >= total / 100] or top
            self._fail(
                f"expected the self time of {what} under {seconds * 1000:.1f} ms, "
                f"it was {total * 1000:.1f} ms",
                top,
                "largest self times: "
                + ", ".join(f"{e.label} {e.self_time * 1000:.1f} ms" for e in top),
            )
        return total

    def assert_duration_under(self, seconds: float) -> None:
        """Every root entry (each request as recorded) lasted less than ``seconds``."""
        __tracebackhide__ = True
        offending = [r for r in self.roots() if r.duration >= seconds]
        if offending:
            self._fail(
                f"expected every request under {seconds * 1000:.1f} ms, "
                + ", ".join(f"{r.label} took {r.duration * 1000:.1f} ms" for r in offending),
                offending,
            )

    def waterfall(self) -> str:
        """The entries as an indented text waterfall (what failures print)."""
        return render(self.roots(), set())


class Trace(_Checks):
    """The recorded entries of one trace id."""

    def __init__(self, trace_id: str, roots: list[Entry]) -> None:
        self.trace_id = trace_id
        self._roots = roots

    def roots(self) -> list[Entry]:
        """The entries without a recorded parent (the segments, usually)."""
        return self._roots

    def _title(self) -> str:
        return f"trace {self.trace_id}:"

    def __repr__(self) -> str:
        return f"Trace({self.trace_id!r}, {sum(1 for r in self._roots for _ in r.walk())} entries)"


class TraceRecorder(_Checks):
    """Records every trace of the process while open (``with`` or :meth:`start`/:meth:`stop`).

    Recorders nest (the innermost records). The assertions of :class:`Trace` apply
    here to everything recorded, all traces together.
    """

    def __init__(self) -> None:
        self.emitter = InMemoryEmitter()
        self._open = False

    def start(self) -> TraceRecorder:
        """Begin recording (idempotent)."""
        if not self._open:
            RECORDING.append(self.emitter)
            self._open = True
        return self

    def stop(self) -> None:
        """Stop recording; what was recorded stays readable."""
        if self._open:
            self._open = False
            if self.emitter in RECORDING:
                RECORDING.remove(self.emitter)

    def __enter__(self) -> TraceRecorder:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def documents(self) -> list[dict[str, Any]]:
        """Every document recorded, as it would have been sent."""
        return self.emitter.documents

    def clear(self) -> None:
        """Forget what was recorded so far."""
        self.emitter.clear()

    def roots(self) -> list[Entry]:
        """The root entries of every recorded trace."""
        return build_entries(self.documents)

    def traces(self) -> list[Trace]:
        """One :class:`Trace` per trace id, in order of first start."""
        grouped: dict[str, list[Entry]] = {}
        for root in self.roots():
            grouped.setdefault(root.trace_id, []).append(root)
        return [Trace(tid, roots) for tid, roots in grouped.items()]

    def one(self) -> Trace:
        """The single recorded trace; fails when there is none or several."""
        __tracebackhide__ = True
        found = self.traces()
        if len(found) != 1:
            self._fail(f"expected exactly one trace, recorded {len(found)}", [])
        return found[0]

    def wait(self, count: int = 1, timeout: float = 5.0) -> list[Trace]:
        """Wait until ``count`` traces have a finished root entry (segments closed by
        other threads arrive when those threads finish); fails after ``timeout`` s."""
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        while True:
            done = [t for t in self.traces() if any(not r.in_progress for r in t.roots())]
            if len(done) >= count:
                return done
            if time.monotonic() > deadline:
                self._fail(f"expected {count} finished traces within {timeout} s", [])
            time.sleep(0.01)

    def _title(self) -> str:
        return "recorded:"

    def __iter__(self) -> Iterator[Trace]:
        return iter(self.traces())

    def __len__(self) -> int:
        return len(self.traces())
