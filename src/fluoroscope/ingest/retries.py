"""Store writes retried: what ingest does when the engine refuses a write.

Contract of :func:`with_retries`: it blocks its calling thread (at most ~0.6 s of pauses
besides the attempts) and never raises a :class:`~fluoroscope.model.errors.FluoroscopeError`
of ``write``'s: it returns it. Any other exception of ``write`` propagates at once. Used
by the ingest worker's store thread (:class:`~fluoroscope.ingest.pipeline.Pipeline`) and the
server's inserting hubs (:class:`~fluoroscope.ingest.process.IngestProcess`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Final

from fluoroscope.model.errors import FluoroscopeError, StoreUnwritable

__all__ = ["with_retries"]

log = logging.getLogger("fluoroscope.ingest")

_RETRIES: Final = 3


def with_retries(write: Callable[[], object]) -> FluoroscopeError | None:
    """Run ``write`` until it succeeds, at most 3 times, pausing a little longer after
    each store error; None once it succeeded, else the last error. Blocking.
    :class:`StoreUnwritable` is returned at once, unlogged: a full or read-only disk
    does not heal in a second, and its caller says so once."""
    last: FluoroscopeError | None = None
    for attempt in range(_RETRIES):
        try:
            write()
        except StoreUnwritable as exc:
            return exc
        except FluoroscopeError as exc:
            log.warning("store write failed (attempt %d): %s", attempt + 1, exc)
            last = exc
            if attempt + 1 < _RETRIES:
                time.sleep(0.2 * (attempt + 1))
            continue
        return None
    return last
