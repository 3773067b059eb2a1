"""Validated documents -> one store batch: span rows, trace summaries, graph statistics.

:class:`Assembler` keeps a bounded cache of :class:`TraceState` (least recently used
first out). A document for a trace that is not cached is either new or was seen before;
the latter are reloaded from the store in one query per batch, so summaries and
statistics stay exact across evictions and restarts. Which is which, for an X-Ray-style
id (its first 8 hex digits the trace's start second, its *epoch*): up to a *horizon*
every trace may have been stored (the process start's, then moved on as memory is
spent); after it, the evicted ones are remembered exactly, by a hash of their id per
epoch second, in a bounded window (:data:`_MIN_RECENT_EVICTED`): a trace not cached
whose id is not among them is new, however late its documents arrive. Once the window
is full its oldest seconds are forgotten and the horizon moves past them. A hash
collision costs an extra reload, never a missed one. (Remembering only the newest
evicted epoch instead made every new trace a reload once the cache held less time than
documents' arrival delay: at 50,000 documents/s 20,000 traces are ~0.6 s, while the
X-Ray daemon alone batches ~1 s.)

A trace id whose first 8 hex digits are no plausible time (an OpenTelemetry random id)
says nothing of its age: such traces are stored under their first document's start, and
recognized as seen before by a bounded set of the evicted ones (an entry lost to its
bound makes every such document that starts before the lost traces' latest start a
reload: slower, never wrong).

Not thread-safe: one ingest worker thread owns it.
"""

from __future__ import annotations

import time
from array import array
from bisect import bisect_left
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Protocol

import orjson

from fluoroscope.model.inference import http_status, outcome_of
from fluoroscope.model.stats import Contribution, OutcomeRows, StatsBatch, StatsSink
from fluoroscope.model.tracestate import TraceState
from fluoroscope.store.batch import (
    IN_PROGRESS_FLAG,
    ContributionColumns,
    StoredTrace,
    WriteBatch,
)
from fluoroscope.store.spandoc import trimmed_document

__all__ = ["Assembler", "TraceLoader"]

_CLOCK_SLACK: Final = 300  # how far a client clock may lag ours: traces begun before a restart
_FUTURE_SLACK: Final = 86_400
_MIN_OTHER_EVICTED: Final = 100_000  # evicted random-id traces remembered, at least
_MIN_RECENT_EVICTED: Final = 100_000
"""Evicted X-Ray-id traces remembered by id past the horizon, at least (4 per cached
trace if more): a 64-bit hash each, 8 bytes once its second is sealed (:class:`_Hashes`;
~83 in a set while it is open), so ~1-2 MB per assembler at this bound, where a cached
trace is ~2.8 KB (``benchmarks/worker_memory.py``). At 50,000 documents/s (~31,000
traces/s) split between two workers it spans ~6 s of evictions: documents arriving up
to ~6 s after their id's second, plus the time the cache holds, are told new from
evicted exactly."""
_MAX_RECENT_SECONDS: Final = 4_096  # distinct epoch seconds among them, at most
_SEAL_AFTER: Final = 2
"""An epoch second's evicted hashes are sealed once evictions reached a second this much
later (evictions go least recently used first, so mostly in epoch order)."""
_DUMPS: Final = orjson.dumps


def _epoch(trace_id: str) -> int:
    """:func:`fluoroscope.model.ids.trace_epoch` (the epoch seconds in a well-formed
    trace id), here where it is compiled: that module stays Python (the SDK imports
    it), and a call into it from here runs a Python frame, once per new or evicted
    trace."""
    return int(trace_id[2:10], 16)


class _Hashes:
    """The hashes of one epoch second's evicted trace ids: a set while that second's
    evictions come in, sealed (:meth:`seal`) into a sorted array once they mostly
    stopped. A hash takes ~83 bytes in a set (tracemalloc, 99,000 hashes over 36
    seconds: 7.9 MB) and 8 in the array; looked up by bisection. A hash may be in both
    (a trace evicted again after its second was sealed): counted twice by ``len``."""

    __slots__ = ("open", "sealed")

    def __init__(self) -> None:
        self.open: set[int] = set()
        self.sealed: array[int] = array("q")

    def __len__(self) -> int:
        return len(self.open) + len(self.sealed)

    def has(self, value: int) -> bool:
        return value in self.open or self._sealed_has(value)

    def _sealed_has(self, value: int) -> bool:
        sealed = self.sealed
        if not sealed:
            return False
        at = bisect_left(sealed, value)
        return at < len(sealed) and sealed[at] == value

    def seal(self) -> None:
        """Move the open hashes into the sorted array (a second sealed before and
        reopened by late evictions: one merge of two sorted runs)."""
        if self.sealed:
            new = sorted(h for h in self.open if not self._sealed_has(h))
            self.sealed = array("q", sorted([*self.sealed, *new]))
        else:
            self.sealed = array("q", sorted(self.open))
        self.open = set()


