"""Helpers of the ingest side of the server (:mod:`fluoroscope.ingest.process`): reading
a worker's frames ahead, and a future done once several are."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import IO

from fluoroscope.ingest.frames import read_frame
from fluoroscope.ingest.worker import BATCH

__all__ = ["ReadAhead", "all_of"]

log = logging.getLogger("fluoroscope.ingest")


class ReadAhead:
    """Frames read from ``stream`` by a thread of their own, at most ``max_bytes`` ahead,
    so that batches waiting behind a busy engine are visible (and can go in together).
    A frame ``urgent`` takes (returns True for) is handled by that thread at once, not
    queued: it never waits behind an insert."""

    def __init__(
        self,
        stream: IO[bytes],
        max_bytes: int,
        urgent: Callable[[int, bytes], bool] | None = None,
    ) -> None:
        self._urgent = urgent
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
                if self._urgent is not None and self._urgent(*got):
                    continue
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


def all_of(futures: list[Future[None]]) -> Future[None]:
    """A future done once all ``futures`` are: failed with the first failure, if any."""
    if len(futures) == 1:
        return futures[0]
    combined: Future[None] = Future()
    if not futures:
        combined.set_result(None)
        return combined
    lock = threading.Lock()
    left = [len(futures)]
    failure: list[BaseException] = []

    def done(future: Future[None]) -> None:
        error = future.exception()
        with lock:
            left[0] -= 1
            if error is not None and not failure:
                failure.append(error)
            last = left[0] == 0
        if last:
            if failure:
                combined.set_exception(failure[0])
            else:
                combined.set_result(None)

    for future in futures:
        future.add_done_callback(done)
    return combined
