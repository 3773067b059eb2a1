"""Which service-graph node a subsegment's downstream call points at (reference §6.1).

One rule serves the service graph (ingest) and the inferred segments of
BatchGetTraces (query), so the two always agree:

* ``namespace: "aws"`` - an AWS resource: named after the resource when the call names
  one (DynamoDB table, S3 bucket, SQS queue, SNS topic, Lambda function), typed
  ``AWS::<Service>::<Resource>``; otherwise named and typed after the service
  (``AWS::<Service>``). Service names are matched case-insensitively, since the Python
  SDK sends ``dynamodb`` where Java and Node send ``DynamoDB``.
* a ``sql`` block - a database, type ``Database::SQL``, named after the subsegment.
* ``namespace: "remote"``, or an ``http`` request outside the ``local`` namespace - a
  remote service, type ``remote``, named after the subsegment (usually the host).
* anything else (``local`` code blocks) is not a node.

Pure functions; thread-safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

__all__ = [
    "AWS_SERVICES",
    "ERROR",
    "FAULT",
    "THROTTLE",
    "NodeId",
    "as_dict",
    "call_target",
    "downstream_node",
    "http_status",
    "outcome",
    "outcome_of",
    "status_of",
]


class NodeId(NamedTuple):
    """A service-graph node: its name and type (``""`` when a segment has no origin)."""

    name: str
    type: str


_TUPLE_NEW: Final = tuple.__new__


def _node(name: str, type_: str) -> NodeId:
    """``NodeId(name, type_)`` without the interpreted ``__new__`` a NamedTuple has
    (faster as Python, and compiled no Python frame at all)."""
    return _TUPLE_NEW(NodeId, (name, type_))


class _AwsService(NamedTuple):
    display: str
    resource_type: str
    resource_field: str


AWS_SERVICES: Final[dict[str, _AwsService]] = {
    "dynamodb": _AwsService("DynamoDB", "AWS::DynamoDB::Table", "table_name"),
    "s3": _AwsService("S3", "AWS::S3::Bucket", "bucket_name"),
    "sqs": _AwsService("SQS", "AWS::SQS::Queue", "queue_url"),
    "sns": _AwsService("SNS", "AWS::SNS::Topic", "topic_arn"),
    "lambda": _AwsService("Lambda", "AWS::Lambda::Function", "function_name"),
    "kinesis": _AwsService("Kinesis", "AWS::Kinesis::Stream", "stream_name"),
    "states": _AwsService("StepFunctions", "AWS::StepFunctions::StateMachine", "state_machine_arn"),
    "sfn": _AwsService("StepFunctions", "AWS::StepFunctions::StateMachine", "state_machine_arn"),
    "events": _AwsService("EventBridge", "AWS::Events::EventBus", "event_bus_name"),
    "secretsmanager": _AwsService("SecretsManager", "AWS::SecretsManager", ""),
    "ssm": _AwsService("SSM", "AWS::SSM", ""),
    "sts": _AwsService("STS", "AWS::STS", ""),
    "xray": _AwsService("XRay", "AWS::XRay", ""),
}


def _resource_name(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        return ""
    if field == "queue_url":
        return value.rstrip("/").rsplit("/", 1)[-1]
    if field in ("topic_arn", "state_machine_arn") or value.startswith("arn:"):
        return value.rsplit(":", 1)[-1]
    return value


def as_dict(value: Any) -> dict[str, Any] | None:
    """``value`` read as a dict: itself when it is one, a copy of another mapping,
    ``None`` for anything else. ``type(x) is dict`` is tested first: parsed JSON holds
    only plain dicts, and the abc ``isinstance(x, Mapping)`` check costs several times
    more. Ingest reads an entity's blocks through this, because compiled, ``.get`` on a
    value typed ``Any`` is a generic method call, several times a dict lookup."""
    if type(value) is dict:
        return value
    if value is not None and isinstance(value, Mapping):
        return dict(value)
    return None


def downstream_node(sub: dict[str, Any]) -> NodeId | None:
    """The node a subsegment calls, or ``None`` when it is not a downstream call."""
    target = call_target(sub, sub.get("name"), sub.get("namespace"), sub.get("http"))
    return None if target is None else _node(target[0], target[1])


def call_target(
    sub: dict[str, Any], name: Any, namespace: Any, http: Any
) -> tuple[str, str] | None:
    """:func:`downstream_node` as a plain (name, type) tuple, for a subsegment whose
    ``name``, ``namespace`` and ``http`` fields (``None`` when absent) the caller has
    read already: ingest reads each field of an entity once (``Assembler._explode``)
    and looks the node up among those it made before
    (:func:`~fluoroscope.model.entityrecords.segment_node`), where a new
    :class:`NodeId` would cost more than the lookup (a tuple subclass made through
    ``tuple.__new__``)."""
    if not isinstance(name, str):
        return None
    if namespace == "aws":
        key = name.lower().replace(" ", "")
        service = AWS_SERVICES.get(key)
        if service is None:
            display = name if name[:1].isupper() else name.capitalize()
            return display, f"AWS::{display}"
        aws = as_dict(sub.get("aws"))
        if aws is not None and service.resource_field:
            resource = _resource_name(service.resource_field, aws.get(service.resource_field))
            if not resource and service.resource_field == "table_name":
                names = aws.get("table_names") or aws.get("resource_names")
                if isinstance(names, list) and len(names) == 1:
                    resource = _resource_name("table_name", names[0])
            if resource:
                return resource, service.resource_type
        return service.display, f"AWS::{service.display}"
    if "sql" in sub:
        return name, "Database::SQL"
    if namespace == "remote":
        return name, "remote"
    if (
        namespace != "local"
        and http is not None
        and (type(http) is dict or isinstance(http, Mapping))
    ):
        return name, "remote"
    return None


def status_of(entity: dict[str, Any]) -> int:
    """The HTTP response status recorded on an entity, or 0."""
    return http_status(entity.get("http"))


def http_status(http: Any) -> int:
    """:func:`status_of` for an entity whose ``http`` field (``None`` when absent) the
    caller has read already."""
    block = as_dict(http)  # (this runs per entity)
    if block is None:
        return 0
    response = as_dict(block.get("response"))
    if response is None:
        return 0
    status = response.get("status")
    if type(status) is int or (isinstance(status, int) and not isinstance(status, bool)):
        return status
    return 0


ERROR: Final = 1
FAULT: Final = 2
THROTTLE: Final = 4


def outcome(entity: dict[str, Any]) -> int:
    """Bit set of ERROR / FAULT / THROTTLE from the flags and the response status."""
    return outcome_of(entity, status_of(entity))


def outcome_of(entity: dict[str, Any], status: int) -> int:
    """:func:`outcome` for an entity whose :func:`status_of` is already known."""
    bits = 0
    if entity.get("error") is True:
        bits = ERROR
    if entity.get("fault") is True:
        bits |= FAULT
    if entity.get("throttle") is True:
        bits |= THROTTLE | ERROR
    if status:
        if status >= 500:
            bits |= FAULT
        elif status == 429:
            bits |= THROTTLE | ERROR
        elif status >= 400:
            bits |= ERROR
    return bits
