"""The ingest pipeline's bounded buffers: documents queued by producers, taken a round
at a time by the worker (:class:`~fluoroscope.ingest.pipeline.Pipeline`, a
:class:`Buffers`).

Contract: the producers' methods (:meth:`Buffers.offer_datagrams`,
:meth:`Buffers.submit`) are safe in any thread and never block for long. Everything
queued holds at most ``max_buffered_bytes``: datagrams beyond it are dropped and counted
(``udp_dropped_full``), a submission beyond it refused with :class:`Throttled` (counted
as ``http_throttled``); once ``_closing`` is set, every datagram is dropped (counted so
too) and every submission refused (uncounted). The worker is woken (``_wake``) when
``max_batch`` documents of a kind are queued. The state is guarded by ``_lock``;
:meth:`Buffers._take` and :meth:`Buffers._take_submissions` (the worker's) empty the
buffers and release their bytes.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from fluoroscope.model.errors import Throttled

__all__ = ["Buffers", "Submitted"]


Submitted = Mapping[str, Any] | bytes
"""A submitted document: parsed, or its JSON text (parsed when merged)."""


class Buffers:
    """Documents queued for the worker, within a bound of bytes (see module docstring)."""

    def __init__(self, *, max_batch: int, max_buffered_bytes: int, counters: Counter[str]) -> None:
        """``counters``: where drops and refusals are counted (``udp_dropped_full``,
        ``http_throttled``)."""
        self._max_batch = max_batch
        self._max_bytes = max_buffered_bytes
        self.counters = counters
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._datagrams: list[bytes] = []
        self._docs: list[Submitted] = []
        self._waiters: list[tuple[int, Future[None]]] = []  # (docs queued so far, future)
        self._buffered = 0
        self._docs_bytes = 0  # of submitted documents, within _buffered
        self._closing = False

    # -- producers -------------------------------------------------------------------

    def offer_datagram(self, body: bytes) -> bool:
        """Queue one UDP document body (header already checked); False if dropped."""
        return self.offer_datagrams([body]) == 1

    def offer_datagrams(self, bodies: list[bytes]) -> int:
        """Queue UDP document bodies (headers already checked), in order, as far as the
        buffer allows; returns how many were queued (the rest are dropped and counted).
        Never blocks for long: any thread."""
        with self._lock:
            room = self._max_bytes - self._buffered
            if self._closing:
                room = 0
            taken = 0
            size = 0
            for body in bodies:
                if size + len(body) > room:
                    break
                size += len(body)
                taken += 1
            if taken == len(bodies):
                self._datagrams.extend(bodies)
            else:
                self._datagrams.extend(bodies[:taken])
                self.counters["udp_dropped_full"] += len(bodies) - taken
            self._buffered += size
            full = len(self._datagrams) >= self._max_batch
        if full:
            self._wake.set()
        return taken

    def submit(self, docs: Sequence[Submitted], size: int) -> Future[None]:
        """Queue validated documents (``size``: their bytes), each parsed or as its JSON
        text, which the worker parses a part at a time as it merges them (a queued text
        takes a fifth of its parsed document's memory, and is parsed while its merge
        finds it in the CPU's caches); the future completes once they are stored, or
        fails with the store's error. Any thread."""
        future: Future[None] = Future()
        with self._lock:
            if self._closing:
                raise Throttled("the server is shutting down")
            if self._buffered + size > self._max_bytes:
                self.counters["http_throttled"] += 1
                raise Throttled("ingest buffer is full; retry later")
            self._docs.extend(docs)
            self._buffered += size
            self._docs_bytes += size
            self._waiters.append((len(self._docs), future))
        if len(self._docs) >= self._max_batch:
            self._wake.set()
        return future

    # -- for the worker --------------------------------------------------------------

    def _take(
        self,
    ) -> tuple[list[bytes], list[Submitted], list[tuple[int, Future[None]]]]:
        with self._lock:
            datagrams, self._datagrams = self._datagrams, []
            docs, self._docs = self._docs, []
            waiters, self._waiters = self._waiters, []
            self._buffered = 0
            self._docs_bytes = 0
        return datagrams, docs, waiters

    def _take_submissions(
        self,
    ) -> tuple[list[Submitted], list[tuple[int, Future[None]]]] | None:
        """Submissions queued since the round began, taken out of the next round; None
        when there are none, or when a barrier is among them (a barrier also covers the
        datagrams queued before it, which the next round takes)."""
        with self._lock:
            ends = [0, *(end for end, _ in self._waiters)]
            if not self._docs or any(a == b for a, b in itertools.pairwise(ends)):
                return None
            docs, self._docs = self._docs, []
            waiters, self._waiters = self._waiters, []
            self._buffered -= self._docs_bytes
            self._docs_bytes = 0
        return docs, waiters
