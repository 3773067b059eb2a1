"""``botocore`` (and so ``boto3``): one ``aws`` subsegment per AWS API call.

``BaseClient._make_api_call`` is wrapped class-wide (as aws-xray-sdk does), so every
client, created before or after :meth:`BotocoreInstrumentor.instrument`, is traced;
retries happen inside one call and are counted, not recorded separately. The
``X-Amzn-Trace-Id`` header (and ``traceparent`` when enabled) goes into every HTTP
attempt through a ``before-send`` handler, registered on each client's event
emitter the first time that client makes a call (and removed by ``uninstrument``).
The header is not signed (SigV4 leaves ``x-amzn-trace-id`` out), so retries and
signatures are unaffected.

The subsegment:

* ``name``: the service id from the botocore model, e.g. ``DynamoDB``, ``S3``,
  ``SQS``, ``SNS``, ``Lambda``, ``Kinesis``, ``Secrets Manager`` (the names the
  Java and Node X-Ray SDKs use for the service map). aws-xray-sdk for Python uses the
  endpoint prefix (``dynamodb``); the server matches names case-insensitively, so
  both line up for the common services.
* ``namespace``: ``aws``.
* ``aws``: ``operation``, ``region``, ``request_id``, ``retries``, S3's ``id_2``,
  and resource parameters snake_cased (:data:`REQUEST_PARAMETERS`,
  :data:`RESPONSE_PARAMETERS`): DynamoDB ``table_name`` / ``table_names`` (batch and
  transaction calls), S3 ``bucket_name`` / ``key``, SQS ``queue_url``, SNS
  ``topic_arn``, Lambda ``function_name`` / ``invocation_type``, Kinesis
  ``stream_name``, …
* ``http.response``: ``status`` and ``content_length``.
* errors: a throttling error code (``ThrottlingException``,
  ``ProvisionedThroughputExceededException``, …) or 429 → ``throttle`` + ``error``;
  other 4xx → ``error``; 5xx → ``fault``. A service error is the ``cause`` with
  ``remote: true``; anything else raised (no connection, bad parameters) is a
  ``fault`` with a local cause.

The X-Ray service's own calls (``GetSamplingRules``, ``GetSamplingTargets``,
``PutTraceSegments``, ``PutTelemetryRecords``) are never traced, nor is anything
under them. No segment, unsampled, suppressed: see
:mod:`fluoroscope.sdk.instrument.outgoing`.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final

from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk.instrument._patch import Patch
from fluoroscope.sdk.instrument.outgoing import (
    Call,
    PatchingInstrumentor,
    begin,
    content_length,
    pass_through,
)

__all__ = [
    "REQUEST_PARAMETERS",
    "RESPONSE_PARAMETERS",
    "THROTTLE_CODES",
    "BotocoreInstrumentor",
    "aws_fields",
    "snake_case",
]

REQUEST_PARAMETERS: Final[Mapping[str, tuple[str, ...]]] = {
    "dynamodb": ("TableName", "IndexName", "Select", "Limit", "ConsistentRead"),
    "s3": ("Bucket", "Key", "VersionId", "Prefix"),
    "sqs": ("QueueUrl", "QueueName"),
    "sns": ("TopicArn", "TargetArn", "Name"),
    "lambda": ("FunctionName", "InvocationType", "LogType", "Qualifier"),
    "kinesis": ("StreamName", "StreamARN"),
    "firehose": ("DeliveryStreamName",),
    "stepfunctions": ("stateMachineArn", "executionArn", "name"),
    "secretsmanager": ("SecretId",),
    "ssm": ("Name",),
    "events": ("EventBusName",),
    "kms": ("KeyId",),
    "sesv2": ("FromEmailAddress",),
}
"""Request parameters copied into ``aws`` (snake_cased), by botocore service name."""

RESPONSE_PARAMETERS: Final[Mapping[tuple[str, str], tuple[str, ...]]] = {
    ("dynamodb", "Query"): ("Count", "ScannedCount"),
    ("dynamodb", "Scan"): ("Count", "ScannedCount"),
    ("sqs", "SendMessage"): ("MessageId",),
    ("sqs", "GetQueueUrl"): ("QueueUrl",),
    ("sqs", "CreateQueue"): ("QueueUrl",),
    ("sns", "Publish"): ("MessageId",),
    ("sns", "CreateTopic"): ("TopicArn",),
    ("lambda", "Invoke"): ("StatusCode", "FunctionError"),
    ("kinesis", "PutRecord"): ("ShardId", "SequenceNumber"),
}
"""Response fields copied into ``aws`` (snake_cased), by (service name, operation)."""

_RENAMED: Final = {"Bucket": "bucket_name"}

THROTTLE_CODES: Final = frozenset(
    (
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    )
)
"""Error codes recorded as ``throttle`` (and ``error``), whatever their HTTP status."""

_NOT_TRACED: Final = frozenset(
    (
        ("xray", "GetSamplingRules"),
        ("xray", "GetSamplingTargets"),
        ("xray", "PutTraceSegments"),
        ("xray", "PutTelemetryRecords"),
    )
)
_HANDLER_ID: Final = "fluoroscope-trace-header"
_CAMEL: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")

_headers: contextvars.ContextVar[list[tuple[str, str]] | None] = contextvars.ContextVar(
    "fluoroscope_botocore_headers", default=None
)
_names: dict[str, str] = {}


def snake_case(name: str) -> str:
    """``TableName`` → ``table_name``, ``StreamARN`` → ``stream_arn`` (cached)."""
    found = _names.get(name)
    if found is None:
        found = _RENAMED.get(name) or _CAMEL.sub("_", name).lower()
        if len(_names) < 1024:
            _names[name] = found
    return found


def _table_names(operation: str, params: Mapping[str, Any]) -> list[str] | None:
    if operation in ("BatchGetItem", "BatchWriteItem"):
        items = params.get("RequestItems")
        return sorted(items) if isinstance(items, Mapping) else None
    if operation in ("TransactWriteItems", "TransactGetItems"):
        names: set[str] = set()
        for item in params.get("TransactItems") or ():
            if isinstance(item, Mapping):
                for action in item.values():
                    if isinstance(action, Mapping) and isinstance(action.get("TableName"), str):
                        names.add(action["TableName"])
        return sorted(names) if names else None
    return None


def aws_fields(
    service: str,
    operation: str,
    params: Mapping[str, Any],
    response: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The resource fields of the ``aws`` block for one call (pure; never raises)."""
    out: dict[str, Any] = {}
    try:
        for key in REQUEST_PARAMETERS.get(service, ()):
            value = params.get(key)
            if isinstance(value, str | int | float | bool):
                out[snake_case(key)] = value
        if service == "dynamodb":
            tables = _table_names(operation, params)
            if tables:
                out["table_names"] = tables
        if response is not None:
            for key in RESPONSE_PARAMETERS.get((service, operation), ()):
                value = response.get(key)
                if isinstance(value, str | int | float | bool):
                    out[snake_case(key)] = value
            if service == "dynamodb" and operation == "ListTables":
                tables = response.get("TableNames")
                if isinstance(tables, list):
                    out["table_count"] = len(tables)
            elif service == "sqs" and operation == "ReceiveMessage" and "Error" not in response:
                messages = response.get("Messages")
                out["message_count"] = len(messages) if isinstance(messages, list) else 0
    except Exception:  # odd parameter shapes must never break the call
        pass
    return out