_Rows = tuple[
    list[Any], list[str], list[str], list[str], list[int], list[str], list[str], list[str],
    list[Any], list[Any], list[int], list[int], bytearray, Callable[[int], None],
]  # fmt: skip
"""A batch's span columns as ``_explode`` appends to them: ``SpanColumns``' lists in
its order (``version`` aside), then the ``doc`` column's buffer and its offsets'
``append`` (``BinaryColumn.appender``)."""


class TraceLoader(Protocol):
    """Reads back what the store holds for traces that left the cache."""

    def load_traces(self, trace_ids: Iterable[str]) -> dict[str, StoredTrace]:
        """Stored entities and latest revision per trace id; unknown ids are absent."""


class Assembler:
    """Turns documents into a :class:`WriteBatch`, keeping per-trace state between batches."""

    def __init__(
        self,
        loader: TraceLoader,
        *,
        capacity: int = 100_000,
        retention_seconds: float = 30 * 86_400,
        stored_until: int = 0,
        clock: Callable[[], float] = time.time,
        outcome_rows: bool = False,
        counters: Counter[str] | None = None,
        remember_evicted: int | None = None,
    ) -> None:
        """``stored_until``: the latest trace epoch the store already holds (0 if empty);
        traces with a later id epoch that are not cached are known to be new.
        ``outcome_rows``: a batch carries its graph statistics as outcome rows, summed a
        batch at a time with array operations where it is encoded (``WriteBatch.outcomes``,
        ``store.outcomes``: the ingest pipeline's way, ~5 us less per document); False
        (the default) adds each outcome to its cell here (``WriteBatch.stats``: the way
        before, kept as the reference of ``benchmarks/ingest_cpu.py`` and of the tests,
        whose ``batch.stats`` it is). The rows stored are the same.
        ``counters`` (default: a new one, :attr:`counters`) is where reloads are
        counted: ``reloaded_traces``, the trace ids asked of the loader, and
        ``reload_misses``, those of them the store did not hold (traces taken for maybe
        stored that were new: the cost of a horizon rule, never of exact memory).
        ``remember_evicted``: how many evicted traces with X-Ray-style ids are remembered
        by id (default :data:`_MIN_RECENT_EVICTED`, or 4 per cached trace if more)."""
        self._loader = loader
        self._capacity = capacity
        self._retention = retention_seconds
        self._clock = clock
        self._cache: OrderedDict[str, TraceState] = OrderedDict()
        # Up to the horizon any trace may have been stored; after it, the hashes of the
        # evicted traces' ids by epoch second (every key > the horizon), and how many.
        self._horizon = stored_until + _CLOCK_SLACK if stored_until else 0
        self._recent: dict[int, _Hashes] = {}
        self._recent_size = 0
        self._unsealed: set[int] = set()  # epochs with open hashes
        self._newest_evicted = 0  # the latest epoch among them
        self._recent_bound = (
            max(_MIN_RECENT_EVICTED, 4 * capacity) if remember_evicted is None else remember_evicted
        )
        self._forgotten: set[str] = set()  # reloaded at their next document
        # Evicted traces whose id holds no plausible epoch (by hash), the latest start
        # among them, and the start up to which any such trace may have been stored.
        self._evicted_other: set[int] = set()
        self._evicted_other_ts = 0
        self._other_horizon = self._horizon
        self._other_bound = max(_MIN_OTHER_EVICTED, 4 * capacity)
        self._version = int(clock() * 1_000_000)
        self._outcome_rows = outcome_rows
        self.counters: Counter[str] = Counter() if counters is None else counters
        for key in ("reloaded_traces", "reload_misses"):  # there from the start: a thread
            self.counters.setdefault(key, 0)  # iterating them never sees these appear
        self._open: WriteBatch | None = None  # the batch merge() appends to
        self._stats: StatsSink | None = None
        self._rows: _Rows | None = None  # its span columns, as _explode appends to them
        self._dirty: dict[str, TraceState] = {}
        self._before: dict[str, list[Contribution]] | None = None
        self.track_contributions = False
        """Set: each batch carries the changed traces' graph contributions before and
        after it (``WriteBatch.contributions``), for group statistics."""

    @property
    def cached_traces(self) -> int:
        return len(self._cache)

    def assemble(self, docs: Sequence[Mapping[str, Any]]) -> WriteBatch:
        """Merge validated documents into their traces; return the rows to write
        (:meth:`merge` then :meth:`finish`)."""
        self.merge(docs)
        return self.finish()

    def merge(self, docs: Sequence[Mapping[str, Any]]) -> None:
        """Merge validated documents into their traces, their rows appended to the batch
        in the making (begun by the first merge after :meth:`finish`). Merging a batch's
        documents a part at a time, each part's parsed documents freed before the next is
        parsed, reuses memory still in the CPU's caches; summaries, statistics' before
        and after, and evictions wait for :meth:`finish`, so the rows are those of one
        :meth:`assemble` of them all. Should it raise, the batch in the making is
        unusable: :meth:`abandon` it."""
        now = self._clock()
        self._version = max(self._version, int(now * 1_000_000))
        fresh = self._reload_missing(docs, now)
        batch = self._open
        if batch is None:
            batch = self._begin()
        stats = self._stats
        rows = self._rows
        assert stats is not None and rows is not None
        dirty = self._dirty
        cache = self._cache
        before = self._before
        for doc in docs:
            trace_id = doc["trace_id"]
            state = cache.get(trace_id)
            if state is None:
                ts = fresh.get(trace_id)
                if ts is None:
                    ts = self._trace_ts(trace_id, doc["start_time"], now)
                state = cache[trace_id] = TraceState(trace_id, ts)
                if before is not None:
                    before[trace_id] = []  # a new trace contributed nothing
            else:
                cache.move_to_end(trace_id)
                if before is not None and trace_id not in before:
                    before[trace_id] = state.contributions()
            # (parsed JSON is a dict; another mapping is merged as one: same result)
            self._explode(doc if type(doc) is dict else dict(doc), state, rows, stats)
            dirty[trace_id] = state

    def finish(self) -> WriteBatch:
        """The batch merged since the last :meth:`finish` (empty if nothing was), with
        its traces' summaries (and contributions); the cache is trimmed to capacity."""
        batch = self._open
        if batch is None:
            batch = self._begin()
        dirty, before = self._dirty, self._before
        self._end()
        summaries = batch.summaries
        for state in dirty.values():
            state.revision += 1
            state.summarize(summaries)
        if before is not None:
            made = batch.contributions = ContributionColumns()
            for trace_id, state in dirty.items():
                made.add(trace_id, before[trace_id], state.contributions())
        self._evict()
        return batch

    def abandon(self) -> list[str]:
        """Drop the batch in the making (after :meth:`merge` raised): the ids of the
        traces it merged into, whose state now holds what will not be written - to
        :meth:`forget`."""
        touched = list(self._dirty)
        self._end()
        return touched

    def _begin(self) -> WriteBatch:
        """Open the batch :meth:`merge` appends to, its span columns (``_rows``), its
        statistics and what :meth:`finish` needs of it."""
        batch = self._open = WriteBatch()
        spans = batch.spans
        spans.version_base = self._version
        self._rows = (
            spans.ts, spans.trace_id, spans.id, spans.parent_id, spans.is_segment,
            spans.name, spans.origin, spans.namespace, spans.start_time, spans.end_time,
            spans.flags, spans.http_status, *spans.doc.appender(),
        )  # fmt: skip
        if self._outcome_rows:
            self._stats = batch.outcomes = OutcomeRows()
        else:
            self._stats = batch.stats = StatsBatch()
        self._dirty = {}
        self._before = {} if self.track_contributions else None
        return batch

    def _end(self) -> None:
        """Let go of the batch in the making (see :meth:`_begin`)."""
        self._open, self._stats, self._rows, self._dirty, self._before = None, None, None, {}, None

    def forget(self, trace_ids: Iterable[str]) -> None:
        """Drop the cached state of ``trace_ids``: their next document reloads them from
        the store. After a batch that could not be written, so that what it merged but
        never stored is not taken for stored."""
        forgotten = self._forgotten
        for trace_id in trace_ids:
            state = self._cache.pop(trace_id, None)
            if state is not None:
                forgotten.add(trace_id)
                if not self._plausible(trace_id, self._clock()):
                    self._note_other(trace_id, state.ts)
        if len(forgotten) > self._capacity:  # bounded: remembered as evicted ones are
            now = self._clock()
            for trace_id in forgotten:
                if self._plausible(trace_id, now):  # the others were noted above
                    self._note_recent(trace_id, _epoch(trace_id))
            forgotten.clear()
            self._trim_recent()

    # -- trace cache -----------------------------------------------------------------

    def _plausible(self, trace_id: str, now: float) -> bool:
        """Whether the id's epoch can be the trace's time (an X-Ray-style id)."""
        return now - self._retention <= _epoch(trace_id) <= now + _FUTURE_SLACK

    def _trace_ts(self, trace_id: str, start: float, now: float) -> int:
        if self._plausible(trace_id, now):
            return _epoch(trace_id)
        return int(start)  # not an X-Ray-style epoch id (e.g. a random 128-bit OTel id)

    def _note_recent(self, trace_id: str, epoch: int) -> None:
        """Remember an evicted trace whose id holds a plausible ``epoch`` (then
        :meth:`_trim_recent`)."""
        if epoch > self._horizon:  # else taken for maybe stored anyway
            seen = self._recent.get(epoch)
            if seen is None:
                seen = self._recent[epoch] = _Hashes()
            seen.open.add(hash(trace_id))
            self._unsealed.add(epoch)
            if epoch > self._newest_evicted:
                self._newest_evicted = epoch
            self._recent_size += 1  # counts re-evictions again: trimmed sooner, no harm

    def _trim_recent(self) -> None:
        """Keep the evicted ids remembered within bounds: seal the seconds whose
        evictions mostly stopped, forget the oldest seconds and move the horizon past
        them."""
        recent = self._recent
        unsealed = self._unsealed
        if unsealed:
            # (a trace id's epoch may lie up to a day ahead: never past the clock)
            old = min(self._newest_evicted, int(self._clock())) - _SEAL_AFTER
            for epoch in [e for e in unsealed if e <= old]:
                unsealed.discard(epoch)
                found = recent.get(epoch)
                if found is not None:
                    found.seal()
        if self._recent_size <= self._recent_bound and len(recent) <= _MAX_RECENT_SECONDS:
            return
        size = sum(map(len, recent.values()))
        for epoch in sorted(recent):
            if size <= self._recent_bound and len(recent) <= _MAX_RECENT_SECONDS:
                break
            size -= len(recent.pop(epoch))
            self._unsealed.discard(epoch)
            self._horizon = epoch  # ascending: each later than the horizon before
        self._recent_size = size

    def _note_other(self, trace_id: str, ts: int) -> None:
        """Remember an evicted trace whose id holds no plausible epoch."""
        other = self._evicted_other
        if len(other) >= self._other_bound:
            self._other_horizon = max(self._other_horizon, self._evicted_other_ts + _CLOCK_SLACK)
            other.clear()
        other.add(hash(trace_id))
        self._evicted_other_ts = max(self._evicted_other_ts, ts)

    def _seen_before(self, trace_id: str, start: float, now: float) -> bool:
        """Whether a trace not cached may have been stored already."""
        if trace_id in self._forgotten:
            return True
        if self._plausible(trace_id, now):
            epoch = _epoch(trace_id)
            seen = self._recent.get(epoch)
            return epoch <= self._horizon or (seen is not None and seen.has(hash(trace_id)))
        return hash(trace_id) in self._evicted_other or start <= self._other_horizon

    def _reload_missing(self, docs: Sequence[Mapping[str, Any]], now: float) -> dict[str, int]:
        """Reload the traces of ``docs`` that are not cached but may have been stored.
        Returns the epochs of those whose id holds a plausible one and that are known to
        be new (the epoch is their ``ts``): worked out here once per trace, not again
        when the batch makes their state."""
        forgotten = self._forgotten
        cache = self._cache
        seen_before = self._seen_before
        low, high = now - self._retention, now + _FUTURE_SLACK
        horizon, recent = self._horizon, self._recent
        fresh: dict[str, int] = {}
        missing: set[str] = set()
        for doc in docs:
            trace_id = doc["trace_id"]
            if trace_id in cache or trace_id in fresh or trace_id in missing:
                continue
            epoch = _epoch(trace_id)
            if low <= epoch <= high:  # _plausible; then _seen_before's own test
                if (
                    trace_id in forgotten
                    or epoch <= horizon
                    or ((seen := recent.get(epoch)) is not None and seen.has(hash(trace_id)))
                ):
                    missing.add(trace_id)
                else:
                    fresh[trace_id] = epoch
            elif seen_before(trace_id, doc["start_time"], now):  # each document's start
                missing.add(trace_id)
        if not missing:
            return fresh
        loaded = self._loader.load_traces(missing)
        forgotten.difference_update(missing)  # once loaded: a failed load leaves them
        self.counters["reloaded_traces"] += len(missing)
        self.counters["reload_misses"] += len(missing) - len(loaded)
        for trace_id, stored in loaded.items():
            state = TraceState(trace_id, stored.ts, revision=stored.revision)
            for entity, parent_id, is_segment in stored.entities:
                state.apply(entity, parent_id, is_segment, None)
            self._cache[trace_id] = state
        return fresh

    def _evict(self) -> None:
        excess = len(self._cache) - self._capacity
        now = self._clock()
        low, high = now - self._retention, now + _FUTURE_SLACK
        while excess > 0:
            trace_id, state = self._cache.popitem(last=False)
            epoch = _epoch(trace_id)
            if low <= epoch <= high:  # _plausible
                self._note_recent(trace_id, epoch)
            else:
                self._note_other(trace_id, state.ts)
            excess -= 1
        self._trim_recent()

    # -- rows ------------------------------------------------------------------------

    def _explode(
        self, doc: dict[str, Any], state: TraceState, rows: _Rows, stats: StatsSink
    ) -> None:
        """Append a row per entity in ``doc`` (depth first) to ``rows`` and merge each
        into ``state``."""
        # Written for both ways it runs: the columns and values in typed locals, the
        # state's methods called directly (compiled by mypyc, such calls and appends are
        # C calls; interpreted, the locals save an attribute lookup per column). The
        # columns come in a tuple made once per batch (compiled, an attribute of the
        # interpreted SpanColumns is a generic lookup: 14 per document before). Values
        # the columns take as they are are typed ``Any``: compiled, a value typed
        # ``int`` or ``float`` is held unboxed and boxed again (a new object) for each
        # append. The entity itself is merged (its children are not looked at there)
        # and only its stored document copies it, children left out: one copy per
        # entity, where there were two for an entity with children.
        (
            c_ts, c_trace_id, c_id, c_parent_id, c_is_segment, c_name, c_origin, c_namespace,
            c_start_time, c_end_time, c_flags, c_http_status, data, end_at,
        ) = rows  # fmt: skip
        is_segment = doc.get("type") != "subsegment"
        parent: str = doc.get("parent_id") or ""
        ts: Any = state.ts  # one object for every row of the document
        trace_id: str = state.trace_id
        before = len(c_id)
        stack: list[tuple[dict[str, Any], str, bool]] = [(doc, parent, is_segment)]
        try:
            while stack:
                entity, parent_id, seg = stack.pop()
                # each field read once, here, for the row and for the merge (where they
                # were read again: ~14 lookups of the same keys per entity)
                eid = entity["id"]
                children = entity.get("subsegments")
                if children:
                    for child in reversed(children):
                        stack.append((child, eid, False))
                name = entity["name"]
                start: Any = entity["start_time"]
                end: Any = entity.get("end_time")
                complete = end is not None and not entity.get("in_progress")
                namespace = entity.get("namespace")
                origin = entity.get("origin")
                http = entity.get("http")
                status = http_status(http)
                bits = outcome_of(entity, status)
                # whether the row's columns give back its times (its stored document
                # leaves them out then: store.spandoc)
                start_column = type(start) is float
                if not start_column:  # (a conditional expression would unbox)
                    start = float(start)
                end_column = False
                if end is not None:
                    if type(end) is not float:
                        end = float(end)
                    elif complete and end != 0.0:
                        end_column = True
                state.merge(
                    entity,
                    eid,
                    name,
                    start,
                    start if end is None else end,
                    not complete,
                    namespace,
                    origin,
                    http,
                    status,
                    bits,
                    parent_id,
                    seg,
                    stats,
                )
                c_ts.append(ts)
                c_trace_id.append(trace_id)
                c_id.append(eid)
                c_parent_id.append(parent_id)
                c_is_segment.append(1 if seg else 0)
                c_name.append(name)
                c_origin.append(origin if isinstance(origin, str) else "")
                c_namespace.append(namespace if isinstance(namespace, str) else "")
                c_start_time.append(start)
                if complete:
                    c_end_time.append(end)
                    c_flags.append(bits)
                else:
                    c_end_time.append(0.0)
                    c_flags.append(bits | IN_PROGRESS_FLAG)
                c_http_status.append(status)
                data += _DUMPS(
                    trimmed_document(
                        entity,
                        trace_id,
                        parent_id,
                        seg,
                        bool(children),
                        start_column,
                        end_column,
                    )
                )
                end_at(len(data))  # spans.doc.append without a call per entity
        finally:
            # each row's version is the batch's first plus its place (SpanColumns.version)
            self._version += len(c_id) - before
