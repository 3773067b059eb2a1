"""Fluoroscope's tracing SDK: X-Ray segments from Python code, cheaply and correctly.

::

    from fluoroscope.sdk import Tracer, instrument_all

    tracer = Tracer(service="orders")          # UDP to AWS_XRAY_DAEMON_ADDRESS or 127.0.0.1:2000
    with tracer.segment("orders") as seg:      # also `async with`
        with tracer.subsegment("parse") as sub:
            sub.put_annotation("user_id", 42)
            sub.put_metadata("payload", {"a": 1}, namespace="debug")

    @tracer.capture("getFile")                 # functions, coroutines, (async) generators
    def get_file(key): ...

    instrument_all()                           # every supported library that is installed

    logging.getLogger().addHandler(LogsHandler())  # records to the server's Logs API,
                                                   # each with its trace id and entity id

Only the standard library is imported (``orjson`` is used for serialization when
installed). Importing this package does no work: no thread, no socket, no
environment read happens before a :class:`Tracer` is built and used.
"""

from __future__ import annotations

from fluoroscope.sdk._context import carry, current_entity, submit
from fluoroscope.sdk._emitters import Emitter, InMemoryEmitter, UDPEmitter
from fluoroscope.sdk._entities import Entity, Segment, Subsegment
from fluoroscope.sdk._errors import (
    ConfigurationError,
    ContextMissingError,
    SamplingRulesError,
    TracingError,
)
from fluoroscope.sdk._lambda import lambda_handler
from fluoroscope.sdk._logs import LogsHandler
from fluoroscope.sdk._sampling import (
    ConstantSampler,
    Decision,
    LocalSampler,
    Sampler,
    SamplingRequest,
)
from fluoroscope.sdk._tracer import Tracer, get_tracer, set_tracer
from fluoroscope.sdk.instrument import instrument_all

__all__ = [
    "ConfigurationError",
    "ConstantSampler",
    "ContextMissingError",
    "Decision",
    "Emitter",
    "Entity",
    "InMemoryEmitter",
    "LocalSampler",
    "LogsHandler",
    "Sampler",
    "SamplingRequest",
    "SamplingRulesError",
    "Segment",
    "Subsegment",
    "Tracer",
    "TracingError",
    "UDPEmitter",
    "carry",
    "current_entity",
    "flush",
    "get_tracer",
    "instrument_all",
    "lambda_handler",
    "set_tracer",
    "submit",
]


def flush(timeout: float | None = 2.0) -> bool:
    """Flush the global tracer, if one was created, and every open :class:`LogsHandler`,
    all within ``timeout`` seconds; True when everything went out."""
    import time

    from fluoroscope.sdk._logs import flush_handlers
    from fluoroscope.sdk._tracer import _global

    began = time.monotonic()
    traced = _global[0].flush(timeout) if _global else True
    left = None if timeout is None else max(0.0, timeout - (time.monotonic() - began))
    return flush_handlers(left) and traced
