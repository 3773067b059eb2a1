"""The server process gives the memory it freed back to the OS, four times a second.

Two allocators in the server keep what is freed for later instead of returning it:

* chDB's jemalloc keeps freed pages for 5 s (its ``dirty_decay_ms``, compiled in; the
  ``MALLOC_CONF`` environment variable is not read). At a steady 10,000 segments/s it
  held ~45 MB and kept 80-115 MB resident; ``SYSTEM JEMALLOC PURGE`` returns the rest
  (:meth:`~fluoroscope.store.store.Store.release_memory`).
* glibc's malloc keeps freed chunks in its arena (Python objects above 512 bytes: the
  ingest workers' Arrow IPC frames, datagrams on their way to a worker, HTTP bodies),
  returned by ``malloc_trim(0)``; one arena for every thread
  (:mod:`~fluoroscope.ingest.mallocarena`), where that call reaches what they freed.

Every 0.25 s rather than every second: measured at 10,000 segments/s offered (idle, three
interleaved pairs, ``benchmarks/ingest.py``), all processes' RSS at the largest sample
604/601/591 -> 582/574/572 MB (the server's 321/311/307 -> 301/288/298), CPU per document
167.7/166.8/164.4 -> 160.0/167.1/169.7 us: a purge after an insert costs 3-5 ms, ~0.2 ms
when nothing was freed.

Contract: :meth:`MemoryReleaser.start` starts a daemon thread; :meth:`close` stops it
(blocking, at most one release long). A release never raises.
"""

from __future__ import annotations

import logging
import threading

from fluoroscope.ingest.heap import malloc_trim
from fluoroscope.store.store import Store

__all__ = ["MemoryReleaser"]

log = logging.getLogger("fluoroscope.server")


class MemoryReleaser:
    """Every ``interval`` seconds (0.25 by default), the engine's and then glibc's freed
    memory go back to the OS (see the module docstring)."""

    def __init__(self, store: Store, interval: float = 0.25) -> None:
        self._store = store
        self._interval = interval
        self._trim = malloc_trim()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.releases = 0

    def start(self) -> None:
        """Start releasing in a daemon thread. Call once."""
        self._thread = threading.Thread(target=self._run, name="fluoroscope-memory", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread (blocking, at most one release long). Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def release(self) -> None:
        """Return what the engine and glibc freed, now. Blocking; never raises."""
        try:
            self._store.release_memory()
            if self._trim is not None:
                self._trim()
        except Exception:  # best effort: memory is given back, or kept a little longer
            log.debug("releasing memory failed", exc_info=True)
        self.releases += 1

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.release()
