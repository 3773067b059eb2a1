"""X-Ray REST conventions (reference §4.1) and JSON shapes of the read models.

Every operation is ``POST`` at a fixed root path with a JSON body (empty allowed); who
may call is decided in front of the handlers (:mod:`fluoroscope.server.auth`). Errors
carry ``x-amzn-ErrorType`` and ``{"__type", "message"}``; every response carries
``x-amzn-RequestId``. Times are epoch seconds as numbers on the way out, numbers or
ISO-8601 strings on the way in.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any, Final

import orjson
from starlette.requests import Request
from starlette.responses import Response

from fluoroscope.model.errors import (
    ApiError,
    InvalidRequest,
    ResourceNotFound,
    StoreUnwritable,
    Throttled,
)
from fluoroscope.model.graph import GraphNode, ServiceGraph, Statistics, TimeSeriesPoint
from fluoroscope.model.groups import Group
from fluoroscope.model.summary import RootCause, ServiceId, Trace, TraceSummary

__all__ = [
    "error_response",
    "json_response",
    "read_body",
    "read_bytes",
    "render_graph",
    "render_group",
    "render_summary",
    "render_time_series",
    "render_trace",
    "require_time",
]


def json_response(payload: Mapping[str, Any], status: int = 200) -> Response:
    """A JSON response with the headers X-Ray clients expect."""
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type="application/json",
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


def error_response(exc: Exception) -> Response:
    """Map a project exception to X-Ray's error shape."""
    message = str(exc)
    if isinstance(exc, ApiError):
        code, status = exc.code, exc.status
    elif isinstance(exc, ResourceNotFound):
        code, status = "ResourceNotFoundException", 404
    elif isinstance(exc, InvalidRequest):
        code, status = "InvalidRequestException", 400
    elif isinstance(exc, Throttled):
        code, status = "ThrottledException", 429
    elif isinstance(exc, StoreUnwritable):  # AWS's common error for a passing failure
        code, status = "ServiceUnavailable", 503
        message = f"the store cannot take writes ({exc.reason}); retry later"
    else:
        code, status = "InternalFailure", 500
    response = json_response({"__type": code, "message": message}, status)
    response.headers["x-amzn-ErrorType"] = code
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


_DISCARD_BYTES: Final = 64 * 1024 * 1024
_DISCARD_SECONDS: Final = 10.0


async def read_body(request: Request, limit: int) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty body); InvalidRequest otherwise.

    The body is read by :func:`read_bytes` (at most ``limit`` bytes)."""
    body = await read_bytes(request, limit)
    if not body.strip():
        return {}
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        value = _loads_lenient(body, exc)
    if not isinstance(value, dict):
        raise InvalidRequest("request body must be a JSON object")
    return value


async def read_bytes(request: Request, limit: int) -> bytes:
    """The request's body; InvalidRequest when it passes ``limit`` bytes.

    The body is read as it streams in and refused as soon as it passes ``limit``
    bytes, declared or not (chunked): memory never holds more than ``limit``. What is
    left of an oversized body is read and thrown away, up to 64 MiB and 10 s, so that
    the client is sent the refusal rather than a reset connection while it still sends.
    """
    declared = request.headers.get("content-length")
    stream = request.stream()
    if declared and declared.isdigit() and int(declared) > limit:
        await _discard(stream)
        raise InvalidRequest(f"request body of {declared} bytes exceeds the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            chunks.clear()
            await _discard(stream)
            raise InvalidRequest(f"request body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _loads_lenient(body: bytes, error: orjson.JSONDecodeError) -> Any:
    """``body`` parsed by the standard library, which takes what JSON's grammar allows
    but orjson refuses: escaped lone surrogates (``"\\ud800"``), as a client's JSON
    encoder writes them for a broken string. One such string in one document must not
    cost the request's other documents (that document is then refused on its own)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidRequest(f"request body is not valid JSON: {error}") from None


async def _discard(stream: AsyncIterator[bytes]) -> None:
    """Read and drop what is left of ``stream``, within the bounds of :func:`read_body`."""
    deadline = time.monotonic() + _DISCARD_SECONDS
    dropped = 0
    async for chunk in stream:
        dropped += len(chunk)
        if dropped > _DISCARD_BYTES or time.monotonic() > deadline:
            return


