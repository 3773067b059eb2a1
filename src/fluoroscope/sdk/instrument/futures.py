"""Opt-in: every ``ThreadPoolExecutor.submit`` runs the task in the submitter's context.

With this on, code submitted to a thread pool (including ``loop.run_in_executor``)
sees the segment that was current where it was submitted, without wrapping each call
in :func:`fluoroscope.sdk.carry`. Each task gets its own copy of the context.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

__all__ = ["FuturesInstrumentor"]


class FuturesInstrumentor:
    """Patches ``ThreadPoolExecutor.submit`` (class-wide). Idempotent, reversible."""

    name = "futures"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._original: Callable[..., Future[Any]] | None = None
        self._patched: Callable[..., Future[Any]] | None = None

    def available(self) -> bool:
        return True

    @property
    def instrumented(self) -> bool:
        return self._original is not None

    def instrument(self) -> bool:
        with self._lock:
            if self._original is not None:
                return True
            original = ThreadPoolExecutor.submit

            def submit(
                self: ThreadPoolExecutor, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
            ) -> Future[Any]:
                ctx = contextvars.copy_context()
                return original(self, ctx.run, fn, *args, **kwargs)

            submit.__wrapped__ = original  # type: ignore[attr-defined]
            ThreadPoolExecutor.submit = submit  # type: ignore[method-assign,assignment]
            self._original, self._patched = original, submit
            return True

    def uninstrument(self) -> None:
        with self._lock:
            if self._original is None:
                return
            if ThreadPoolExecutor.submit is self._patched:
                ThreadPoolExecutor.submit = self._original  # type: ignore[method-assign]
            self._original = self._patched = None
