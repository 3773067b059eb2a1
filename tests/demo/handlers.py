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


@lambda_handler
def chain(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Log a line, then invoke ``event["next"]`` through boto3's Lambda client (the trace
    continues into it: the SDK's botocore instrumentation sends the header)."""
    import json
    import logging

    import boto3

    from fluoroscope.sdk.instrument import instrument

    instrument("botocore")
    logging.getLogger("chain").info("calling %s", event["next"])
    print("a printed line")
    client = boto3.client("lambda", region_name="us-east-1")
    reply = client.invoke(FunctionName=event["next"], Payload=json.dumps({"from": "chain"}))
    return {"next": json.loads(reply["Payload"].read())}
