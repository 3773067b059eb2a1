"""The one piece of ambient state: the current entity, in a ``ContextVar``.

Context is ``contextvars`` and nothing else, so it follows the code wherever Python
carries a context: ``asyncio`` tasks copy it when created (``gather``,
``create_task``, ``TaskGroup``), ``asyncio.to_thread`` and ``loop.run_in_executor``
via :func:`carry` do too. Plain threads and executors start with an empty context;
:func:`carry` / :func:`submit` hand the caller's context over explicitly, and the
opt-in ``futures`` instrumentation does it for every ``ThreadPoolExecutor.submit``.

All functions here are cheap, never block and never raise.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, ParamSpec, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Executor, Future

    from fluoroscope.sdk._entities import Entity

__all__ = [
    "CURRENT",
    "SUPPRESSED",
    "carry",
    "current_entity",
    "submit",
    "suppress_instrumentation",
]

P = ParamSpec("P")
R = TypeVar("R")

CURRENT: contextvars.ContextVar[Entity | None] = contextvars.ContextVar(
    "fluoroscope_current_entity", default=None
)
"""The innermost open segment or subsegment of this context (or None)."""

SUPPRESSED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "fluoroscope_suppressed", default=False
)
"""True while the SDK does its own I/O; instrumentations must not trace then."""


@contextlib.contextmanager
def suppress_instrumentation() -> Iterator[None]:
    """Within this block, instrumented libraries record nothing (for the SDK's own calls)."""
    token = SUPPRESSED.set(True)
    try:
        yield
    finally:
        SUPPRESSED.reset(token)


def current_entity() -> Entity | None:
    """The innermost open segment or subsegment in this context, or None.

    Never applies the ``context_missing`` policy (that is the tracer's business);
    instrumentations use this to decide whether to trace at all.
    """
    return CURRENT.get()


def carry(fn: Callable[P, R]) -> Callable[P, R]:
    """Wrap ``fn`` so that it runs in a copy of the *caller's* current context.

    Use it to hand the current segment to a thread or executor::

        threading.Thread(target=carry(work)).start()
        executor.submit(carry(work), arg)

    The copy is taken now, in the calling thread; each call of the wrapper runs in
    its own fresh copy of it, so the wrapper may be called from several threads.
    """
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return run_in_context


def submit(
    executor: Executor, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
) -> Future[R]:
    """``executor.submit(fn, *args, **kwargs)`` with the caller's context carried over."""
    ctx = contextvars.copy_context()
    return executor.submit(ctx.run, fn, *args, **kwargs)  # type: ignore[arg-type]
