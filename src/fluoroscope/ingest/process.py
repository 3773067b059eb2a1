"""Ingest as seen from the server: a worker process feeding this process's store.

:class:`IngestProcess` starts the worker (:mod:`fluoroscope.ingest.worker`), which
receives UDP, parses, merges and encodes; this side inserts the Arrow batches it sends,
answers its reloads of evicted traces from the store, forwards PutTraceSegments
documents to it and reports its counters. Only inserts (the engine releases the GIL)
and a little framing run here, so the API stays responsive under any ingest load.

Contract: :meth:`IngestProcess.submit` returns a future that completes once the
documents are inserted (or fails with the store's error, or :class:`Throttled` when the
worker's buffer is full); it raises :class:`Throttled` at once when too many bytes are
already on their way. A worker that dies is restarted (its unacknowledged submissions
fail with :class:`StoreUnavailable`; what it had accepted from UDP but not yet sent is
lost, and counted as ``worker_restarts``). :meth:`IngestProcess.close` stops
receiving, stores everything accepted, and returns.

Threads: a reader thread reads the worker's frames ahead (bounded); a hub thread handles
them in order (insert - several queued batches at once -, acknowledge, answer reloads,
take counters); a writer thread sends frames to the worker, so no caller ever blocks on
its pipe.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import IO, Any, Final

import orjson
import pyarrow as pa

from fluoroscope.ingest.frames import grow_pipe, pack_bodies, read_frame, write_frame
from fluoroscope.ingest.pipeline import with_retries
from fluoroscope.ingest.worker import (
    ACK,
    ACK_FRAME,
    BATCH,
    BATCH_HEAD,
    CONTRIBUTE,
    COUNTERS,
    DOCS,
    RELOAD,
    REQUEST,
    SEQ,
    STOP,
    TRACES,
    decode_tables,
)
from fluoroscope.model.errors import StoreUnavailable, Throttled
from fluoroscope.store.store import Store

__all__ = ["IngestProcess", "Prepare"]

Prepare = Callable[[list[list[tuple[str, pa.Table]]]], list[list[tuple[str, pa.Table]]]]
"""An insert round's batches (each its tables, as decoded) -> the tables to insert."""

log = logging.getLogger("fluoroscope.ingest")

_RESPAWN_PAUSE: Final = 1.0
_COALESCE: Final = 16  # batches inserted together at most


