"""The server's link to one ingest worker (:class:`_Shard`), for
:class:`~fluoroscope.ingest.process.IngestProcess`.

A link starts its worker process (``python -m fluoroscope.ingest.worker``, numpy and
pandas kept out: :mod:`fluoroscope.ingest.keepout`), restarts it when it dies (failing
its unacknowledged submissions and translations with :class:`StoreUnavailable`, counted
as ``worker_restarts``), and runs the threads that talk to it: a writer thread sends the
frames queued in its ``outbox``, so no caller ever blocks on the worker's pipe; a reader
thread reads the worker's frames ahead (bounded), passing translations on and taking
counters as it reads them; a hub thread handles the others in order (insert - several
queued batches at once -, acknowledge, answer reloads).

Contract: the link reads and calls only what :class:`_Owner` names of the process that
owns it; the state the two share (the link's ``queued``, ``waiting``, ``translating``,
``fed``, ``worker``, ``done``, and the owner's) is guarded by the owner's lock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import Future
from typing import Any, Final, Protocol

import orjson

from fluoroscope.ingest.frames import grow_pipe, write_frame
from fluoroscope.ingest.otlp.options import TranslateOptions, encode_options
from fluoroscope.ingest.readahead import ReadAhead
from fluoroscope.ingest.translation import Translating
from fluoroscope.ingest.worker import (
    ACK,
    ACK_FRAME,
    BATCH,
    COUNTERS,
    DATAGRAMS,
    RELOAD,
    STRAY,
    TRANSLATED,
)
from fluoroscope.model.errors import StoreUnavailable
from fluoroscope.store.store import Store

__all__: list[str] = []  # for fluoroscope.ingest.process only

log = logging.getLogger("fluoroscope.ingest")


_RESPAWN_PAUSE: Final = 1.0
_COALESCE: Final = 16  # batches inserted together at most


class _Owner(Protocol):
    """What a link reads and calls of the
    :class:`~fluoroscope.ingest.process.IngestProcess` that owns it: the settings its
    worker is started with, the state guarded by its lock, and the handlers of the
    worker's frames (hub thread; ``_translated``: the reader thread)."""

    _lock: threading.Lock
    _store: Store
    _retention: float
    _cached: int
    _max_bytes: int
    _contributions: bool
    _otlp: TranslateOptions | None
    _closing: bool
    _in_flight: int
    _own: Counter[str]

    def _insert(self, shard: _Shard, batches: list[bytes]) -> None: ...

    def _translated(self, shard: _Shard, payload: bytes) -> None: ...

    def _acknowledged(self, shard: _Shard, seq: int, status: int) -> None: ...

    def _answer_reload(self, shard: _Shard, payload: bytes) -> None: ...

    def _reroute(self, payload: bytes) -> None: ...