_LATEST_TIME: Final = float(2**32 - 1)
"""The store's last second (its times are unsigned 32-bit): 2106-02-07T06:28:15Z."""


def require_time(body: Mapping[str, Any], key: str) -> float:
    """A required epoch-seconds parameter given as a number or an ISO-8601 string; not
    before 1970 and not after 2106-02-07T06:28:15Z (the store's times are unsigned
    32-bit seconds; a window past them would reach the engine as a number it refuses)."""
    value = body.get(key)
    if value is None:
        raise InvalidRequest(f"{key} is required")
    if isinstance(value, bool):
        raise InvalidRequest(f"{key} must be a timestamp")
    seconds: float | None = None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            seconds = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    if seconds is None:
        raise InvalidRequest(
            f"{key} must be epoch seconds or an ISO-8601 timestamp, got {value!r:.40}"
        )
    if not seconds >= 0:
        raise InvalidRequest(f"{key} must not precede 1970-01-01, got {value!r:.40}")
    if seconds > _LATEST_TIME:
        raise InvalidRequest(
            f"{key} must not follow 2106-02-07T06:28:15Z (epoch second {_LATEST_TIME:.0f}), "
            f"got {value!r:.40}"
        )
    return seconds


def _service_id(service: ServiceId) -> dict[str, Any]:
    shaped: dict[str, Any] = {"Name": service.name, "Names": [service.name]}
    if service.type:
        shaped["Type"] = service.type
    if service.account_id:
        shaped["AccountId"] = service.account_id
    return shaped


def _annotation_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BooleanValue": value}
    if isinstance(value, int | float):
        return {"NumberValue": value}
    return {"StringValue": str(value)}


def _root_cause(summary: TraceSummary, cause: RootCause, timing: bool) -> dict[str, Any]:
    service = summary.services[cause.service]
    path: list[dict[str, Any]] = []
    for entity in cause.path:
        step: dict[str, Any] = {"Name": entity.name}
        if timing:
            step["Coverage"] = entity.coverage if entity.coverage is not None else 0.0
        else:
            step["Exceptions"] = [{"Name": t, "Message": m} for t, m in entity.exceptions]
        step["Remote"] = entity.remote
        path.append(step)
    shaped: dict[str, Any] = {
        "Name": service.name,
        "Names": [service.name],
        "EntityPath": path,
        "Inferred": cause.inferred,
    }
    if service.type:
        shaped["Type"] = service.type
    if service.account_id:
        shaped["AccountId"] = service.account_id
    result: dict[str, Any] = {"Services": [shaped]}
    if not timing:
        result["ClientImpacting"] = cause.client_impacting
    return result


def render_summary(summary: TraceSummary) -> dict[str, Any]:
    """A ``TraceSummary`` in X-Ray's JSON shape."""
    services = [_service_id(s) for s in summary.services]
    shaped: dict[str, Any] = {
        "Id": summary.id,
        "StartTime": summary.start_time,
        "Duration": summary.duration,
        "HasFault": summary.has_fault,
        "HasError": summary.has_error,
        "HasThrottle": summary.has_throttle,
        "IsPartial": summary.is_partial,
        "Annotations": {
            key: [
                {
                    "AnnotationValue": _annotation_value(value),
                    "ServiceIds": [services[i] for i in ids],
                }
                for value, ids in values
            ]
            for key, values in summary.annotations.items()
        },
        "Users": [
            {"UserName": name, "ServiceIds": [services[i] for i in ids]}
            for name, ids in summary.users
        ],
        "ServiceIds": services,
        "ResourceARNs": [{"ARN": arn} for arn in summary.resource_arns],
        "InstanceIds": [{"Id": i} for i in summary.instance_ids],
        "AvailabilityZones": [{"Name": z} for z in summary.availability_zones],
        "Revision": summary.revision,
    }
    for key, causes in (
        ("FaultRootCauses", summary.fault_root_causes),
        ("ErrorRootCauses", summary.error_root_causes),
        ("ResponseTimeRootCauses", summary.response_time_root_causes),
    ):
        shaped[key] = [
            _root_cause(summary, cause, key == "ResponseTimeRootCauses") for cause in causes
        ]
    if summary.response_time is not None:
        shaped["ResponseTime"] = summary.response_time
    if summary.entry_point is not None:
        shaped["EntryPoint"] = services[summary.entry_point]
    if summary.http is not None:
        http: dict[str, Any] = {}
        if summary.http.url:
            http["HttpURL"] = summary.http.url
        if summary.http.status:
            http["HttpStatus"] = summary.http.status
        if summary.http.method:
            http["HttpMethod"] = summary.http.method
        if summary.http.user_agent:
            http["UserAgent"] = summary.http.user_agent
        if summary.http.client_ip:
            http["ClientIp"] = summary.http.client_ip
        shaped["Http"] = http
    return shaped


