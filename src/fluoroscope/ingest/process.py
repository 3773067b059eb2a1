"""Ingest as seen from the server: worker processes feeding this process's store.

:class:`IngestProcess` runs the UDP receiving process
(:class:`~fluoroscope.ingest.receiver.UdpReceiver`) and ``workers`` ingest workers
(:mod:`fluoroscope.ingest.worker`), each owning the traces
:func:`~fluoroscope.ingest.shards.shard_of` assigns it, so parsing, merging and encoding
use every core. The receiving process sorts datagrams by worker; this side passes each
worker its datagrams and its share of PutTraceSegments documents (unparsed, in frames),
re-routes what a worker hands back as not its own, sends each OTLP request to the
workers to translate (to each of 2, for the spans of its own traces; with more, to one,
whose documents of others' traces it passes on, unopened: :meth:`IngestProcess.translate`),
inserts
the Arrow batches the workers send (one insert round at a time: the engine serializes
them anyway), answers their reloads of evicted traces from the store and adds up their
counters. Only inserts (the
engine releases the GIL) and a little framing run here, so the API stays responsive
under any ingest load.

Contract: :meth:`IngestProcess.submit` returns a future that completes once the
documents are inserted (or fails with the store's error, or :class:`Throttled` when a
worker's buffer is full); it raises :class:`Throttled` at once when too many bytes are
already on their way, and :class:`StoreUnwritable` while the store's disk is known to be
full or read-only (:mod:`fluoroscope.ingest.writegate`: meanwhile insert rounds fail at
once, without retries, and UDP documents are dropped on arrival, counted as
``udp_dropped_store_unwritable``; documents of rounds that failed so are counted as
``dropped_store_unwritable``, other failed rounds' as ``lost_documents``).

A worker that dies is restarted (its unacknowledged submissions fail with
:class:`StoreUnavailable`; what it had accepted from UDP but not yet sent is lost, and
counted as ``worker_restarts``). :meth:`IngestProcess.close` stops receiving, stores
everything accepted, and returns. If this process dies instead, the helper processes end
with it, at once (:mod:`fluoroscope.ingest.lifeline`); so call
:meth:`IngestProcess.start` from a thread that outlives the ingest (the main thread).

Threads, per worker (:mod:`fluoroscope.ingest.workerlink`): a reader thread reads the
worker's frames ahead (bounded), passing translations on and taking counters as it reads
them; a hub thread handles the others in order (insert - several queued batches at once
-, acknowledge, answer reloads); a writer thread sends frames to the worker, so no caller
ever blocks on its pipe.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Final

import orjson
import pyarrow as pa

from fluoroscope.ingest.frames import body_count, pack_bodies, unpack_bodies
from fluoroscope.ingest.histogram import INSERT_SECONDS, ROUND_DOCUMENTS, Histogram
from fluoroscope.ingest.otlp.options import TranslateOptions
from fluoroscope.ingest.readahead import all_of
from fluoroscope.ingest.receiver import UdpReceiver
from fluoroscope.ingest.retries import with_retries
from fluoroscope.ingest.shards import shard_of
from fluoroscope.ingest.translation import SHARE_OTLP_UP_TO, Translated, Translating
from fluoroscope.ingest.worker import (
    BATCH_HEAD,
    CONTRIBUTE,
    DATAGRAMS,
    DOCS,
    NOT_OTLP,
    OTLP,
    OTLP_HEAD,
    REQUEST,
    SEQ,
    STOP,
    TRACES,
    TRANSLATED_HEAD,
    table_streams,
)
from fluoroscope.ingest.workerlink import _Shard
from fluoroscope.ingest.writegate import WriteGate
from fluoroscope.model.errors import StoreError, StoreUnwritable, Throttled
from fluoroscope.store.arrowstreams import ArrowStream, ArrowStreams, join_streams, read_stream
from fluoroscope.store.encode import CONTRIBUTIONS
from fluoroscope.store.store import Store

__all__ = ["SHARE_OTLP_UP_TO", "IngestProcess", "Prepare", "Translated"]

Prepare = Callable[[list[list[tuple[str, pa.Table]]]], list[list[tuple[str, pa.Table]]]]
"""An insert round's batches (each its tables, as decoded) -> the tables to insert; called
for rounds with contributions (:data:`~fluoroscope.store.encode.CONTRIBUTIONS`) only."""

log = logging.getLogger("fluoroscope.ingest")


_QUEUED_DATAGRAM_BYTES: Final = 16 * 1024 * 1024  # per worker, waiting for its pipe
_BARRIER_TIMEOUT: Final = 60.0
_GATHER: Final = 0.05  # seconds an insert round waits for other workers' batches


class IngestProcess:
    """Runs the receiving process and the ingest workers for ``udp_sock`` and stores what
    they send (module docstring)."""

    def __init__(
        self,
        store: Store,
        udp_sock: socket.socket,
        *,
        retention_seconds: float,
        cached_traces: int = 20_000,
        max_buffered_bytes: int = 128 * 1024 * 1024,
        workers: int = 1,
        prepare: Prepare | None = None,
        otlp: TranslateOptions | None = None,
        share_otlp_up_to: int = SHARE_OTLP_UP_TO,
    ) -> None:
        """``otlp``: how the workers translate OTLP spans arriving over UDP (AWS's
        ``T1S`` datagrams). ``share_otlp_up_to``: up to how many workers each is sent
        every OTLP request (:meth:`translate`). ``cached_traces`` and ``max_buffered_bytes`` are shared out among the
        ``workers`` (1 to 255). ``prepare`` (settable until :meth:`start`): called with
        the batches of each insert round holding contributions (sent while
        :meth:`gather_contributions` is on) before they are inserted, returns what to
        insert (group statistics: ``query.groupstats``); rounds never overlap. Rounds
        without contributions are inserted as the workers encoded them, their tables'
        Arrow streams joined undecoded (:mod:`fluoroscope.store.arrowstreams`)."""
        if not 1 <= workers <= 255:
            raise ValueError(f"workers must be 1 to 255, got {workers}")
        self._store = store
        self.prepare = prepare
        self._contributions = False
        self._retention = retention_seconds
        self._otlp = otlp
        self._share_otlp_up_to = share_otlp_up_to
        self._cached = max(1, cached_traces // workers)
        self._max_bytes = max_buffered_bytes
        self._lock = threading.Lock()
        self._insert_lock = threading.Lock()
        self._gathering = threading.Condition(self._lock)  # a batch joined _pending
        self._pending: list[_Pending] = []  # batches waiting for the next insert round
        self._seq = 0
        self._in_flight = 0
        self._closing = False
        self._stopping = False  # STOP is queued for every worker
        self._own: Counter[str] = Counter()
        self._gate = WriteGate()
        self._shards = [_Shard(self, i, workers) for i in range(workers)]
        self._receiver = UdpReceiver(udp_sock, self._deliver, shards=workers)
        # Per insert round: the engine's insert time (retries included), and documents.
        self.insert_seconds = Histogram(INSERT_SECONDS)
        self.round_documents = Histogram(ROUND_DOCUMENTS)

    # -- public ----------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        """This side's counters, the workers' and the receiver's (``udp_*``)."""
        with self._lock:
            total = Counter(self._own)
            for shard in self._shards:
                total.update(shard.done)
                total.update(shard.worker)
        total.update({f"udp_{k}": v for k, v in self._receiver.counters.items()})
        return dict(total)

    @property
    def buffered(self) -> tuple[int, list[int]]:
        """Bytes of submitted documents not yet acknowledged, and per worker the bytes of
        datagrams waiting for its pipe (a snapshot; for monitoring)."""
        with self._lock:
            return self._in_flight, [shard.queued for shard in self._shards]

    @property
    def cached_traces(self) -> int:
        """Traces whose state the workers keep in memory (as last reported)."""
        return sum(shard.cached_now for shard in self._shards)

    def start(self) -> None:
        """Start the workers, the threads talking to them and the receiver. Call once."""
        for shard in self._shards:
            shard.start()
        self._receiver.start()

    def submit(self, docs: list[tuple[str, bytes]], size: int) -> Future[None]:
        """Queue validated documents (trace id, JSON); see the module docstring."""
        by_shard = self._by_shard((trace_id.encode(), body) for trace_id, body in docs)
        with self._lock:
            self._refuse(size)
            futures = [self._submit_to(self._shards[i], bodies) for i, bodies in by_shard.items()]
        return all_of(futures)

    def translate(self, request: bytes) -> Future[Translated]:
        """Have the workers translate the spans of ``request`` (an
        ``ExportTraceServiceRequest`` in protobuf) into documents
        (:mod:`fluoroscope.ingest.otlp`) and store them, using their cores, not this
        process's, and never parsing or splitting the request here. With 2 to
        ``share_otlp_up_to`` workers every worker is sent the request and translates the
        spans of the traces it owns, so nothing is handed on and the request's documents
        reach the workers' buffers together (at the same round, not one round apart,
        once its share was handed on); otherwise the workers take turns, and the
        translating worker hands the documents of other workers' traces to them through
        this process, unopened. The future is done once translated; its
        :attr:`Translated.stored` once the documents are stored, failing as
        :meth:`submit`'s would (Throttled when a worker's buffer is full, StoreError,
        StoreUnavailable). The future fails with StoreUnavailable if a translating worker
        stops first. Raises what :meth:`submit` raises at once: Throttled while shutting
        down or with too many bytes on their way, StoreUnwritable."""
        future: Future[Translated] = Future()
        with self._lock:
            self._refuse(len(request))
            self._seq += 1
            count = len(self._shards)
            share = 1 < count <= self._share_otlp_up_to
            shards = self._shards if share else [self._shards[self._seq % count]]
            pending = Translating(future, len(shards))
            head = OTLP_HEAD.pack(self._seq, 1 if share else 0)
            for shard in shards:
                shard.translating[self._seq] = pending
                shard.outbox.put((OTLP, [head, request]))
        return future

    def _translated(self, shard: _Shard, payload: bytes) -> None:
        """A ``TRANSLATED`` frame: pass the documents on to their owners, unopened; the
        request's future once every worker it was sent to has answered."""
        seq, rejected, length, valid, own, own_bytes = TRANSLATED_HEAD.unpack_from(payload)
        start = TRANSLATED_HEAD.size
        reasons = payload[start : start + length].decode("utf-8", "replace")
        stored: list[Future[None]] = []
        with self._lock:
            pending = shard.translating.pop(seq, None)
            if rejected != NOT_OTLP:
                parts = unpack_bodies(payload, start + length)
                if own:  # the translating worker submitted them to itself, numbered ``seq``
                    mine: Future[None] = Future()
                    shard.waiting[seq] = (mine, own_bytes)
                    self._in_flight += own_bytes
                    shard.fed = True
                    stored.append(mine)
                for owner, packed in zip(parts[::2], parts[1::2], strict=True):
                    stored.append(self._submit_packed(self._shards[owner[0]], packed))
            finished = pending is not None and pending.add(
                valid, rejected, reasons, stored, rejected == NOT_OTLP
            )
        if finished and pending is not None:
            pending.finish()

    def count(self, counts: Mapping[str, int]) -> None:
        """Add ``counts`` to this side's counters (the API's own: documents received and
        refused by PutTraceSegments). Any thread."""
        with self._lock:
            self._own.update(counts)

    def gather_contributions(self, on: bool) -> None:
        """Have the workers send each batch's graph contributions (or stop): needed while
        any group's statistics are kept."""
        with self._lock:
            self._contributions = on
            for shard in self._shards:
                shard.outbox.put((CONTRIBUTE, [b"\x01" if on else b"\x00"]))

    def close(self, timeout: float = 60.0) -> None:
        """Stop receiving, store everything accepted, stop the workers. Blocking."""
        self._receiver.stop()  # everything received is now queued for a worker
        with self._lock:
            self._closing = True
        # A worker hands back what it does not own while it merges: wait until every
        # worker has merged what it was given, then for what was handed on (which its
        # owner keeps), before telling them to stop.
        for _ in range(2 if len(self._shards) > 1 else 0):
            with self._lock:
                barriers = [self._submit_to(shard, []) for shard in self._shards]
            for barrier in barriers:
                with contextlib.suppress(Exception):
                    barrier.result(_BARRIER_TIMEOUT)
        with self._lock:
            # Handed back from now on (only if a barrier timed out): counted, not lost.
            self._stopping = True
            for shard in self._shards:
                shard.outbox.put((STOP, []))
        for shard in self._shards:
            shard.join(timeout)

    # -- for the shards --------------------------------------------------------------

    def _by_shard(self, documents: Iterable[tuple[bytes, bytes]]) -> dict[int, list[bytes]]:
        """(trace id, body) pairs' bodies, in order, by the worker owning their trace."""
        by_shard: dict[int, list[bytes]] = {}
        count = len(self._shards)
        for trace_id, body in documents:
            by_shard.setdefault(shard_of(trace_id, count), []).append(body)
        return by_shard

    def _refuse(self, size: int) -> None:
        """Raise what refuses a submission of ``size`` bytes now, if anything. Holding
        ``_lock``."""
        if self._closing:
            raise Throttled("the server is shutting down")
        if (refusal := self._gate.refusal()) is not None:
            self._own["http_refused_store_unwritable"] += 1
            raise refusal
        if self._in_flight + size > self._max_bytes:
            self._own["http_throttled"] += 1
            raise Throttled("ingest buffer is full; retry later")

    def _submit_to(self, shard: _Shard, bodies: list[bytes]) -> Future[None]:
        """Queue ``bodies`` for ``shard`` as one submission. Holding ``_lock``."""
        return self._submit_packed(shard, b"".join(pack_bodies(bodies)))

    def _submit_packed(self, shard: _Shard, packed: bytes) -> Future[None]:
        """Queue ``packed`` bodies (:func:`pack_bodies`, joined) for ``shard`` as one
        submission. Holding ``_lock``."""
        future: Future[None] = Future()
        size = len(packed)
        self._seq += 1
        shard.waiting[self._seq] = (future, size)
        self._in_flight += size
        shard.fed = shard.fed or size > 4  # not for a barrier
        # Under the lock: a worker's replacement swaps the queue (see _Shard.run_hub).
        shard.outbox.put((DOCS, [SEQ.pack(self._seq), packed]))
        return future

    def _deliver(self, index: int, packed: bytes, *, rerouted: bool = False) -> int:
        """Queue packed datagram bodies for worker ``index``; how many were taken.
        Handed-back bodies arriving once the workers are told to stop are counted as
        ``udp_dropped_stopping`` (and reported taken)."""
        shard = self._shards[index]
        with self._lock:
            if rerouted and self._stopping:
                self._own["udp_dropped_stopping"] += body_count(packed)
                return body_count(packed)
            if self._gate.refusal() is not None:  # never merged: workers stay in step
                self._own["udp_dropped_store_unwritable"] += body_count(packed)
                return body_count(packed)
            if shard.queued + len(packed) > _QUEUED_DATAGRAM_BYTES:
                return 0
            shard.queued += len(packed)
            shard.fed = True
            shard.outbox.put((DATAGRAMS, [packed]))
        return body_count(packed)

    def _reroute(self, payload: bytes) -> None:
        """Send each (trace id, body) of a ``STRAY`` payload to its trace's worker."""
        parts = unpack_bodies(payload)
        by_shard = self._by_shard(zip(parts[::2], parts[1::2], strict=True))
        for index, bodies in by_shard.items():
            taken = self._deliver(index, b"".join(pack_bodies(bodies)), rerouted=True)
            if taken < len(bodies):
                with self._lock:
                    self._own["udp_dropped_buffer_full"] += len(bodies) - taken

    def _acknowledged(self, shard: _Shard, seq: int, status: int) -> None:
        with self._lock:
            future, size = shard.waiting.pop(seq, (None, 0))
            self._in_flight -= size
            error = shard.round_error
        if future is None:
            return
        if status == 1:
            with self._lock:
                self._own["http_throttled"] += 1
            future.set_exception(Throttled("ingest buffer is full; retry later"))
        elif status == 2:
            future.set_exception(StoreError("documents of this request could not be stored"))
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(None)

    def _insert(self, shard: _Shard, batches: list[bytes]) -> None:
        """Insert ``shard``'s ``batches``; returns once they are in the store (or failed:
        the error becomes the shard's round error). Hub threads.

        Group commit: batches of every worker that arrive while the engine is busy go in
        together in the next round, run by whichever waiting hub gets there first; an
        insert has a fixed cost, and fewer parts mean less merging. The workers' rounds
        keep the same beat (:class:`~fluoroscope.ingest.pipeline.Pipeline`), so the
        batches of one beat arrive together: a round waits up to ``_GATHER`` seconds for
        the batches of every other worker given documents since its last batch. Measured
        with OTLP requests (whose documents every worker shares), that halved the insert
        rounds, each costing the engine ~20 ms of CPU per table whatever its size."""
        if shard.after_ack:
            # A batch after an acknowledgement starts a new round (a round's ACKs follow
            # all its batches). An error of a round without submissions lasts until the
            # next round that has some: conservative, never lax.
            shard.after_ack = False
            shard.round_error = None
        documents = entities = 0
        streams: list[list[tuple[str, ArrowStream]]] = []
        for payload in batches:
            docs, ents = BATCH_HEAD.unpack_from(payload)
            documents += docs
            entities += ents
            # checked here, as decoding them was: a malformed batch fails its worker only
            streams.append([(name, read_stream(s)) for name, s in table_streams(payload)])
        entry = _Pending(shard, streams, documents, entities)
        deadline = time.monotonic() + _GATHER
        with self._gathering:
            shard.fed = False
            self._pending.append(entry)
            self._gathering.notify_all()
            while any(e is entry for e in self._pending):  # not yet taken by a round
                arrived = {id(e.shard) for e in self._pending}
                if all(id(s) in arrived or not s.fed for s in self._shards):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._gathering.wait(left)
        with self._insert_lock:
            if entry.done:
                return  # another hub's round took it
            with self._lock:
                entries, self._pending = self._pending, []
            self._insert_round(entries)

    def _insert_round(self, entries: list[_Pending]) -> None:
        """One insert of every entry's tables. Holding ``_insert_lock``."""
        error: BaseException | None = self._gate.refusal()
        try:
            if error is not None:
                raise error  # not tried: the store refuses writes (see WriteGate)
            merged = self._merged([batch for entry in entries for batch in entry.streams])
            started = time.perf_counter()
            error = with_retries(lambda: self._store.insert_tables(merged))
            self.insert_seconds.observe(time.perf_counter() - started)
            if isinstance(error, StoreUnwritable):
                self._gate.failed(error)
            elif error is None:
                self._gate.succeeded()
        except StoreUnwritable as exc:
            error = exc
        except Exception as exc:  # a round's failure must not stop other workers' hubs
            log.exception("an insert round failed")
            error = exc
        self.round_documents.observe(sum(entry.documents for entry in entries))
        unwritable = isinstance(error, StoreUnwritable)
        lost = "dropped_store_unwritable" if unwritable else "lost_documents"
        with self._lock:
            for entry in entries:
                entry.done = True
                if error is None:
                    self._own["stored_documents"] += entry.documents
                    self._own["stored_entities"] += entry.entities
                else:
                    self._own[lost] += entry.documents
                    entry.shard.round_error = error

    def _merged(
        self, batches: list[list[tuple[str, ArrowStream]]]
    ) -> list[tuple[str, pa.Table | ArrowStreams]]:
        """A round's rows by table, in order: each table's streams joined undecoded, or,
        in a round with contributions and :attr:`prepare` set, decoded and prepared."""
        contributions = any(name == CONTRIBUTIONS for batch in batches for name, _ in batch)
        if self.prepare is None or not contributions:
            by_name: dict[str, list[ArrowStream]] = {}
            for batch in batches:
                for name, stream in batch:
                    if name != CONTRIBUTIONS:  # no table: nothing reads them here
                        by_name.setdefault(name, []).append(stream)
            return [(name, join_streams(streams)) for name, streams in by_name.items()]
        decoded = self.prepare([[(name, s.table()) for name, s in batch] for batch in batches])
        tables: dict[str, list[pa.Table]] = {}
        for batch_tables in decoded:
            for name, table in batch_tables:
                tables.setdefault(name, []).append(table)
        return [
            (name, parts[0] if len(parts) == 1 else pa.concat_tables(parts))
            for name, parts in tables.items()
        ]

    def _answer_reload(self, shard: _Shard, payload: bytes) -> None:
        (number,) = REQUEST.unpack_from(payload)
        trace_ids = orjson.loads(payload[REQUEST.size :])
        found = self._store.load_traces(trace_ids)
        answer = {
            tid: [t.ts, t.revision, [[d, p, s] for d, p, s in t.entities]]
            for tid, t in found.items()
        }
        shard.outbox.put((TRACES, [REQUEST.pack(number), orjson.dumps(answer)]))


@dataclass(slots=True)
class _Pending:
    """A hub's batches waiting for an insert round."""

    shard: _Shard
    streams: list[list[tuple[str, ArrowStream]]]  # per batch, its tables' Arrow streams
    documents: int
    entities: int
    done: bool = False
