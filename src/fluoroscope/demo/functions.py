"""The sample app's Lambda handlers: an orders API, traced with Fluoroscope's public SDK.

This module is what a user would deploy as a Lambda function, and it reads like one:
module-level setup (the tracer, the instrumented libraries, boto3 clients) runs once
per function instance and is what the ``Initialization`` subsegment of a cold start
measures; each handler is decorated with :func:`fluoroscope.sdk.lambda_handler`, which
continues the trace from ``_X_AMZN_TRACE_ID`` so every subsegment recorded here nests
under the runtime's ``Invocation`` subsegment.

Handlers (API Gateway proxy events in, proxy results out):

* :func:`create_order` (``POST /orders``): DynamoDB ``PutItem`` with a condition
  (a duplicate order id fails it: a 4xx ``ConditionalCheckFailedException`` → 409),
  a charge through the third-party payments API (``requests``; its 429s and 5xx
  become 503/502), and a receipt written to S3.
* :func:`get_order` (``GET /orders/{id}``): DynamoDB ``GetItem``, the receipt read
  back from S3 inside ``capture("getFile")``; ids ending in ``7`` take a slow path
  (``renderInvoice``); legacy ids (``legacy-…``) raise an exception with a stack,
  unhandled, as real bugs are.
* :func:`notify` (invoked by :func:`create_order` through boto3's Lambda ``Invoke``, so
  one trace runs through two functions): "sends" the order confirmation; logs with a
  structured JSON logger the way Powertools for AWS Lambda does (``xray_trace_id``,
  ``function_request_id``, ``cold_start``); one in ten confirmations fails (logged at
  ``ERROR``, reported back, never raised).
* :func:`report` (``GET /report``): async — exchange rates from the payments API
  (``httpx.AsyncClient``) and several receipts through an async ``getFile``, gathered
  concurrently.

Configuration comes from the environment the runtime gives each function (as Lambda
does): ``TABLE_NAME``, ``BUCKET_NAME``, ``PAYMENTS_URL``, ``AWS_ENDPOINT_URL`` (the
local AWS emulator; never a real AWS endpoint), ``AWS_REGION`` and the credentials.
Handlers never raise except where a bug is being demonstrated. They log through the
standard ``logging`` module, which the runtime writes to the function's log group in
the Python runtime's text format with the request id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import sys
import time
from typing import Any

import boto3
import httpx
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from fluoroscope.sdk import Tracer, lambda_handler, set_tracer
from fluoroscope.sdk.instrument import instrument

__all__ = ["create_order", "get_order", "notify", "report"]

# -- initialization: once per function instance -----------------------------------------

tracer = Tracer(context_missing="log")
set_tracer(tracer)
instrument("botocore", "requests", "httpx")

TABLE = os.environ.get("TABLE_NAME", "orders")
BUCKET = os.environ.get("BUCKET_NAME", "orders-receipts")
PAYMENTS_URL = os.environ.get("PAYMENTS_URL", "http://127.0.0.1:9")
_ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
_REGION = os.environ.get("AWS_REGION", "us-east-1")
_config = Config(
    retries={"max_attempts": 2, "mode": "standard"},
    s3={"addressing_style": "path"},
    connect_timeout=2,
    read_timeout=5,
)
dynamodb = boto3.client("dynamodb", endpoint_url=_ENDPOINT, region_name=_REGION, config=_config)
s3 = boto3.client("s3", endpoint_url=_ENDPOINT, region_name=_REGION, config=_config)
http = requests.Session()
lambda_client = boto3.client("lambda", region_name=_REGION, config=_config)
NOTIFY_FUNCTION = os.environ.get("NOTIFY_FUNCTION", "orders-api-notify")
logger = logging.getLogger("orders")


def _response(status: int, body: object) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


# -- POST /orders ------------------------------------------------------------------------


@tracer.capture("validateOrder")
def _validate(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], str]:
    order_id = str(body.get("orderId") or "")
    items = body.get("items")
    customer = str(body.get("customer") or "anonymous")
    if not order_id or not isinstance(items, list) or not items:
        raise ValueError("an order needs an orderId and at least one item")
    return order_id, items, customer


def _charge(order_id: str, amount: float) -> tuple[int, dict[str, Any]]:
    """Charge through the payments API; one retry on 429, as its docs ask."""
    for attempt in range(2):
        response = http.post(
            f"{PAYMENTS_URL}/v1/charges",
            json={"order": order_id, "amount": amount, "currency": "USD"},
            timeout=5,
        )
        if response.status_code != 429 or attempt:
            break
        time.sleep(0.05)
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    return response.status_code, payload


@lambda_handler
def create_order(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``POST /orders``: store the order (conditionally), charge it, write a receipt."""
    try:
        order_id, items, customer = _validate(json.loads(event.get("body") or "{}"))
    except ValueError as exc:
        logger.warning("rejected order: %s", exc)
        return _response(400, {"message": str(exc)})
    logger.info("creating order %s for %s (%d items)", order_id, customer, len(items))
    tracer.put_annotation("order_id", order_id)
    tracer.put_annotation("customer", customer)
    amount = round(sum(float(i.get("price", 0)) * int(i.get("qty", 1)) for i in items), 2)
    try:
        dynamodb.put_item(
            TableName=TABLE,
            Item={
                "orderId": {"S": order_id},
                "customer": {"S": customer},
                "amount": {"N": str(amount)},
                "items": {"S": json.dumps(items)},
                "status": {"S": "NEW"},
            },
            ConditionExpression="attribute_not_exists(orderId)",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            logger.warning("order %s already exists", order_id)
            return _response(409, {"message": f"order {order_id} already exists"})
        raise
    status, charge = _charge(order_id, amount)
    if status >= 429:
        logger.error("payment for order %s failed: HTTP %d %s", order_id, status, charge)
    if status == 429:
        return _response(503, {"message": "payment provider is busy, try again"})
    if status >= 500:
        return _response(502, {"message": "payment provider failed"})
    receipt = {"orderId": order_id, "amount": amount, "charge": charge.get("id"), "items": items}
    s3.put_object(
        Bucket=BUCKET,
        Key=f"receipts/{order_id}.json",
        Body=json.dumps(receipt).encode(),
        ContentType="application/json",
    )
    try:
        reply = lambda_client.invoke(
            FunctionName=NOTIFY_FUNCTION,
            Payload=json.dumps({"orderId": order_id, "customer": customer, "amount": amount}),
        )
        payload = reply["Payload"].read() or b"null"
        sent = json.loads(payload) if "FunctionError" not in reply else None
    except ClientError as exc:
        logger.warning("could not invoke %s: %s", NOTIFY_FUNCTION, exc)
        sent = None
    if not (isinstance(sent, dict) and sent.get("sent")):
        logger.warning("order %s: the confirmation was not sent", order_id)
    logger.info("order %s created, %.2f USD", order_id, amount)
    return _response(201, {"orderId": order_id, "amount": amount})


# -- notify (invoked by create_order) ----------------------------------------------------


class _StructuredLogger:
    """A JSON logger shaped like Powertools for AWS Lambda's (reference logs.md §5.4): one
    JSON object per line on stdout, with the invocation's context and ``xray_trace_id``."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.cold_start = True
        self._context: Any = None

    def inject(self, context: Any) -> None:
        self._context = context

    def _log(self, level: str, message: str, **extra: Any) -> None:
        frame = sys._getframe(2)
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
        record: dict[str, Any] = {
            "level": level,
            "location": f"{frame.f_code.co_name}:{frame.f_lineno}",
            "message": message,
            "timestamp": f"{stamp},{int(now * 1000) % 1000:03d}+0000",
            "service": self.service,
        }
        context = self._context
        if context is not None:
            record.update(
                cold_start=self.cold_start,
                function_name=context.function_name,
                function_memory_size=context.memory_limit_in_mb,
                function_arn=context.invoked_function_arn,
                function_request_id=context.aws_request_id,
            )
        root = os.environ.get("_X_AMZN_TRACE_ID", "").split(";")[0]
        if root.startswith("Root="):
            record["xray_trace_id"] = root[5:]
        record.update(extra)
        print(json.dumps(record, separators=(",", ":"), default=str), flush=True)

    def info(self, message: str, **extra: Any) -> None:
        self._log("INFO", message, **extra)

    def error(self, message: str, **extra: Any) -> None:
        self._log("ERROR", message, **extra)


notifications = _StructuredLogger("notifications")


@lambda_handler
def notify(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Send an order's confirmation (simulated); one in ten fails."""
    notifications.inject(context)
    try:
        order_id = str(event.get("orderId") or "")
        notifications.info("Sending order confirmation", order_id=order_id)
        with tracer.capture("sendEmail"):
            time.sleep(random.uniform(0.005, 0.03))
            if random.random() < 0.1:
                notifications.error("SMTP relay timed out", order_id=order_id)
                return {"sent": False}
        notifications.info("Order confirmation sent", order_id=order_id)
        return {"sent": True}
    finally:
        notifications.cold_start = False


# -- GET /orders/{id} --------------------------------------------------------------------


@tracer.capture("getFile")
def get_file(key: str) -> dict[str, Any]:
    """Read one JSON file from the receipts bucket (sync ``getFile``)."""
    obj = s3.get_object(Bucket=BUCKET, Key=key)
    data: dict[str, Any] = json.loads(obj["Body"].read())
    return data


@tracer.capture("renderInvoice")
def _render_invoice(order: dict[str, Any]) -> str:
    time.sleep(random.uniform(0.6, 1.2))  # the slow path: a big PDF, uncached
    return f"invoice-{order['orderId']}.pdf"


def _parse_legacy(record: dict[str, Any]) -> dict[str, Any]:
    # Legacy rows kept amounts in cents under another key: this raises KeyError.
    return {"orderId": record["orderId"], "amount": record["amount_cents"] / 100}


@tracer.capture("loadLegacyOrder")
def _load_legacy(order_id: str) -> dict[str, Any]:
    return _parse_legacy({"orderId": order_id, "amount": 12})


@lambda_handler
def get_order(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``GET /orders/{id}``: the order, its receipt, sometimes a slow invoice; legacy ids crash."""
    order_id = (event.get("pathParameters") or {}).get("id", "")
    tracer.put_annotation("order_id", order_id)
    logger.info("looking up order %s", order_id)
    if order_id.startswith("legacy-"):
        order = _load_legacy(order_id)  # raises: a bug in old-data handling
        return _response(200, order)
    item = dynamodb.get_item(TableName=TABLE, Key={"orderId": {"S": order_id}}).get("Item")
    if item is None:
        logger.info("order %s not found", order_id)
        return _response(404, {"message": f"order {order_id} not found"})
    order = {"orderId": order_id, "amount": float(item["amount"]["N"])}
    try:
        order["receipt"] = get_file(f"receipts/{order_id}.json")
    except ClientError:
        order["receipt"] = None
    if order_id.endswith("7"):
        order["invoice"] = _render_invoice(order)
    return _response(200, order)


# -- GET /report -------------------------------------------------------------------------


@tracer.capture("getFile")
async def get_file_async(key: str) -> dict[str, Any] | None:
    """Read one JSON file from the receipts bucket without blocking the loop (async ``getFile``)."""
    try:
        obj = await asyncio.to_thread(s3.get_object, Bucket=BUCKET, Key=key)
    except ClientError:
        return None
    data: dict[str, Any] = json.loads(obj["Body"].read())
    return data


async def _build_report() -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5) as client:
        listing = await asyncio.to_thread(
            s3.list_objects_v2, Bucket=BUCKET, Prefix="receipts/", MaxKeys=5
        )
        keys = [o["Key"] for o in listing.get("Contents", [])]
        rates, *receipts = await asyncio.gather(
            client.get(f"{PAYMENTS_URL}/v1/rates", params={"base": "USD"}),
            *(get_file_async(k) for k in keys),
        )
    total = sum(float(r.get("amount", 0)) for r in receipts if isinstance(r, dict))
    eur = rates.json().get("EUR", 0.9) if rates.status_code == 200 else None
    return {"orders": len(keys), "totalUsd": round(total, 2), "totalEur": eur and total * eur}


@lambda_handler
def report(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``GET /report``: recent receipts and exchange rates, fetched concurrently."""
    built = asyncio.run(_build_report())
    logger.info("report over %d orders", built["orders"])
    return _response(200, built)