class _Shard:
    """One ingest worker: its process, the frames queued for it, and the threads that
    talk to it. State shared with the owner is guarded by the owner's lock."""

    def __init__(self, owner: _Owner, index: int, count: int) -> None:
        self._owner = owner
        self._index = index
        self._count = count
        self.outbox: queue.SimpleQueue[tuple[int, list[bytes]] | None] = queue.SimpleQueue()
        self.queued = 0  # bytes of datagrams in the outbox
        self.waiting: dict[int, tuple[Future[None], int]] = {}  # seq -> (future, bytes)
        self.translating: dict[int, Translating] = {}  # seq -> OTLP translation
        self.round_error: BaseException | None = None
        self.after_ack = False
        self.fed = False  # given documents since its last batch (guarded by the lock)
        self.done: Counter[str] = Counter()  # counters of this shard's workers that ended
        self.worker: dict[str, int] = {}
        self.cached_now = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._hub: threading.Thread | None = None
        self._writer: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._hub = threading.Thread(
            target=self._run_hub, name=f"fluoroscope-hub-{self._index}", daemon=True
        )
        self._hub.start()

    def join(self, timeout: float) -> None:
        """Wait for the worker to finish (after ``STOP``); kill it if it does not."""
        if self._hub is not None:
            self._hub.join(timeout)
            if self._hub.is_alive():
                log.error("ingest worker %d did not finish within %.0f s", self._index, timeout)
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def _spawn(self) -> None:
        owner = self._owner
        self._proc = proc = subprocess.Popen(
            [
                # numpy and pandas kept out of the worker from its first import (keepout)
                sys.executable, "-m", "fluoroscope.ingest.keepout", "fluoroscope.ingest.worker",
                "--shard", str(self._index),
                "--shards", str(self._count),
                "--retention", repr(owner._retention),
                "--stored-until", str(owner._store.max_trace_ts()),
                "--cached-traces", str(owner._cached),
                "--max-buffered-bytes", str(max(1, owner._max_bytes // self._count)),
                *(["--contributions"] if owner._contributions else []),
                *(["--otlp-options", encode_options(owner._otlp)] if owner._otlp else []),
                "--parent", str(os.getpid()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )  # fmt: skip
        grow_pipe(proc.stdin)
        grow_pipe(proc.stdout)
        self._writer = threading.Thread(
            target=self._write_to,
            args=(proc, self.outbox),
            name=f"fluoroscope-to-worker-{self._index}",
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
        lock = self._owner._lock
        try:
            while (item := outbox.get()) is not None:
                kind, parts = item
                write_frame(stdin, kind, *parts)
                if kind == DATAGRAMS:
                    with lock:
                        if outbox is self.outbox:
                            self.queued -= len(parts[0])
        except (BrokenPipeError, ValueError, OSError):
            pass  # the worker is gone; the hub notices and restarts it
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _run_hub(self) -> None:
        owner = self._owner
        while True:
            proc = self._proc
            assert proc is not None and proc.stdout is not None
            # A translation is passed on as soon as it is read: were it queued, it would
            # wait for the inserts of the batches read before it, and its documents would
            # reach their owners one insert round later (measured: 4x the latency).
            # Counters are taken as read too: queued, the worker's snapshot every 0.1 s
            # sat between its batches (one every 0.2 s) and ended each coalescing after
            # one batch, so once an insert took longer than a beat (a loaded machine:
            # 0.4-1 s) the batches queued up without bound, one insert each - freshness
            # of ``fluoroscope demo --rate 8`` past 50 s and growing at load 30.
            frames = ReadAhead(
                proc.stdout, owner._max_bytes // (2 * self._count), self._take_at_once
            )
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
                    owner._insert(self, batches)
            except Exception:
                log.exception("talking to ingest worker %d failed; restarting it", self._index)
                proc.kill()  # its state no longer matches ours
            frames.close()
            code = proc.wait()
            with contextlib.suppress(OSError):
                proc.stdout.close()
            with owner._lock:
                self.done.update(self.worker)
                self.worker = {}
                waiting, self.waiting = self.waiting, {}
                translating, self.translating = self.translating, {}
                owner._in_flight -= sum(size for _, size in waiting.values())
                closing = owner._closing
                # Frames queued from now on are for the next worker.
                old, self.outbox = self.outbox, queue.SimpleQueue()
                self.queued = 0
            old.put(None)  # ends the old writer thread if it still waits
            for future, _ in waiting.values():
                future.set_exception(StoreUnavailable("the ingest worker stopped"))
            for translation in translating.values():
                translation.fail(StoreUnavailable("the ingest worker stopped"))
            if closing and code == 0:
                return
            log.error("ingest worker %d exited (%s); restarting it", self._index, code)
            with owner._lock:
                owner._own["worker_restarts"] += 1
            if self._writer is not None:
                self._writer.join()
            time.sleep(_RESPAWN_PAUSE)
            if closing:
                return
            self._spawn()

    def _take_at_once(self, kind: int, payload: bytes) -> bool:
        """Handle a ``TRANSLATED`` or ``COUNTERS`` frame (the reader thread); False for
        other frames. A translation's own documents' ``ACK`` follows it, so it is handled
        before that ``ACK``; counters are cumulative snapshots that wait for nothing."""
        if kind == COUNTERS:
            self._handle(kind, payload)
            return True
        if kind != TRANSLATED:
            return False
        try:
            self._owner._translated(self, payload)
        except Exception:  # a defect: the translation's future stays unanswered (503)
            log.exception("passing on a translation of ingest worker %d failed", self._index)
        return True

    def _handle(self, kind: int, payload: bytes) -> None:
        owner = self._owner
        if kind == ACK:
            self.after_ack = True
            seq, status = ACK_FRAME.unpack_from(payload)
            owner._acknowledged(self, seq, status)
        elif kind == RELOAD:
            owner._answer_reload(self, payload)
        elif kind == STRAY:
            owner._reroute(payload)
        elif kind == COUNTERS:
            snapshot: dict[str, Any] = orjson.loads(payload)
            with owner._lock:
                self.worker = snapshot["counters"]
            self.cached_now = int(snapshot["cached_traces"])
