"""The batching log writer behind PutLogEvents.

Each insert into the engine costs 20-25 ms of CPU however few rows it holds (below),
so events are not inserted one PutLogEvents call at a time: :meth:`LogWriter.submit`
queues a validated batch for one stream and returns a future at once; a reader thread
takes everything queued meanwhile (up to ``max_insert_events``), reads it
(:func:`fluoroscope.ingest.logs.extract`) into one Arrow table and hands it to an
inserter thread, which inserts it and then completes every future of that insert. The
calls arriving during an insert accumulate: the busier the server, the larger the
inserts. A lone call is inserted at once when the writer was idle. While an insert
runs the reader does not take (a table it read would wait for the insert anyway) unless
``max_insert_events`` have gathered, so every call arriving during an insert joins the
next one; when an insert has just ended (less than ``linger_seconds`` ago) the reader
waits up to ``linger_seconds`` for ``linger_events`` events to gather - by default as
many as that insert answered plus those already queued when it answered them: the
callers it answered are the ones coming back, and a cohort split by a late call joins
up again at the next insert. Past ``linger_seconds`` it still waits while calls keep
arriving (a cohort's calls come in a burst, each within ``burst_seconds`` of the one
before), up to :data:`BURST_CAP` lingers after the insert.

Each insert costs the engine a part in three tables (the event table and the two
views that fill from it, ``log_index`` and ``log_requests``; the stream times were a
fourth until migration 20) whatever its size, ~10-15 ms of CPU for the event table
alone, so events per insert is the ingest rate. Before, the reader took what had arrived as soon as the
inserter took its previous table, which split the callers into two cohorts inserted
in turn, and lingered a fixed 50 ms for 20,000 events after each insert (a wait as
long as the insert when fewer callers are in flight). Measured through the HTTP API
(``python benchmarks/logs_api.py --seconds 8 --clients 16`` and ``--clients 4``, load
8-18, server CPU per event stored): 22.4 -> 15.4-16.7 us with 16 clients, 41.7 -> 21.3
us with 4 (7,755 -> 26,408 events/s).

Where an insert's fixed cost goes (measured here, embedded engine, ext4 without a
journal): a one-row insert into ``log_events`` costs 20-25 ms of CPU, against ~4 ms
into a ``Null`` table through the same ``Python()`` read; each part is ~12-14 files,
and ext4 (without a journal) scans past every recently deleted inode to create one -
the engine's merges delete parts all the time - so on this machine a file costs
0.3-0.7 ms of kernel CPU (``perf``: ``recently_deleted``/``find_inode_bit`` under
``ext4_create``, ~28 % of the server's CPU during the API benchmark). Hence events
per insert matter more than any per-event step. Tried and not kept (no gain beyond
the load's noise, load 6-15): reading the next insert's calls while one is inserted
(the inserter busy 45-50 -> 64-69 % of the time, same events/s, inserts no larger),
and lingering for every caller in flight (one cohort of 9-13k events per insert
instead of two of 7-8k: server CPU 19.1 -> 13.4 and 21.2 -> 16.0 us/event, but
events/s down from 59k to 37k and 26k to 22k, the inserter idle while the callers
come back).

Why one cohort stays one (a trace of the writer's steps during the API benchmark, 16
clients): a cohort's 16 calls reach :meth:`submit` within ~3 ms of each other, ~25 ms
after their answers; its encoding then takes ~25-35 ms and its insert ~35 ms: ~90 ms a
cycle, ~170k events/s while nothing else runs. When one call came back after the
linger (the machine busy for a moment), the reader took the calls already there, the
others arrived during that insert, and gathering "as many as the last insert
answered" found them already queued each time: two cohorts of ~8,000 inserted in turn
for good, twice the inserts per event (the slow runs' ~9.9k events per insert). The
target now adds the events queued when the insert answered, so the two halves join
up at the next insert, and a burst under way past the linger is waited for. The
stream times' once-a-second insert ran between an insert and its answers; it now
runs after them, while the callers send their next calls. Interleaved with the code
before (``benchmarks/logs_api.py``'s ``measure``, 16 clients, 4 runs each, load
5.5-7.7): events per insert 11.5-14.7k -> 14.1-15.0k, server CPU 9.7-13.2 -> 9.0-11.3
us/event (Python threads 4.6-6.1 -> 3.8-4.8), stored 32-61k -> 59-67k events/s, a
call's answer p50 138-187 -> 121-162 ms, p99 868-1,466 -> 783-931 ms (at that load,
the machine's run queue). Tried and not kept: extracting half of a large insert's
rows in a helper thread (Arrow's kernels release the GIL): no shorter at load 4-5,
where the other core is taken, and ~10 % more CPU (each half compiles every
expression).

Why the API benchmark was twice seen at 1-4k events/s with the server idle at load
43: no lost wakeup here (only the reader waits on the condition, every state it waits
on changes under the lock with a notify, and each wait is bounded by a state change
or the linger); at load 43 on 2 cores each runnable thread gets ~1/21 of a core, and
the server, which needs 11-15 us of CPU per event and runs one Python thread at a time,
gets ~0.05-0.1 core: 2-6k events/s, with its CPU share looking idle.

Contract:

* :meth:`LogWriter.submit` never blocks on the engine (a lock and a list append), so it
  may be called from the event loop; :meth:`LogWriter.put` is its awaitable form. The
  future completes (result ``None``) once the batch's events are durable, or fails with
  the engine's :class:`~fluoroscope.model.errors.StoreError` (with
  :class:`~fluoroscope.model.errors.StoreUnwritable` at once, without trying, while the
  store has just refused writes: see :class:`~fluoroscope.ingest.writegate.WriteGate`).
* Bounded: the bytes of the events queued or being inserted (message UTF-8 bytes + 26
  per event, as PutLogEvents counts them) never exceed ``max_bytes``; a batch that would
  exceed it is refused with :class:`~fluoroscope.model.errors.Throttled` (counted in
  :attr:`LogWriter.stats`), nothing of it stored: the API answers ThrottlingException and
  the client retries. A batch is never split: its events are stored together or not.
* Events of one batch get consecutive ``seq`` values, and batches get them in the order
  they were submitted (arrival order).
* A batch the reader cannot encode (it should not happen: callers validate) fails alone;
  the other batches of the same insert are stored.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from fluoroscope.ingest.logs import extract, message_array
from fluoroscope.ingest.writegate import WriteGate
from fluoroscope.model.errors import StoreError, StoreUnavailable, StoreUnwritable, Throttled
from fluoroscope.store.logs import EVENT_SCHEMA, LogStore

__all__ = ["EVENT_OVERHEAD", "LogWriter", "WriterStats", "batch_size", "encode"]

log = logging.getLogger("fluoroscope.ingest")

BURST_CAP: Final = 4
"""Longest the reader gathers after an insert, in lingers, while calls keep arriving."""
EVENT_OVERHEAD: Final = 26  # bytes PutLogEvents counts per event beside its message
_MS: Final = pa.timestamp("ms", tz="UTC")


@dataclass(slots=True)
class _Batch:
    group: str
    stream: str
    timestamps: Sequence[int]
    messages: Sequence[str | bytes]
    retention_days: int
    ingest_ms: int
    size: int
    future: concurrent.futures.Future[None]


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters since start: batches and events stored, refused as Throttled (buffer
    full) and failed (engine error); inserts made; bytes queued now; seconds spent
    reading batches into rows (Arrow, this process) and inserting them (the engine)."""

    stored_batches: int
    stored_events: int
    refused_batches: int
    refused_events: int
    failed_batches: int
    failed_events: int
    inserts: int
    pending_bytes: int
    read_seconds: float
    insert_seconds: float