class _ReadAhead:
    """Frames read from ``stream`` by a thread of their own, at most ``max_bytes`` ahead,
    so that batches waiting behind a busy engine are visible (and can go in together)."""

    def __init__(self, stream: IO[bytes], max_bytes: int) -> None:
        self._items: deque[tuple[int, bytes]] = deque()
        self._bytes = 0
        self._max = max_bytes
        self._eof = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(
            target=self._read, args=(stream,), name="fluoroscope-from-worker", daemon=True
        )
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        try:
            while (got := read_frame(stream)) is not None:
                with self._cond:
                    while self._bytes > self._max and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    self._items.append(got)
                    self._bytes += len(got[1])
                    self._cond.notify_all()
        except (OSError, ValueError):
            log.exception("reading from the ingest worker failed")
        finally:
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def next(self) -> tuple[int, bytes] | None:
        """The next frame; None once the stream has ended and every frame was taken."""
        with self._cond:
            while not self._items and not self._eof:
                self._cond.wait()
            return self._take() if self._items else None

    def next_batch(self) -> bytes | None:
        """The next frame's payload if it is a ``BATCH`` already read; never waits."""
        with self._cond:
            if self._items and self._items[0][0] == BATCH:
                return self._take()[1]
            return None

    def _take(self) -> tuple[int, bytes]:
        item = self._items.popleft()
        self._bytes -= len(item[1])
        self._cond.notify_all()
        return item

    def close(self) -> None:
        """Stop reading ahead (after the stream ended, or when giving up on it)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()


class IngestProcess:
    """Runs the ingest worker for ``udp_sock`` and stores what it sends (module docstring)."""

    def __init__(
        self,
        store: Store,
        udp_sock: socket.socket,
        *,
        retention_seconds: float,
        cached_traces: int = 20_000,
        max_buffered_bytes: int = 128 * 1024 * 1024,
        prepare: Prepare | None = None,
    ) -> None:
        """``prepare`` (settable until :meth:`start`): called on the hub thread with the
        batches of each insert round before they are inserted, returns what to insert
        (group statistics: ``query.groupstats``)."""
        self._store = store
        self.prepare = prepare
        self._contributions = False
        self._sock = udp_sock
        self._retention = retention_seconds
        self._cached = cached_traces
        self._max_bytes = max_buffered_bytes
        self._proc: subprocess.Popen[bytes] | None = None
        self._outbox: queue.SimpleQueue[tuple[int, list[bytes]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._seq = 0
        self._waiting: dict[int, tuple[Future[None], int]] = {}  # seq -> (future, bytes)
        self._in_flight = 0
        self._round_error: BaseException | None = None
        self._after_ack = False
        self._closing = False
        self._hub: threading.Thread | None = None
        self._writer: threading.Thread | None = None
        self._own: Counter[str] = Counter()
        self._done: Counter[str] = Counter()  # counters of workers that ended
        self._worker: dict[str, int] = {}
        self._cached_now = 0

    # -- public ----------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, int]:
        """This side's counters and the worker's (``udp_*`` from its receiver)."""
        with self._lock:
            total = self._own + self._done + Counter(self._worker)
        return dict(total)

    @property
    def cached_traces(self) -> int:
        """Traces whose state the worker keeps in memory (as last reported)."""
        return self._cached_now

    def start(self) -> None:
        """Start the worker and the threads talking to it. Call once."""
        self._spawn()
        self._hub = threading.Thread(target=self._run_hub, name="fluoroscope-hub", daemon=True)
        self._hub.start()

    def submit(self, docs: list[bytes], size: int) -> Future[None]:
        """Queue validated documents (their JSON); see the module docstring."""
        future: Future[None] = Future()
        with self._lock:
            if self._closing:
                raise Throttled("the server is shutting down")
            if self._in_flight + size > self._max_bytes:
                self._own["http_throttled"] += 1
                raise Throttled("ingest buffer is full; retry later")
            self._seq += 1
            seq = self._seq
            self._waiting[seq] = (future, size)
            self._in_flight += size
            # Under the lock: a worker's replacement swaps the queue (see _run_hub).
            self._outbox.put((DOCS, [SEQ.pack(seq), *pack_bodies(docs)]))
        return future

    def gather_contributions(self, on: bool) -> None:
        """Have the worker send each batch's graph contributions (or stop): needed while
        any group's statistics are kept."""
        with self._lock:
            self._contributions = on
            self._outbox.put((CONTRIBUTE, [b"\x01" if on else b"\x00"]))

    def close(self, timeout: float = 60.0) -> None:
        """Stop receiving, store everything accepted, stop the worker. Blocking."""
        with self._lock:
            self._closing = True
        self._outbox.put((STOP, []))
        if self._hub is not None:
            self._hub.join(timeout)
            if self._hub.is_alive():
                log.error("the ingest worker did not finish within %.0f s", timeout)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._sock.close()

    # -- the worker ------------------------------------------------------------------

    def _spawn(self) -> None:
        fd = self._sock.fileno()
        self._proc = proc = subprocess.Popen(
            [
                sys.executable, "-m", "fluoroscope.ingest.worker",
                "--udp-fd", str(fd),
                "--retention", repr(self._retention),
                "--stored-until", str(self._store.max_trace_ts()),
                "--cached-traces", str(self._cached),
                "--max-buffered-bytes", str(self._max_bytes),
                *(["--contributions"] if self._contributions else []),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=(fd,),
        )  # fmt: skip
        grow_pipe(proc.stdin)
        grow_pipe(proc.stdout)
        self._writer = threading.Thread(
            target=self._write_to,
            args=(proc, self._outbox),
            name="fluoroscope-to-worker",
            daemon=True,
        )
        self._writer.start()

    def _write_to(
        self,
        proc: subprocess.Popen[bytes],
        outbox: queue.SimpleQueue[tuple[int, list[bytes]] | None],
    ) -> None:
        """Send queued frames to ``proc``; close its stdin on the sentinel (or on error)."""
        stdin = proc.stdin
        assert stdin is not None
        try:
            while (item := outbox.get()) is not None:
                kind, parts = item
                write_frame(stdin, kind, *parts)
        except (BrokenPipeError, ValueError, OSError):
            pass  # the worker is gone; the hub notices and restarts it
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _run_hub(self) -> None:
        while True:
            proc = self._proc
            assert proc is not None and proc.stdout is not None
            frames = _ReadAhead(proc.stdout, self._max_bytes // 2)
            try:
                while (got := frames.next()) is not None:
                    kind, payload = got
                    if kind != BATCH:
                        self._handle(kind, payload)
                        continue
                    # Batches that queued up while the engine was busy go in together:
                    # each insert has a fixed cost, and fewer parts mean fewer merges.
                    batches = [payload]
                    while len(batches) < _COALESCE and (more := frames.next_batch()) is not None:
                        batches.append(more)
                    self._insert(batches)
            except Exception:
                log.exception("talking to the ingest worker failed; restarting it")
                proc.kill()  # its state no longer matches ours
            frames.close()
            code = proc.wait()
            with contextlib.suppress(OSError):
                proc.stdout.close()
            with self._lock:
                self._done.update(self._worker)
                self._worker = {}
                waiting, self._waiting = self._waiting, {}
                self._in_flight = 0
                closing = self._closing
                # Frames queued from now on are for the next worker.
                old, self._outbox = self._outbox, queue.SimpleQueue()
            old.put(None)  # ends the old writer thread if it still waits
            for future, _ in waiting.values():
                future.set_exception(StoreUnavailable("the ingest worker stopped"))
            if closing and code == 0:
                return
            log.error("the ingest worker exited (%s); restarting it", code)
            self._own["worker_restarts"] += 1
            if self._writer is not None:
                self._writer.join()
            time.sleep(_RESPAWN_PAUSE)
            if closing:
                return
            self._spawn()

    def _handle(self, kind: int, payload: bytes) -> None:
        if kind == ACK:
            self._after_ack = True
            seq, status = ACK_FRAME.unpack_from(payload)
            with self._lock:
                future, size = self._waiting.pop(seq, (None, 0))
                self._in_flight -= size
                error = self._round_error
            if future is None:
                return
            if status == 1:
                self._own["http_throttled"] += 1
                future.set_exception(Throttled("ingest buffer is full; retry later"))
            elif error is not None:
                future.set_exception(error)
            else:
                future.set_result(None)
        elif kind == RELOAD:
            (number,) = REQUEST.unpack_from(payload)
            trace_ids = orjson.loads(payload[REQUEST.size :])
            found = self._store.load_traces(trace_ids)
            answer = {
                tid: [t.ts, t.revision, [[d, p, s] for d, p, s in t.entities]]
                for tid, t in found.items()
            }
            self._outbox.put((TRACES, [REQUEST.pack(number), orjson.dumps(answer)]))
        elif kind == COUNTERS:
            snapshot: dict[str, Any] = orjson.loads(payload)
            with self._lock:
                self._worker = snapshot["counters"]
            self._cached_now = int(snapshot["cached_traces"])

    def _insert(self, batches: list[bytes]) -> None:
        if self._after_ack:
            # A batch after an acknowledgement starts a new round (a round's ACKs follow
            # all its batches). An error of a round without submissions lasts until the
            # next round that has some: conservative, never lax.
            self._after_ack = False
            self._round_error = None
        documents = entities = 0
        by_name: dict[str, list[pa.Table]] = {}
        decoded: list[list[tuple[str, pa.Table]]] = []
        for payload in batches:
            docs, ents = BATCH_HEAD.unpack_from(payload)
            documents += docs
            entities += ents
            decoded.append(decode_tables(payload))
        if self.prepare is not None:
            decoded = self.prepare(decoded)
        for tables in decoded:
            for name, table in tables:
                by_name.setdefault(name, []).append(table)
        tables = [
            (name, parts[0] if len(parts) == 1 else pa.concat_tables(parts))
            for name, parts in by_name.items()
        ]
        error = with_retries(lambda: self._store.insert_tables(tables))
        with self._lock:
            if error is None:
                self._own["stored_documents"] += documents
                self._own["stored_entities"] += entities
            else:
                self._own["lost_documents"] += documents
                self._round_error = error
