"""AWS Lambda: continue the invocation's trace and flush before returning (§1.4, §8.2).

On every invocation the decorator reads ``_X_AMZN_TRACE_ID``:

* with ``Root`` and ``Parent``, the function's work is recorded under a *facade*
  segment whose id is ``Parent`` (Lambda itself emits the function segment; the
  facade is never sent). One subsegment per invocation, named after the function,
  wraps the handler; it and everything under it are sent as independent
  subsegments parented on ``Parent``. ``Sampled=0`` records nothing;
* without a usable header (running locally), an ordinary segment named after the
  function is recorded and sent.

The invocation subsegment carries the annotation ``cold_start`` (True for the first
invocation in this process, False after) and metadata ``lambda.request_id`` /
``lambda.function_arn`` when the context object has them. Before the handler's
result is returned (or its exception re-raised), the tracer is flushed, and so is every
open :class:`~fluoroscope.sdk.LogsHandler` (within the same time limit), because Lambda
may freeze the process right after.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from typing import Any, Final, TypeVar, overload

from fluoroscope.model.trace_header import NOT_SAMPLED, SAMPLED, parse_trace_header
from fluoroscope.sdk import _env
from fluoroscope.sdk._entities import Entity, Segment, sanitize_name
from fluoroscope.sdk._inert import UnsampledSegment
from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk._logs import flush_handlers
from fluoroscope.sdk._recording import RECORDING
from fluoroscope.sdk._sampling import SamplingRequest
from fluoroscope.sdk._tracer import Tracer, get_tracer, open_subsegment

__all__ = ["COLD_START_ANNOTATION", "lambda_handler"]

F = TypeVar("F", bound=Callable[..., Any])

COLD_START_ANNOTATION: Final = "cold_start"
"""Annotation on each invocation subsegment: True on the first invocation per process."""

FLUSH_TIMEOUT: Final = 1.0

_cold = [True]
_cold_lock = threading.Lock()


def _take_cold_start() -> bool:
    with _cold_lock:
        cold = _cold[0]
        _cold[0] = False
    return cold


def _root(tracer: Tracer, name: str) -> Entity:
    raw = _env.env(_env.X_AMZN_TRACE_ID)
    header = parse_trace_header(raw)
    if raw and header is None:
        warn_once("lambda-header", "malformed %s ignored: %r", _env.X_AMZN_TRACE_ID, raw[:200])
    if header is None or header.parent is None:
        return tracer.segment(name, trace_header=header)
    sampled = header.sampled
    if RECORDING:  # a test records everything (fluoroscope.sdk.testing)
        decision = True
    elif sampled == SAMPLED:
        decision = tracer.enabled
    elif sampled == NOT_SAMPLED:
        decision = False
    else:
        decision = (
            tracer.enabled and tracer.sampler.should_sample(SamplingRequest(service=name)).sampled
        )
    if not decision:
        return UnsampledSegment(
            name, trace_id=header.root, entity_id=header.parent, header_extra=header.extra
        )
    return Segment(
        name,
        trace_id=header.root,
        entity_id=header.parent,
        emitter=tracer.emitter,
        header_extra=header.extra,
        max_stack_frames=tracer.max_stack_frames,
        streaming_threshold=tracer.streaming_threshold,
        facade=True,
    )


@overload
def lambda_handler(fn: F, *, tracer: Tracer | None = None, name: str | None = None) -> F: ...
@overload
def lambda_handler(
    fn: None = None, *, tracer: Tracer | None = None, name: str | None = None
) -> Callable[[F], F]: ...
def lambda_handler(
    fn: F | None = None, *, tracer: Tracer | None = None, name: str | None = None
) -> Any:
    """Decorate a Lambda handler ``handler(event, context)``: ``@lambda_handler``.

    ``tracer`` defaults to the global tracer (looked up per invocation); ``name``
    defaults to ``AWS_LAMBDA_FUNCTION_NAME``, else the tracer's service name. Exceptions
    from the handler are recorded and re-raised unchanged.
    """

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        def traced(event: Any, context: Any = None, *args: Any, **kwargs: Any) -> Any:
            active = tracer or get_tracer()
            cold = _take_cold_start()
            label = sanitize_name(name or _env.env(_env.AWS_LAMBDA_FUNCTION_NAME) or active.service)
            root = _root(active, label)
            try:
                with root, open_subsegment(label, None, root) as invocation:
                    invocation.put_annotation(COLD_START_ANNOTATION, cold)
                    request_id = getattr(context, "aws_request_id", None)
                    if isinstance(request_id, str):
                        invocation.put_metadata("request_id", request_id, "lambda")
                    arn = getattr(context, "invoked_function_arn", None)
                    if isinstance(arn, str):
                        invocation.put_metadata("function_arn", arn, "lambda")
                    return handler(event, context, *args, **kwargs)
            finally:
                began = time.monotonic()
                active.flush(FLUSH_TIMEOUT)
                flush_handlers(max(0.0, FLUSH_TIMEOUT - (time.monotonic() - began)))

        return traced  # type: ignore[return-value]

    if fn is not None:
        return decorate(fn)
    return decorate
