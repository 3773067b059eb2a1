"""A Lambda handler traced with fluoroscope.sdk (runs locally too).

In Lambda (or an emulator that sets ``_X_AMZN_TRACE_ID``), each invocation is recorded
as a subsegment of the function's trace with the annotation ``cold_start``; locally
it becomes a segment of its own. Try it::

    _X_AMZN_TRACE_ID="Root=1-$(printf '%08x' $(date +%s))-abcdef0123456789abcdef01;Parent=53995c3f42cd8ad8;Sampled=1" \\
        python examples/lambda_handler.py
"""

from __future__ import annotations

import json
from typing import Any

from fluoroscope.sdk import Tracer, instrument_all, lambda_handler, set_tracer

tracer = Tracer(service="orders-fn", sampling=False)
set_tracer(tracer)
instrument_all()  # boto3/requests/... calls made by the handler become subsegments


@tracer.capture("validate")
def validate(order: dict[str, Any]) -> None:
    if "id" not in order:
        raise ValueError("order without id")


@lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    order = json.loads(event.get("body") or "{}")
    validate(order)
    with tracer.subsegment("price") as sub:
        sub.put_annotation("order_id", str(order["id"]))
        total = sum(item.get("price", 0) for item in order.get("items", []))
    return {"statusCode": 200, "body": json.dumps({"total": total})}


if __name__ == "__main__":
    event = {"body": json.dumps({"id": 42, "items": [{"price": 3}, {"price": 4}]})}
    print(handler(event, None))
    print(handler(event, None))  # a warm invocation: cold_start is false