def batch_size(messages: Sequence[str | bytes]) -> int:
    """A batch's size as PutLogEvents counts it (message UTF-8 bytes + 26 per event;
    a str's length stands for its UTF-8 bytes when it is ASCII, which is checked)."""
    total = 0
    for message in messages:
        total += len(message) if message.isascii() else len(_utf8(message))
    return total + EVENT_OVERHEAD * len(messages)


def _utf8(message: str | bytes) -> bytes:
    return message if isinstance(message, bytes) else message.encode("utf-8", "replace")


def encode(
    batches: Sequence[tuple[str, str, Sequence[int], Sequence[str | bytes], int, int]],
    first_seq: int,
) -> pa.Table:
    """Rows for ``log_events`` (:data:`~fluoroscope.store.logs.EVENT_SCHEMA`) from
    batches of ``(group, stream, timestamps ms, messages, retention days, ingestion ms)``,
    numbered from ``first_seq`` in order. Per-row work is Arrow compute: what a whole
    batch shares is given once per batch and repeated by Arrow (run-end decoding), and
    ``seq`` is a cumulative sum, which took the columns beside the messages and what
    ingest extracts from 0.47 to 0.10 us per event (16 batches of 1,000 of the
    benchmark's lines)."""
    kept = [batch for batch in batches if batch[3]]
    messages: list[str | bytes] = []
    stamps: list[int] = []
    ends: list[int] = []
    for _, _, timestamps, texts, _, _ in kept:
        if len(timestamps) != len(texts):
            raise ValueError("a batch has as many timestamps as messages")
        messages += texts
        stamps += timestamps
        ends.append(len(messages))
    count = len(messages)
    run_ends = pa.array(ends, pa.int64())

    def per_batch(index: int, kind: pa.DataType) -> pa.Array:
        values = pa.array([batch[index] for batch in kept], kind)
        if not count:
            return values
        repeated: pa.Array = pc.run_end_decode(pa.RunEndEncodedArray.from_arrays(run_ends, values))
        return repeated

    if count:
        seq = pc.cumulative_sum(pa.repeat(pa.scalar(1, pa.uint64()), count), start=first_seq - 1)
    else:
        seq = pa.array([], pa.uint64())
    column = message_array(messages)
    columns: dict[str, pa.Array] = {
        "log_group": per_batch(0, pa.string()),
        "stream": per_batch(1, pa.string()),
        "ts": pa.array(stamps, pa.int64()).cast(_MS),
        "ingest_ts": per_batch(5, pa.int64()).cast(_MS),
        "seq": seq,
        "message": column,
        **extract(column),
        "retention_days": per_batch(4, pa.uint16()),
    }
    return pa.Table.from_arrays([columns[name] for name in EVENT_SCHEMA.names], schema=EVENT_SCHEMA)


