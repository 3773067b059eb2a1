"""A tiny Lambda handler module for the runtime tests (imported by worker processes)."""

from __future__ import annotations

import time
from typing import Any

from fluoroscope.sdk import Tracer, lambda_handler, set_tracer

tracer = Tracer(sampling=False)
set_tracer(tracer)


@lambda_handler
def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Record a ``work`` subsegment; sleep or raise when the event says so."""
    with tracer.subsegment("work"):
        time.sleep(float(event.get("sleep", 0)))
    if event.get("fail"):
        raise RuntimeError("boom")
    return {"echo": event, "request_id": context.aws_request_id}