def render_trace(trace: Trace) -> dict[str, Any]:
    """A ``Trace`` in X-Ray's JSON shape: each document as a JSON string."""
    return {
        "Id": trace.id,
        "Duration": trace.duration,
        "LimitExceeded": trace.limit_exceeded,
        "Segments": [
            {"Id": doc["id"], "Document": orjson.dumps(doc).decode()} for doc in trace.documents
        ],
    }


def _statistics(stats: Statistics) -> dict[str, Any]:
    return {
        "OkCount": stats.ok,
        "ErrorStatistics": {
            "ThrottleCount": stats.throttles,
            "OtherCount": stats.errors,
            "TotalCount": stats.errors + stats.throttles,
        },
        "FaultStatistics": {"OtherCount": stats.faults, "TotalCount": stats.faults},
        "TotalCount": stats.total,
        "TotalResponseTime": stats.response_time,
    }


def _histogram(stats: Statistics) -> list[dict[str, Any]]:
    return [{"Value": value, "Count": count} for value, count in stats.histogram]


def _service(ref: int, node: GraphNode) -> dict[str, Any]:
    shaped: dict[str, Any] = {
        "ReferenceId": ref,
        "Name": node.name,
        "Names": [node.name],
        "Type": node.type if node.type else "",
        "State": "active" if not (node.inferred or node.client) else "unknown",
        "StartTime": node.start,
        "EndTime": node.end,
        "Edges": [
            {
                "ReferenceId": edge.target,
                "StartTime": edge.start,
                "EndTime": edge.end,
                "SummaryStatistics": _statistics(edge.statistics),
                "ResponseTimeHistogram": _histogram(edge.statistics),
                "Aliases": [],
            }
            for edge in node.edges
        ],
    }
    if not node.type:
        del shaped["Type"]
    if node.root:
        shaped["Root"] = True
    if node.statistics is not None:
        shaped["SummaryStatistics"] = _statistics(node.statistics)
        shaped["DurationHistogram"] = _histogram(node.statistics)
        shaped["ResponseTimeHistogram"] = _histogram(node.statistics)
    return shaped


def render_graph(graph: ServiceGraph) -> dict[str, Any]:
    """A ``ServiceGraph`` as GetServiceGraph's response body."""
    return {
        "StartTime": graph.start,
        "EndTime": graph.end,
        "Services": [_service(i, node) for i, node in enumerate(graph.nodes)],
        "ContainsOldGroupVersions": False,
    }


def render_time_series(points: list[TimeSeriesPoint]) -> dict[str, Any]:
    """GetTimeSeriesServiceStatistics' response body."""
    series = []
    for point in points:
        item: dict[str, Any] = {
            "Timestamp": point.timestamp,
            "ResponseTimeHistogram": _histogram(point.statistics),
        }
        key = "EdgeSummaryStatistics" if point.edge else "ServiceSummaryStatistics"
        item[key] = _statistics(point.statistics)
        series.append(item)
    return {"TimeSeriesServiceStatistics": series, "ContainsOldGroupVersions": False}


def render_group(group: Group) -> dict[str, Any]:
    """A ``Group`` in X-Ray's JSON shape."""
    shaped: dict[str, Any] = {
        "GroupName": group.name,
        "GroupARN": group.arn,
        "InsightsConfiguration": {
            "InsightsEnabled": group.insights_enabled,
            "NotificationsEnabled": group.notifications_enabled,
        },
    }
    if group.filter_expression is not None:
        shaped["FilterExpression"] = group.filter_expression
    return shaped
