"""Exceptions → the ``cause`` object of a segment document (reference: xray-protocol §2.7).

Pure functions called when an entity records an exception (from the thread that
caught it); they never raise. Frames inside the SDK are left out; chained exceptions
(``raise ... from ...`` and implicit context) are linked through their ``cause`` ids;
an exception object seen a second time (propagating through nested entities) is
written as a reference to the id it got the first time.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Final

from fluoroscope.model.ids import new_entity_id

__all__ = ["exception_cause"]

_SDK_DIR: Final = os.path.dirname(os.path.abspath(__file__)) + os.sep
_MAX_CHAINED_EXCEPTIONS: Final = 4
_cwd: list[str] = []


def _working_directory() -> str:
    if not _cwd:
        try:
            _cwd.append(os.getcwd())
        except OSError:
            _cwd.append("")
    return _cwd[0]


def _frames(exc: BaseException, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Stack frames of ``exc``, innermost first, SDK frames left out; and how many were cut.

    The traceback (raise point up to where the exception is being recorded) is
    followed by the frames that called the recording frame, so the stack shows
    where a captured function was called from.
    """
    raw: list[tuple[str, int, str]] = []
    tb = exc.__traceback__
    first = tb.tb_frame if tb is not None else None
    while tb is not None:
        code = tb.tb_frame.f_code
        raw.append((code.co_filename, tb.tb_lineno, code.co_name))
        tb = tb.tb_next
    raw.reverse()
    outer = first.f_back if first is not None else None
    while outer is not None and len(raw) < limit + 64:
        code = outer.f_code
        raw.append((code.co_filename, outer.f_lineno or 0, code.co_name))
        outer = outer.f_back
    cwd = _working_directory()
    prefix = cwd + os.sep if cwd else "\0"
    frames = [
        {
            "path": path[len(prefix) :] if path.startswith(prefix) else path,
            "line": line,
            "label": label,
        }
        for path, line, label in raw
        if not path.startswith(_SDK_DIR)
    ]
    if limit >= 0 and len(frames) > limit:
        return frames[:limit], len(frames) - limit
    return frames, 0


def _exception_id(exc: BaseException) -> tuple[str, bool]:
    existing = getattr(exc, "_fluoroscope_exception_id", None)
    if isinstance(existing, str):
        return existing, True
    new_id = new_entity_id()
    with contextlib.suppress(Exception):  # exceptions without a __dict__
        exc._fluoroscope_exception_id = new_id  # type: ignore[attr-defined]
    return new_id, False


def exception_cause(exc: BaseException, remote: bool, limit: int) -> str | dict[str, Any]:
    """The ``cause`` for ``exc``: an object with its stack, or the id it was given before."""
    exc_id, seen = _exception_id(exc)
    if seen:
        return exc_id
    exceptions: list[dict[str, Any]] = []
    current: BaseException | None = exc
    current_id = exc_id
    while current is not None and len(exceptions) < _MAX_CHAINED_EXCEPTIONS:
        try:
            message = str(current)
        except Exception:
            message = "<unprintable>"
        stack, truncated = _frames(current, limit)
        entry: dict[str, Any] = {
            "id": current_id,
            "message": message[:1000],
            "type": type(current).__name__,
            "remote": remote,
            "stack": stack,
        }
        if truncated:
            entry["truncated"] = truncated
        exceptions.append(entry)
        nxt = current.__cause__
        if nxt is None and not current.__suppress_context__:
            nxt = current.__context__
        if nxt is not None and len(exceptions) < _MAX_CHAINED_EXCEPTIONS:
            current_id = new_entity_id()
            entry["cause"] = current_id
        current = nxt
        remote = False
    return {"working_directory": _working_directory(), "exceptions": exceptions}