class LogWriter:
    """See the module docstring. ``max_bytes``: the bound on queued bytes;
    ``max_insert_events``: the most events one insert takes (whole batches; a single
    larger batch is still inserted alone); ``linger_seconds`` / ``linger_events``: how
    long and for how many events the reader waits while busy (None: as many as the last
    insert answered and those queued then; module docstring); ``burst_seconds``: past
    the linger, the longest gap between arriving calls the reader still waits for."""

    def __init__(
        self,
        store: LogStore,
        *,
        max_bytes: int = 64 << 20,
        max_insert_events: int = 200_000,
        gate: WriteGate | None = None,
        linger_seconds: float = 0.05,
        linger_events: int | None = None,
        burst_seconds: float = 0.02,
    ) -> None:
        self._store = store
        self._burst = float(burst_seconds)
        self._linger = float(linger_seconds)
        self._linger_events = None if linger_events is None else int(linger_events)
        self._queued_events = 0
        self._answered_events = 0  # events the last insert answered
        self._waiting_events = 0  # events queued when it answered them
        self._inserting = False  # the inserter holds a table it has not finished
        self._last_insert = -1e9  # monotonic time the last insert ended
        self._last_submit = -1e9  # monotonic time the last batch was queued
        self._max_bytes = int(max_bytes)
        self._max_events = int(max_insert_events)
        self._gate = gate or WriteGate()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._queue: list[_Batch] = []
        self._pending = 0
        self._closed = False
        self._counts = dict.fromkeys(
            ("stored_batches", "stored_events", "refused_batches", "refused_events",
             "failed_batches", "failed_events", "inserts"), 0,
        )  # fmt: skip
        self._seconds = [0.0, 0.0]  # reading, inserting
        self._handoff: queue.Queue[tuple[pa.Table, list[_Batch]] | None] = queue.Queue()
        # one read table at most waits for the inserter; the reader takes from the queue
        # only once the previous table left it, so what arrives meanwhile joins one insert
        self._slot = threading.Semaphore(1)
        self._reader = threading.Thread(target=self._read_loop, name="log-reader", daemon=True)
        self._inserter = threading.Thread(
            target=self._insert_loop, name="log-inserter", daemon=True
        )
        self._reader.start()
        self._inserter.start()

    @property
    def stats(self) -> WriterStats:
        with self._lock:
            return WriterStats(
                **self._counts,
                pending_bytes=self._pending,
                read_seconds=self._seconds[0],
                insert_seconds=self._seconds[1],
            )

    def submit(
        self,
        group: str,
        stream: str,
        timestamps: Sequence[int],
        messages: Sequence[str | bytes],
        *,
        retention_days: int | None = None,
        size: int | None = None,
    ) -> concurrent.futures.Future[None]:
        """Queue one validated batch of one stream (timestamps in ms, one per message);
        see the module docstring. ``retention_days``: the group's (else looked up in the
        store's cache); ``size``: the batch's PutLogEvents size when the caller computed
        it. Raises Throttled when the buffer is full, StoreUnwritable while the store
        refuses writes, StoreUnavailable once closed."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if not messages:
            future.set_result(None)
            return future
        days = self._store.retention_days(group) if retention_days is None else retention_days
        nbytes = batch_size(messages) if size is None else int(size)
        refusal = self._gate.refusal()
        if refusal is not None:
            raise refusal
        with self._lock:
            if self._closed:
                raise StoreUnavailable("the log writer is closed")
            if self._pending and self._pending + nbytes > self._max_bytes:
                self._counts["refused_batches"] += 1
                self._counts["refused_events"] += len(messages)
                raise Throttled(
                    f"the log write buffer is full ({self._pending} of {self._max_bytes} bytes)"
                )
            self._pending += nbytes
            self._queue.append(
                _Batch(group, stream, timestamps, messages, days, int(time.time() * 1000),
                       nbytes, future)
            )  # fmt: skip
            self._queued_events += len(messages)
            self._last_submit = time.monotonic()
            self._wake.notify()
        return future

    async def put(
        self,
        group: str,
        stream: str,
        timestamps: Sequence[int],
        messages: Sequence[str | bytes],
        *,
        retention_days: int | None = None,
        size: int | None = None,
    ) -> None:
        """:meth:`submit`, awaited until the events are durable (never blocks the loop)."""
        future = self.submit(
            group, stream, timestamps, messages, retention_days=retention_days, size=size
        )
        await asyncio.wrap_future(future)

    def close(self, timeout: float = 30.0) -> bool:
        """Stop taking batches, store those queued, stop the threads, write the stream
        times gathered. Returns False if that took longer than ``timeout`` seconds (the
        rest is then left undone)."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
        deadline = time.monotonic() + timeout
        self._reader.join(max(deadline - time.monotonic(), 0))
        self._inserter.join(max(deadline - time.monotonic(), 0))
        if self._inserter.is_alive():
            return False
        try:  # the stream times the store gathered from the last inserts
            self._store.flush()
        except StoreError as exc:
            log.error("log writer: the stream times were not written: %s", exc)
        return not self._reader.is_alive()

    # -- the threads -----------------------------------------------------------------

    def _take(self) -> list[_Batch] | None:
        with self._lock:
            while not self._queue and not self._closed:
                self._wake.wait()
            if not self._queue:
                return None
            # an insert runs: a table read now would wait for it anyway, so the calls
            # arriving meanwhile gather into the next insert (unless a full one is there)
            while not self._closed and self._inserting and self._queued_events < self._max_events:
                self._wake.wait()
            # busy (an insert ended moments ago): let calls gather into one insert
            gather = self._linger_events
            if gather is None:  # the callers the last insert answered, coming back
                gather = min(max(self._answered_events + self._waiting_events, 1),
                             self._max_events)  # fmt: skip
            started = time.monotonic()
            while not self._closed and self._queued_events < gather:
                # within the linger after the insert; past it, while calls still
                # arrive (a cohort's calls come in a burst), up to BURST_CAP lingers
                until = self._last_insert + self._linger
                cap = min(self._last_insert, started) + self._linger * BURST_CAP
                until = min(max(until, self._last_submit + self._burst), cap)
                if (left := until - time.monotonic()) <= 0:
                    break
                self._wake.wait(left)
            taken: list[_Batch] = []
            events = 0
            while self._queue and (
                not taken or events + len(self._queue[0].messages) <= self._max_events
            ):
                batch = self._queue.pop(0)
                taken.append(batch)
                events += len(batch.messages)
            self._queued_events -= events
            return taken

    def _read_loop(self) -> None:
        try:
            while True:
                self._slot.acquire()  # released when the inserter takes the last table
                if (taken := self._take()) is None:
                    break
                started = time.perf_counter()
                encoded = self._encode(taken)
                self._seconds[0] += time.perf_counter() - started
                if encoded is None:
                    self._slot.release()
                else:
                    self._handoff.put(encoded)
        finally:
            self._handoff.put(None)

    def _encode(self, taken: list[_Batch]) -> tuple[pa.Table, list[_Batch]] | None:
        try:
            first = self._store.reserve_seq(sum(len(b.messages) for b in taken))
        except Exception as exc:
            self._finish(taken, exc if isinstance(exc, StoreError) else StoreError(str(exc)))
            return None
        try:
            return self._table(taken, first), taken
        except Exception:
            log.exception("log writer: a batch could not be encoded")
        # find the batches that cannot be encoded: they fail, the others go on
        good: list[_Batch] = []
        bad: list[_Batch] = []
        for batch in taken:
            try:
                self._table([batch], first)
                good.append(batch)
            except Exception:
                bad.append(batch)
        self._finish(bad, StoreError("the batch could not be encoded"))
        return (self._table(good, first), good) if good else None

    @staticmethod
    def _table(batches: list[_Batch], first: int) -> pa.Table:
        return encode(
            [(b.group, b.stream, b.timestamps, b.messages, b.retention_days, b.ingest_ms)
             for b in batches],
            first,
        )  # fmt: skip

    def _insert_loop(self) -> None:
        while (item := self._handoff.get()) is not None:
            with self._lock:
                self._inserting = True
            self._slot.release()
            table, batches = item
            refusal = self._gate.refusal()
            if refusal is not None:
                self._finish(batches, refusal, inserted=True)
                continue
            started = time.perf_counter()
            try:
                self._store.write(table, write_times=False)
            except StoreError as exc:
                if isinstance(exc, StoreUnwritable):
                    self._gate.failed(exc)
                else:
                    log.error("log writer: the insert failed: %s", exc)
                self._finish(batches, exc, inserted=True)
                continue
            self._seconds[1] += time.perf_counter() - started
            self._gate.succeeded()
            self._finish(batches, None, inserted=True)
            # the stream times' own small insert, once a second: after the answers,
            # while their callers send their next calls
            self._store.write_times_due()

    def _finish(
        self, batches: list[_Batch], error: BaseException | None, *, inserted: bool = False
    ) -> None:
        events = sum(len(b.messages) for b in batches)
        with self._lock:
            self._last_insert = time.monotonic()
            if inserted:  # the inserter is done with its table
                self._inserting = False
                self._answered_events = events
                self._waiting_events = self._queued_events
            self._pending -= sum(b.size for b in batches)
            self._wake.notify_all()
            if error is None:
                self._counts["inserts"] += 1
                self._counts["stored_batches"] += len(batches)
                self._counts["stored_events"] += events
            else:
                self._counts["failed_batches"] += len(batches)
                self._counts["failed_events"] += events
        for batch in batches:
            if batch.future.set_running_or_notify_cancel():
                if error is None:
                    batch.future.set_result(None)
                else:
                    batch.future.set_exception(error)
