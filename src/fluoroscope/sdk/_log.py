"""The SDK's logger and a log-once helper.

Problems caused by the environment or by bad input at run time (an unreachable
daemon, a malformed header, an invalid annotation key) are reported once per kind,
not once per call, so tracing can never flood the host application's logs.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

__all__ = ["logger", "warn_once"]

logger: Final = logging.getLogger("fluoroscope.sdk")

_seen: set[str] = set()
_seen_lock = threading.Lock()
_MAX_KINDS: Final = 1024


def warn_once(kind: str, message: str, *args: object, level: int = logging.WARNING) -> bool:
    """Log ``message % args`` the first time ``kind`` is seen in this process.

    Thread-safe, never raises. Returns True when the message was logged. After
    :data:`_MAX_KINDS` distinct kinds, nothing more is logged (the set stays bounded).
    """
    if kind in _seen:
        return False
    with _seen_lock:
        if kind in _seen or len(_seen) >= _MAX_KINDS:
            return False
        _seen.add(kind)
    try:
        logger.log(level, message, *args)
    except Exception:  # a broken logging setup must not break tracing
        return False
    return True


def reset_warnings() -> None:
    """Forget which kinds were logged (for tests)."""
    with _seen_lock:
        _seen.clear()
