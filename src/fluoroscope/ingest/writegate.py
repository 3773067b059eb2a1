"""Whether the store takes writes: a full disk or a read-only store, said once.

When an insert fails with :class:`~fluoroscope.model.errors.StoreUnwritable` (the
engine's disk is full, or it is read-only), trying again at once cannot help, and trying
every batch would make every batch wait for a failing insert, and log a line each time.
:class:`WriteGate` remembers the failure: until ``retry_after`` seconds have passed since
the last failed insert, :meth:`WriteGate.refusal` returns the error, so that callers
refuse writes at once (PutTraceSegments answers 503, UDP documents are counted as
dropped); after that the next insert is tried for real, and its outcome closes or opens
the gate again. The first failure is logged in one line, a change of reason in one
more, and the first success after them in one line saying how long writes were
refused. Thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

from fluoroscope.model.errors import StoreUnwritable

__all__ = ["WriteGate"]

log = logging.getLogger("fluoroscope.ingest")

RETRY_AFTER: Final = 0.5  # seconds between two inserts tried while the store refuses


class WriteGate:
    """See the module docstring."""

    def __init__(
        self, retry_after: float = RETRY_AFTER, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._retry_after = retry_after
        self._clock = clock
        self._lock = threading.Lock()
        self._error: StoreUnwritable | None = None  # None while writes work
        self._since = 0.0  # when writes started failing
        self._tried = 0.0  # the last failed insert

    def refusal(self) -> StoreUnwritable | None:
        """The store's error (a new one, to raise) while writes are known to fail and no
        insert is due; else None (go ahead and insert)."""
        with self._lock:
            error = self._error
            if error is None or self._clock() - self._tried >= self._retry_after:
                return None
        return StoreUnwritable(str(error), reason=error.reason)

    def failed(self, error: StoreUnwritable) -> None:
        """An insert failed with ``error``."""
        with self._lock:
            now = self._clock()
            previous, self._error, self._tried = self._error, error, now
            if previous is None:
                self._since = now
            elif previous.reason == error.reason:
                return
        log.error(
            "the store cannot take writes (%s): refusing writes (HTTP 503; UDP documents "
            "are counted as dropped) until it can; reads go on. %s",
            error.reason,
            _first_line(str(error)),
        )

    def succeeded(self) -> None:
        """An insert succeeded."""
        with self._lock:
            if self._error is None:
                return
            reason, self._error = self._error.reason, None
            refused = self._clock() - self._since
        log.warning("the store takes writes again (%s for %.0f s)", reason, refused)


def _first_line(text: str, limit: int = 300) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[:limit] + "…"
