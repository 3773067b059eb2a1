"""The ingest pipeline: bounded buffers in, batched store writes out, one worker thread.

Producers (the buffers: :class:`~fluoroscope.ingest.buffers.Buffers`):

* :meth:`Pipeline.offer_datagrams` - the UDP receiver's reader thread. O(1) per body:
  raw bodies are queued and parsed later by the worker. Never blocks for long; when the
  buffer is full the remaining datagrams are dropped and counted.
* :meth:`Pipeline.submit` - PutTraceSegments, with documents already validated, as
  their JSON text (parsed by the worker as it merges them) or parsed (OTLP spans
  translated). Returns a future that completes when the documents are stored (so an HTTP
  acknowledgement means durable); raises :class:`Throttled` when the buffer is full.

The worker starts a round every ``flush_interval`` seconds, on a beat common to all
processes (at once when the previous round took longer, or when a batch is full): it
parses and validates the datagrams, merges everything through the :class:`Assembler`
and writes one batch. The store write
of a batch runs in a second thread (``fluoroscope-store``:
:class:`~fluoroscope.ingest.storethread.StoreThread`) while the worker parses and
merges the next batch of the same round: the engine releases the GIL, so the two overlap
on two cores. At most one write is in flight; the round waits for it before completing
its futures, and a reload of evicted traces waits for it before reading the store. While
a long read query holds the engine, writes wait and the buffers keep filling up to their
bound: receiving never stops. :meth:`close` stores everything accepted before returning.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Final

import orjson

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.ingest.buffers import Buffers, Submitted
from fluoroscope.ingest.heap import _pause_collector, _resume_collector, _thaw, malloc_trim
from fluoroscope.ingest.storethread import StoreThread, _AfterWrites
from fluoroscope.model.documents import refusal_reason, validate_document
from fluoroscope.model.errors import InvalidDocument, StoreError
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.store import Store

__all__ = ["Pipeline", "Submitted"]

log = logging.getLogger("fluoroscope.ingest")

_SLICE: Final = 2_500
"""Documents parsed, validated and merged at most at a time within a batch
(``max_batch``), whose slices' Arrow tables are then written together; a batch is cut
into slices of equal size (:func:`_slices`). Parsed documents take ~5.6 KB and their
merged rows ~4.8 KB each, 4.6x and 4x their JSON, so a backlog's batch of 10,000
parsed at once held ~100 MB in a worker; parsed a part at a time (:data:`_PART`) a
slice holds its merged rows, and the batch's Arrow tables ~1 KB a document
(benchmarks/worker_memory.py). The engine still gets one insert a batch, which costs
about the same whatever its size. Encoding a slice costs ~2.5-3.5 ms whatever its rows
(the graph statistics' kernels, a pyarrow conversion per column), paid once per slice:
with slices of 1,000 a live round of ~1,500 documents per worker (15,000/s on two)
was encoded twice. ``benchmarks/ingest_cpu.py --path parts --docs 40000 --runs 2``,
interleaved, load ~3 on 2 cores: batches of 1,000 against 2,500, encode 6.13/5.52 ->
4.46/4.06 us a document, validate+assemble+encode 26.49/23.44 -> 23.81/21.42. Python's
peak for the 4,000 datagrams of ``test_a_backlog_batch_is_merged_a_slice_at_a_time``
(tracemalloc): 8.8 MB in slices of 1,000, 10.1 MB in two of 2,000."""
_PART: Final = 100
"""Datagrams parsed, validated and merged at a time within a slice, whose merged rows
are encoded together (:meth:`Pipeline._merge_slice`; submitted documents likewise, parsed
and merged, :meth:`Pipeline._merge_submitted`): a part's parsed documents (~0.5 MB)
are freed before the next part is parsed, so its memory is reused while still in the
CPU's caches. Measured in one process (scratch of 2026-12-05, 40,000 benchmark documents,
slices of 1,000, a loaded machine): parse, validate, merge, summaries, encoding and
freeing 58-70 us a document in parts of 1,000, 47.8-53.6 in parts of 100-200; a batch's
fixed cost (encoding, the insert) is still paid once per slice."""
_TRIM_INTERVAL: Final = 1.0
# seconds between two returns of freed heap memory to the OS


def _slices(start: int, stop: int) -> list[tuple[int, int]]:
    """``[start, stop)`` cut into the fewest slices of at most :data:`_SLICE` documents,
    of equal sizes (give or take one): a batch a little longer than a slice is not
    followed by a slice of a few documents, which would cost a whole encoding."""
    count = -(-(stop - start) // _SLICE)
    if count <= 1:
        return [(start, stop)] if stop > start else []
    bounds = [start + (stop - start) * k // count for k in range(count + 1)]
    return list(itertools.pairwise(bounds))


class Pipeline(Buffers, StoreThread):
    """Buffers documents and writes them to ``store`` in batches (see module docstring)."""

    def __init__(
        self,
        store: Store,
        *,
        flush_interval: float = 0.2,
        max_batch: int = 10_000,
        max_buffered_bytes: int = 128 * 1024 * 1024,
        retention_seconds: float = 30 * 86_400,
        cached_traces: int = 20_000,
        clock: Callable[[], float] = time.time,
        owns: Callable[[str], bool] | None = None,
        stray: Callable[[list[tuple[str, bytes]]], None] | None = None,
        otlp: Any = None,
        before_round: Callable[[], object] | None = None,
    ) -> None:
        """``max_batch``: documents parsed, merged and encoded at a time; only a backlog
        fills a batch. A smaller one lowers a backlog's memory but not its cost: with
        2,500, workers in a backlog peaked at ~250 MB instead of ~380 MB, but stored
        40-60 % fewer segments/s (benchmarks/ingest.py), each insert's statistics rows
        costing the engine about the same whatever the batch (ingest_cpu.py: 102 µs of
        insert per document at 2,500, 26 at 10,000).

        ``cached_traces`` bounds the per-trace state kept in memory (~4-7 KB each; 4 KB
        measured with tracemalloc on benchmark traces of 1-3 documents); a
        document for a trace that left the cache reloads it from the store (one query per
        batch), so the bound trades memory for those reloads, never correctness.

        ``owns`` and ``stray`` (together), when this pipeline handles only some traces:
        a valid datagram whose trace ``owns`` refuses is not merged here but passed to
        ``stray`` with its trace id, in batches, from the worker thread.

        ``otlp``: the :class:`~fluoroscope.ingest.otlp.Translator` for datagrams that
        carry OTLP spans (AWS's ``T1S``/``T1U`` form) rather than a JSON document; by
        default one with the exporter's default settings, made at the first such
        datagram. Their documents are counted as ``udp_otlp_documents``, the spans
        refused as ``udp_otlp_rejected``, the datagrams refused as
        ``udp_invalid_otlp_<reason>`` and ``T1U`` ones as ``udp_otlp_unsampled``.

        ``before_round``: called by the worker thread as each round begins, before it
        takes what is buffered; it may block briefly so that documents about to be
        submitted join this round rather than the next (the ingest worker waits for the
        OTLP requests it is translating: a request split between two rounds is answered
        a round later, and its client's next request starts a round of its own)."""
        if (owns is None) != (stray is None):
            raise ValueError("owns and stray go together")
        counters: Counter[str] = Counter()
        Buffers.__init__(
            self, max_batch=max_batch, max_buffered_bytes=max_buffered_bytes, counters=counters
        )
        StoreThread.__init__(self, store, counters)
        self._owns = owns
        self._stray = stray
        self._otlp = otlp
        self._before_round = before_round
        self._flush_interval = flush_interval
        self._retention = retention_seconds
        self._clock = clock
        self._unstorable = 0  # valid documents that could not be stored (logged sparingly)
        # this round's documents _write refused, with their place among the submitted
        # documents being written (None for a datagram's)
        self._refused: list[tuple[Mapping[str, Any], Exception, int | None]] = []
        self.assembler = Assembler(
            _AfterWrites(store, self._settle),
            capacity=cached_traces,
            retention_seconds=retention_seconds,
            stored_until=store.max_trace_ts(),
            clock=clock,
            outcome_rows=True,  # statistics summed per batch where the batch is encoded
            counters=self.counters,  # reloaded_traces, reload_misses
        )
        self._thread: threading.Thread | None = None

    @property
    def cached_traces(self) -> int:
        """Traces whose state the worker currently keeps in memory."""
        return self.assembler.cached_traces

    # -- worker ----------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker thread. Call once."""
        self._thread = threading.Thread(target=self._run, name="fluoroscope-ingest", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting, store everything accepted, stop the worker. Blocking."""
        with self._lock:
            self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("ingest worker did not finish within %.0f s", timeout)
        _thaw()

    def _run(self) -> None:
        # Datagrams are allocated by the loop thread and freed by this one, so glibc keeps
        # the freed memory in per-thread arenas: measured, 120k documents left RSS at
        # 1.25 GB, 0.63-0.70 GB after one malloc_trim. Trimming after busy rounds keeps
        # RSS near what is live; each call is short when done often.
        #
        # One round per flush interval, timed from the start of the previous round: a
        # round that ran longer is followed at once, so what arrived meanwhile waits for
        # one round, not for the rest of it plus a whole interval; and a round is not
        # chased by rounds of the few documents that arrived while it ran, each of which
        # cost the engine its per-insert overhead (measured at 6k documents/s: half the
        # rounds, and freshness p50/p99 ~30 % lower over 4 interleaved pairs).
        #
        # The next round is due at a beat common to every process: the first multiple of
        # the interval on the monotonic clock at least half an interval after this round
        # began. So the batches of several ingest workers reach the server together and
        # go into the store in one insert (fluoroscope.ingest.process), not one each.
        trim = malloc_trim()
        trimmed = time.monotonic()
        next_round = self._beat(trimmed)
        while True:
            if not self._closing:
                self._wake.wait(max(0.0, next_round - time.monotonic()))
            self._wake.clear()
            next_round = self._beat(time.monotonic())
            closing = self._closing
            busy = False
            try:
                if self._before_round is not None and not closing:
                    self._before_round()
                busy = self._drain()
            except Exception:  # the worker must survive anything
                log.exception("ingest batch failed")
            if busy and trim is not None and time.monotonic() - trimmed >= _TRIM_INTERVAL:
                trim()
                trimmed = time.monotonic()
            if closing:
                with self._lock:
                    if not self._datagrams and not self._docs:
                        break
        if self._writer is not None:
            self._writer.shutdown(wait=True)

    def _beat(self, now: float) -> float:
        """The next round's time for a round beginning at ``now`` (see :meth:`_run`)."""
        interval = self._flush_interval
        return (now // interval + 1) * interval + (interval if now % interval > interval / 2 else 0)

    def _drain(self) -> bool:
        """Write one round of buffered documents; True if there was anything.

        Submitted documents go first, and their submitters are answered as soon as
        they are written; submissions arriving while the round works through a UDP
        backlog are taken in between its batches. So a client waiting on
        PutTraceSegments waits for its own documents, never behind datagrams. Empty
        submissions (barriers: everything given before them is merged) are answered at
        the end of the round. Documents are parsed and merged a slice at a time
        (:func:`_slices`, at most :data:`_SLICE` documents) and
        written ``max_batch`` at a time, so a backlog (after a long query, or above the
        sustainable rate) never holds more than one slice of parsed documents and merged
        rows in memory: parsed, a 1.2 KB datagram takes ~5 KB. Every future of the round
        completes, whatever happens in it.
        """
        datagrams, docs, waiters = self._take()
        if not datagrams and not docs:
            for _, future in waiters:  # empty submissions: everything before them is stored
                future.set_result(None)
            return False
        self._round_error = None
        self._refused = []
        size = self._max_batch
        done = 0
        try:
            barriers = self._serve(docs, waiters)
            done = len(docs)
            for start in range(0, len(datagrams), size):
                if late := self._take_submissions():
                    waiters += late[1]
                    barriers += self._serve(*late)
                _pause_collector()
                try:
                    for at, end in _slices(start, min(start + size, len(datagrams))):
                        self._merge_slice(datagrams, at, end)
                        done += end - at
                    self._flush()  # written while the next batch is parsed
                finally:
                    _resume_collector()
        except Exception as exc:  # a defect: count what it cost, answer every waiter
            # what a slice merged before it failed is not written: taken for not stored
            self.assembler.forget(self.assembler.abandon())
            lost = len(docs) + len(datagrams) - done
            log.exception("an ingest round failed; %d documents lost", lost)
            self.counters["lost_internal_error"] += lost
            self._round_error = StoreError(f"ingest failed: {exc!r:.200}")
        finally:
            self._settle()  # no write stays in flight past its round
        self._answer([w for w in waiters if not w[1].done()])
        return True

    def _serve(
        self, docs: list[Submitted], waiters: list[tuple[int, Future[None]]]
    ) -> list[tuple[int, Future[None]]]:
        """Write submitted ``docs`` and answer their submitters (``waiters``, by the end
        of their documents in ``docs``) once written; returns the barriers among
        ``waiters``, unanswered. An error of the datagrams' writes stays the round's."""
        self._settle()
        carried, self._round_error, refused = self._round_error, None, self._refused
        self._refused = []
        size = self._max_batch
        for start in range(0, len(docs), size):
            _pause_collector()
            try:
                for at, end in _slices(start, min(start + size, len(docs))):
                    self._merge_submitted(docs, at, end)
                self._flush()
            finally:
                _resume_collector()
        self._settle()
        previous = 0
        submissions: list[tuple[int, Future[None]]] = []
        barriers: list[tuple[int, Future[None]]] = []
        for end, future in waiters:
            (submissions if end > previous else barriers).append((end, future))
            previous = end
        self._answer(submissions)
        self._round_error, self._refused = carried, refused
        return barriers

    def _answer(self, waiters: list[tuple[int, Future[None]]]) -> None:
        """Complete ``waiters`` (submissions, by the end of their documents among those
        being written) with the round's error, their refused documents' error, or
        success."""
        error = self._round_error
        refused = self._refused_submissions(waiters) if self._refused else {}
        for end, future in waiters:
            if error is not None:
                future.set_exception(error)
            elif end in refused:
                future.set_exception(refused[end])
            else:
                future.set_result(None)

    def _refused_submissions(
        self, waiters: list[tuple[int, Future[None]]]
    ) -> dict[int, StoreError]:
        """The submissions (by the end of their documents among those being written)
        holding a document :meth:`_write` could not store, each with its error."""
        ends = [end for end, _ in waiters]
        refused: dict[int, StoreError] = {}
        for doc, exc, index in self._refused:
            if index is None:
                continue  # a datagram's: counted, nobody waits for it
            end = ends[bisect.bisect_right(ends, index)]
            refused[end] = StoreError(
                f"document {doc.get('id')!r} could not be stored: {exc!r:.200}"
            )
        return refused

    def _merge_slice(self, datagrams: list[bytes], start: int, end: int) -> None:
        """Parse, validate and merge ``datagrams[start:end]`` :data:`_PART` at a time
        into one batch, encoded once: its tables join those to write in the next batch
        (:meth:`_flush`) as :meth:`_write`'s do. Should merging or encoding fail, the
        batch is dropped, its traces forgotten, and its valid documents so far parsed
        again and written by :meth:`_write`, which finds the documents that fail."""
        assembler = self.assembler
        texts: list[bytes] = []  # the valid documents' JSON, for that retry
        for at in range(start, end, _PART):
            parsed, valid = self._parse(datagrams[at : min(at + _PART, end)])
            if not parsed:
                continue
            texts += valid
            try:
                assembler.merge(parsed)
            except Exception:
                self._retry(texts)  # then the slice's other parts in a batch of their own
                texts = []
            del parsed  # freed before the next part is parsed
        if not texts:
            return
        try:
            batch = assembler.finish()
            tables = encode_batch(batch)
        except Exception:
            self._retry(texts)
            return
        self._merged.append((len(texts), len(batch), tables))

    def _merge_submitted(self, docs: list[Submitted], start: int, end: int) -> None:
        """Merge submitted ``docs[start:end]`` :data:`_PART` at a time into one batch,
        encoded once, as :meth:`_merge_slice` does datagrams: those given as JSON text are
        parsed a part at a time (validated by their submitter already), and each part's
        freed before the next is parsed. Should merging or encoding fail, the batch is
        dropped, its traces forgotten, and its documents written by :meth:`_write`."""
        assembler = self.assembler
        first = start  # of the documents in the batch in the making
        for at in range(start, end, _PART):
            stop = min(at + _PART, end)
            part = self._parsed(docs, at, stop)
            try:
                assembler.merge(part)
            except Exception:
                self._retry(docs[first:stop], first)  # then the others in a batch of their own
                first = stop
            del part  # freed before the next part is parsed
        if first == end:
            return
        try:
            batch = assembler.finish()
            tables = encode_batch(batch)
        except Exception:
            self._retry(docs[first:end], first)
            return
        self._merged.append((end - first, len(batch), tables))

    def _parsed(self, docs: list[Submitted], start: int, end: int) -> list[Mapping[str, Any]]:
        """``docs[start:end]`` parsed. A text that is no JSON (which the submitter, having
        parsed it, rules out) is refused alone, as :meth:`_write` refuses a document it
        cannot store: counted, and its submission answered with the error."""
        loads = orjson.loads
        try:
            return [loads(doc) if isinstance(doc, bytes) else doc for doc in docs[start:end]]
        except orjson.JSONDecodeError:
            pass
        parsed: list[Mapping[str, Any]] = []
        for index in range(start, end):
            doc = docs[index]
            if isinstance(doc, bytes):
                try:
                    doc = loads(doc)
                except orjson.JSONDecodeError as exc:
                    self.counters["lost_unstorable"] += 1
                    log.error("a submitted document is no JSON: %r", exc)
                    self._refused.append(({}, exc, index))
                    continue
            parsed.append(doc)
        return parsed

    def _retry(self, texts: Sequence[Submitted], at: int | None = None) -> None:
        """After merging or encoding a slice failed: drop its batch, forget its traces,
        and write its valid documents (``texts``, parsed or as JSON text; ``at``: the
        place of the first among the submitted documents being written, None for
        datagrams) by :meth:`_write`, each run of them between texts that are no JSON
        (refused as their part was parsed, :meth:`_parsed`) on its own."""
        self._settle()
        self.assembler.abandon()
        runs: list[tuple[int | None, list[Mapping[str, Any]]]] = [(at, [])]
        for offset, text in enumerate(texts):
            if isinstance(text, bytes):
                try:
                    text = orjson.loads(text)
                except orjson.JSONDecodeError:
                    runs.append((None if at is None else at + offset + 1, []))
                    continue
            runs[-1][1].append(text)
        self.assembler.forget({doc["trace_id"] for _, run in runs for doc in run})
        for first, run in runs:
            if run:
                self._write(run, first)

    def _parse(self, datagrams: list[bytes]) -> tuple[list[Mapping[str, Any]], list[bytes]]:
        """The valid documents among ``datagrams``, in order, and their JSON texts; the
        others are counted by reason (``udp_invalid_<reason>``) and dropped. Each is
        validated as soon as it is parsed, while its objects are still in the processor's
        cache (:func:`~fluoroscope.model.documents.validate_document`, compiled)."""
        now = self._clock()
        loads = orjson.loads
        validate = validate_document
        retention = self._retention
        invalid: Counter[str] = Counter()
        # (document, its JSON text), in order
        found: list[tuple[Any, bytes]] = []
        for body in datagrams:
            try:
                doc = loads(body)
            except orjson.JSONDecodeError:
                if body[:2] != b"T1":
                    invalid["udp_invalid_json"] += 1
                    continue
                found.extend(self._transit(body, now, invalid))
                continue
            try:
                validate(doc, now=now, max_age=retention, raw=body)
            except InvalidDocument as exc:
                invalid[f"udp_invalid_{refusal_reason(exc.code)}"] += 1
                continue
            found.append((doc, body))
        owns = self._owns
        parsed: list[Mapping[str, Any]] = []
        texts: list[bytes] = []
        strays: list[tuple[str, bytes]] = []
        for doc, raw in found:
            if owns is not None and not owns(doc["trace_id"]):
                strays.append((doc["trace_id"], raw))
                continue
            parsed.append(doc)
            texts.append(raw)
        if invalid:
            self.counters.update(invalid)
        if strays and self._stray is not None:
            self.counters["udp_rerouted"] += len(strays)
            self._stray(strays)
        return parsed, texts

    def _transit(
        self, body: bytes, now: float, invalid: Counter[str]
    ) -> list[tuple[dict[str, Any], bytes]]:
        """The valid documents of a ``T1S`` datagram's spans (counted in ``invalid``)."""
        from fluoroscope.ingest.otlp import Translator, transit_documents

        if self._otlp is None:
            self._otlp = Translator()
        docs, out, outcome = transit_documents(body, self._otlp, now=now, max_age=self._retention)
        if outcome == "sampled":
            invalid["udp_otlp_documents"] += len(docs)
            if out.rejected:
                invalid["udp_otlp_rejected"] += out.rejected
        elif outcome == "unsampled":
            invalid["udp_otlp_unsampled"] += 1
        else:
            invalid[f"udp_invalid_otlp_{outcome}"] += 1
        return docs

    def _write(self, docs: Sequence[Mapping[str, Any]], at: int | None = None) -> None:
        """Merge and encode ``docs`` (worker thread); their tables join those to write
        in the next batch (:meth:`_flush`). ``at``: the place of ``docs[0]`` among the
        submitted documents being written (None for datagrams), for :meth:`_answer`.

        Validation accepts nothing that merging or encoding refuses; should a document
        get through anyway, the batch is split in halves until the documents that fail
        are alone: those are dropped and counted (``lost_unstorable``), the others
        written. The failed attempt's traces are forgotten first, so nothing it merged
        but never wrote is taken for stored."""
        try:
            batch = self.assembler.assemble(docs)
            tables = encode_batch(batch)
        except Exception as exc:
            self._settle()
            self.assembler.forget({doc["trace_id"] for doc in docs})
            if len(docs) > 1:
                half = len(docs) // 2
                self._write(docs[:half], at)
                self._write(docs[half:], None if at is None else at + half)
                return
            self.counters["lost_unstorable"] += 1
            self._unstorable += 1
            if self._unstorable & (self._unstorable - 1) == 0:  # the 1st, 2nd, 4th, ...
                log.error(
                    "a valid document could not be stored (%d so far): %r (trace %s, id %r)",
                    self._unstorable,
                    exc,
                    docs[0]["trace_id"],
                    docs[0].get("id"),
                )
            self._refused.append((docs[0], exc, at))
            return
        self._merged.append((len(docs), len(batch), tables))