def _record(
    call: Call, client: Any, service: str, operation: str, params: Any, response: Any
) -> None:
    """Fill the subsegment from a parsed response (success or error); never raises."""
    try:
        _fill(call, client, service, operation, params, response)
    except Exception as exc:  # an unexpected response shape must not break the call
        warn_once("botocore-record", "could not record an AWS call: %r", exc)


def _fill(
    call: Call, client: Any, service: str, operation: str, params: Any, response: Any
) -> None:
    meta = response.get("ResponseMetadata") if isinstance(response, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    fields: dict[str, Any] = {"operation": operation}
    region = getattr(client.meta, "region_name", None)
    if region:
        fields["region"] = region
    if meta.get("RequestId"):
        fields["request_id"] = meta["RequestId"]
    if service == "s3" and meta.get("HostId"):
        fields["id_2"] = meta["HostId"]
    retries = meta.get("RetryAttempts")
    if isinstance(retries, int):
        fields["retries"] = retries
    if isinstance(params, Mapping):
        fields.update(aws_fields(service, operation, params, response))
    entity = call.entity
    entity.set_aws(fields)
    status = meta.get("HTTPStatusCode")
    headers = meta.get("HTTPHeaders")
    length = content_length(headers.get("content-length")) if isinstance(headers, Mapping) else None
    code = None
    error = response.get("Error") if isinstance(response, Mapping) else None
    if isinstance(error, Mapping):
        code = error.get("Code")
    if code in THROTTLE_CODES:
        entity.mark_throttle()
        entity.mark_error()
    entity.set_http_response(
        status=status if isinstance(status, int) else None, content_length=length
    )


def _inject(request: Any, **_: Any) -> None:
    """The ``before-send`` handler: puts the current call's headers on the request."""
    extra = _headers.get()
    if extra:
        try:
            for name, value in extra:
                request.headers[name] = value
        except Exception:  # an unexpected request object: send it as it is
            pass


class BotocoreInstrumentor(PatchingInstrumentor):
    """Wraps ``botocore.client.BaseClient._make_api_call``. Idempotent, reversible."""

    name = "botocore"
    module = "botocore"

    def __init__(self) -> None:
        super().__init__()
        self._hooked: weakref.WeakSet[Any] = weakref.WeakSet()
        self._hook_lock = threading.Lock()

    def patches(self) -> list[Patch]:
        import botocore.client

        return [Patch(botocore.client.BaseClient, "_make_api_call", self._wrap)]

    def _uninstrumented(self) -> None:
        with self._hook_lock:
            hooked, self._hooked = list(self._hooked), weakref.WeakSet()
        for events in hooked:
            with contextlib.suppress(Exception):  # unexpected emitter: the handler is inert
                events.unregister("before-send", _inject, unique_id=_HANDLER_ID)

    def _hook(self, client: Any) -> None:
        events = client.meta.events
        if events not in self._hooked:
            with self._hook_lock:
                events.register("before-send", _inject, unique_id=_HANDLER_ID)
                self._hooked.add(events)

    def _wrap(self, original: Callable[..., Any]) -> Callable[..., Any]:
        hook = self._hook

        def _make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
            try:
                model = client._service_model
                service: str = model.service_name
                name = str(model.service_id)
            except AttributeError:  # not a botocore client as we know it
                return original(client, operation_name, api_params)
            if (service, operation_name) in _NOT_TRACED:
                call: Call | None = pass_through()
            else:
                call = begin(name, "aws", what=f"trace the AWS call {service}.{operation_name}")
            if call is None:
                return original(client, operation_name, api_params)
            extra = call.headers()
            if extra:
                try:
                    hook(client)
                except Exception as exc:  # no header then, but the call is still recorded
                    warn_once("botocore-hook", "could not hook a botocore client: %r", exc)
            token = _headers.set(extra or None)
            try:
                with call:
                    try:
                        response = original(client, operation_name, api_params)
                    except Exception as exc:
                        if call.owned:
                            failed = getattr(exc, "response", None)
                            remote = isinstance(failed, Mapping)
                            _record(
                                call,
                                client,
                                service,
                                operation_name,
                                api_params,
                                failed if remote else None,
                            )
                            call.fail(exc, remote=remote)
                        raise
                    if call.owned:
                        _record(call, client, service, operation_name, api_params, response)
            finally:
                _headers.reset(token)
            return response

        return _make_api_call
