"""Log correlation: stamp every log record with the current trace id and entity id.

``LoggingInstrumentor().instrument()`` installs a log-record factory (wrapping the
one in place) that sets ``record.xray_trace_id`` and ``record.xray_entity_id``
(empty strings outside any segment), so any format string can use them::

    logging.basicConfig(format=LOG_FORMAT)

For a handler-level alternative that patches nothing, add :class:`TraceContextFilter`
to a handler. The factory runs on whatever thread creates the record; it never
raises and costs one ``ContextVar.get`` per record.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Final

from fluoroscope.sdk._context import CURRENT

__all__ = [
    "ENTITY_ID_ATTRIBUTE",
    "LOG_FORMAT",
    "TRACE_ID_ATTRIBUTE",
    "LoggingInstrumentor",
    "TraceContextFilter",
    "stamp",
]

TRACE_ID_ATTRIBUTE: Final = "xray_trace_id"
ENTITY_ID_ATTRIBUTE: Final = "xray_entity_id"
LOG_FORMAT: Final = (
    "%(asctime)s %(levelname)s %(name)s [trace_id=%(xray_trace_id)s "
    "entity_id=%(xray_entity_id)s] %(message)s"
)
"""A format string showing the stamped ids."""


def stamp(record: logging.LogRecord) -> None:
    """Set the two attributes on ``record`` from the current context."""
    entity = CURRENT.get()
    if entity is None:
        record.xray_trace_id = ""
        record.xray_entity_id = ""
    else:
        record.xray_trace_id = entity.trace_id
        record.xray_entity_id = entity.id


class TraceContextFilter(logging.Filter):
    """A filter that stamps records (and lets every record through)."""

    def filter(self, record: logging.LogRecord) -> bool:
        stamp(record)
        return True


class LoggingInstrumentor:
    """Installs (and removes) the stamping log-record factory. Idempotent."""

    name = "logging"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._previous: Callable[..., logging.LogRecord] | None = None
        self._factory: Callable[..., logging.LogRecord] | None = None
        self._active = False

    def available(self) -> bool:
        return True

    @property
    def instrumented(self) -> bool:
        return self._active

    def instrument(self) -> bool:
        with self._lock:
            if self._active:
                return True
            previous = logging.getLogRecordFactory()

            def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                if self._active:
                    with contextlib.suppress(Exception):
                        stamp(record)
                return record

            logging.setLogRecordFactory(factory)
            self._previous, self._factory, self._active = previous, factory, True
            return True

    def uninstrument(self) -> None:
        with self._lock:
            if not self._active:
                return
            self._active = False
            if logging.getLogRecordFactory() is self._factory and self._previous is not None:
                logging.setLogRecordFactory(self._previous)
            # else: someone wrapped our factory; it stays in their chain but passes through
            self._previous = self._factory = None
