"""Zipkin v2 JSON spans as an OTLP request, so they are translated like OTLP spans.

The mapping is the OpenTelemetry Collector's Zipkin receiver's: spans are grouped into a
resource per ``localEndpoint.serviceName`` (``service.name``); ``kind`` becomes the span
kind (absent: INTERNAL), ``timestamp``/``duration`` (microseconds) the start and end,
``tags`` string attributes (``error`` or ``otel.status_code=ERROR`` an ERROR status
with the ``error`` tag as its message), ``remoteEndpoint`` ``peer.service``,
``net.peer.ip`` and ``net.peer.port``, and ``annotations`` events (an annotation
whose value is a JSON object of one key - as OpenTelemetry's Zipkin exporter writes
events - becomes that event with its attributes). 64-bit trace ids are padded to 128
bits with leading zeros. A span that cannot be read is rejected on its own (counted,
with a reason). Pure and thread-safe.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from fluoroscope.ingest.otlp.decode import OtlpDecodeError
from fluoroscope.ingest.otlp.translate import Translation

__all__ = ["zipkin_request"]

_KINDS: Final = {"SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}


def _id(value: object, length: int, field: str) -> bytes:
    if not isinstance(value, str) or not value or len(value) > length:
        raise ValueError(f"{field} must be up to {length} hex digits")
    return bytes.fromhex(value.rjust(length, "0"))


def _set(attributes: Any, key: str, value: object) -> None:
    kv = attributes.add()
    kv.key = key
    if isinstance(value, bool):
        kv.value.bool_value = value
    elif isinstance(value, int):
        kv.value.int_value = value
    elif isinstance(value, float):
        kv.value.double_value = value
    else:
        kv.value.string_value = value if isinstance(value, str) else orjson.dumps(value).decode()


def _span(target: Any, span: dict[str, Any]) -> None:
    target.trace_id = _id(span.get("traceId"), 32, "traceId")
    target.span_id = _id(span.get("id"), 16, "id")
    if span.get("parentId"):
        target.parent_span_id = _id(span["parentId"], 16, "parentId")
    target.name = str(span.get("name") or "")
    target.kind = _KINDS.get(str(span.get("kind", "")).upper(), 1)
    start, duration = span.get("timestamp"), span.get("duration", 0)
    if not isinstance(start, int) or isinstance(start, bool) or start <= 0:
        raise ValueError("timestamp must be a positive number of microseconds")
    if not isinstance(duration, int) or isinstance(duration, bool) or duration < 0:
        raise ValueError("duration must be a non-negative number of microseconds")
    target.start_time_unix_nano = start * 1000
    target.end_time_unix_nano = (start + duration) * 1000
    tags = span.get("tags") or {}
    if not isinstance(tags, dict):
        raise ValueError("tags must be an object")
    for key, value in tags.items():
        _set(target.attributes, str(key), value)
    if "error" in tags or tags.get("otel.status_code") == "ERROR":
        target.status.code = 2
        message = tags.get("error") or tags.get("otel.status_description") or ""
        target.status.message = str(message)
    remote = span.get("remoteEndpoint")
    if isinstance(remote, dict):
        if remote.get("serviceName"):
            _set(target.attributes, "peer.service", str(remote["serviceName"]))
        ip = remote.get("ipv4") or remote.get("ipv6")
        if ip:
            _set(target.attributes, "net.peer.ip", str(ip))
        if isinstance(remote.get("port"), int):
            _set(target.attributes, "net.peer.port", remote["port"])
    for annotation in span.get("annotations") or ():
        if not isinstance(annotation, dict):
            continue
        event = target.events.add()
        when = annotation.get("timestamp")
        event.time_unix_nano = when * 1000 if isinstance(when, int) and when > 0 else 0
        value = str(annotation.get("value", ""))
        event.name = value
        if value.startswith("{"):
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            if isinstance(parsed, dict) and len(parsed) == 1:
                ((name, attributes),) = parsed.items()
                event.name = str(name)
                if isinstance(attributes, dict):
                    for key, item in attributes.items():
                        _set(event.attributes, str(key), item)


def zipkin_request(data: bytes, out: Translation) -> Any:
    """The ``ExportTraceServiceRequest`` holding the spans of a Zipkin v2 JSON body;
    spans that cannot be read are counted in ``out``."""
    try:
        spans = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(f"the body is not JSON: {exc}") from None
    if not isinstance(spans, list):
        raise OtlpDecodeError("a Zipkin v2 body must be a JSON array of spans")
    request = ExportTraceServiceRequest()
    scopes: dict[str, Any] = {}
    for index, span in enumerate(spans):
        if not isinstance(span, dict):
            out.reject(f"span {index}: must be an object")
            continue
        local = span.get("localEndpoint")
        service = ""
        if isinstance(local, dict) and local.get("serviceName"):
            service = str(local["serviceName"])
        scope = scopes.get(service)
        if scope is None:
            resource_spans = request.resource_spans.add()
            if service:
                _set(resource_spans.resource.attributes, "service.name", service)
            scope = scopes[service] = resource_spans.scope_spans.add()
        target = scope.spans.add()
        try:
            _span(target, span)
        except (ValueError, TypeError, OverflowError) as exc:
            del scope.spans[-1]
            out.reject(f"span {index}: {exc}")
    return request
