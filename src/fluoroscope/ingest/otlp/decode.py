"""OTLP trace requests from the wire: protobuf, OTLP/JSON, and AWS's ``T1S`` text.

* Protobuf bodies are parsed by the compiled ``opentelemetry-proto`` classes (the
  upb C backend where installed): no per-field Python.
* OTLP/JSON differs from protobuf's JSON mapping (ids are hex, not base64), and
  clients differ further: ids in any case, 64-bit integers as strings or numbers, enums
  as numbers or names, lowerCamelCase or snake_case keys. Each span is parsed on its own,
  so a span that cannot be read is rejected (counted, with a reason) while the rest of
  the request is kept; a body that is not an OTLP request at all is refused whole.
* ``T1S<base64 protobuf>`` is how AWS's OpenTelemetry distribution sends spans over
  UDP (and the CloudWatch agent inside PutTraceSegments); ``T1U`` carries unsampled
  spans, which are not traces to keep.

Every function raises :class:`OtlpDecodeError` for input it refuses; pure and
thread-safe.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from dataclasses import dataclass
from typing import Any, Final

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from fluoroscope.ingest.otlp.translate import Translation
from fluoroscope.model.errors import FluoroscopeError

__all__ = [
    "SAMPLED_PREFIX",
    "UNSAMPLED_PREFIX",
    "OtlpDecodeError",
    "decode_transit",
    "decompress",
    "parse_json_logs",
    "parse_json_traces",
    "parse_protobuf_logs",
    "parse_protobuf_traces",
]

SAMPLED_PREFIX: Final = b"T1S"
UNSAMPLED_PREFIX: Final = b"T1U"
_ID_KEYS: Final = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id",
                             "parent_span_id"})  # fmt: skip


class OtlpDecodeError(FluoroscopeError):
    """A body that is not an OTLP request (or is too large once decompressed)."""


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded from its ``Content-Encoding`` (gzip, deflate or none), refusing
    more than ``limit`` bytes once decompressed."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        data = body
    elif encoding in ("gzip", "x-gzip", "deflate"):
        wbits = 16 + zlib.MAX_WBITS if encoding != "deflate" else zlib.MAX_WBITS
        inflater = zlib.decompressobj(wbits)
        try:
            data = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise OtlpDecodeError(f"the body is not valid {encoding}: {exc}") from None
        if not inflater.eof and len(data) <= limit:
            raise OtlpDecodeError(f"the {encoding} body is truncated")
    else:
        raise OtlpDecodeError(f"unsupported Content-Encoding {encoding!r:.40}")
    if len(data) > limit:
        raise OtlpDecodeError(f"the body exceeds {limit} bytes once decompressed")
    return data


def parse_protobuf_traces(data: bytes) -> Any:
    """An ``ExportTraceServiceRequest`` from its protobuf bytes."""
    try:
        return ExportTraceServiceRequest.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OtlpDecodeError(f"the body is not an OTLP ExportTraceServiceRequest: {exc}") from None


def _hex_ids(value: Any) -> Any:
    """A JSON value with OTLP's hex ids turned into protobuf JSON's base64 (a bad id
    becomes empty, which translation then rejects for that span alone)."""
    if isinstance(value, dict):
        fixed = {}
        for key, item in value.items():
            if key in _ID_KEYS and isinstance(item, str):
                try:
                    item = base64.b64encode(bytes.fromhex(item)).decode("ascii")
                except ValueError:
                    item = ""
            elif isinstance(item, dict | list):
                item = _hex_ids(item)
            fixed[key] = item
        return fixed
    if isinstance(value, list):
        return [_hex_ids(item) for item in value]
    return value


def _get(obj: dict[str, Any], camel: str, snake: str) -> Any:
    return obj.get(camel, obj.get(snake))


@dataclass(frozen=True, slots=True)
class _Shape:
    """Where a signal's items sit in its OTLP/JSON request."""

    message: Any  # the request class
    resources: tuple[str, str]  # (camelCase, snake_case) keys at each level
    scopes: tuple[str, str]
    items: tuple[str, str]
    what: str  # an item, for messages


_TRACES: Final = _Shape(
    ExportTraceServiceRequest, ("resourceSpans", "resource_spans"),
    ("scopeSpans", "scope_spans"), ("spans", "spans"), "span",
)  # fmt: skip
_LOGS: Final = _Shape(
    ExportLogsServiceRequest, ("resourceLogs", "resource_logs"),
    ("scopeLogs", "scope_logs"), ("logRecords", "log_records"), "log record",
)  # fmt: skip
_PARSE_ERRORS: Final = (json_format.ParseError, ValueError, TypeError, RecursionError)


def parse_json_traces(data: bytes, out: Translation) -> Any:
    """An ``ExportTraceServiceRequest`` from OTLP/JSON; spans that cannot be read are
    left out and counted in ``out``."""
    return _parse_json(data, out, _TRACES)


def parse_json_logs(data: bytes, out: Translation) -> Any:
    """An ``ExportLogsServiceRequest`` from OTLP/JSON; log records that cannot be read
    are left out and counted in ``out``."""
    return _parse_json(data, out, _LOGS)


def parse_protobuf_logs(data: bytes) -> Any:
    """An ``ExportLogsServiceRequest`` from its protobuf bytes."""
    try:
        return ExportLogsServiceRequest.FromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise OtlpDecodeError(f"the body is not an OTLP ExportLogsServiceRequest: {exc}") from None


def _parse_json(data: bytes, out: Translation, shape: _Shape) -> Any:
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise OtlpDecodeError(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise OtlpDecodeError("an OTLP/JSON body must be an object")
    outer, middle, inner = shape.resources[0], shape.scopes[0], shape.items[0]
    resources = _get(body, *shape.resources) or []
    if not isinstance(resources, list):
        raise OtlpDecodeError(f"{outer} must be an array")
    request = shape.message()
    targets = getattr(request, shape.resources[1])
    for r_index, resource in enumerate(resources):
        if not isinstance(resource, dict):
            raise OtlpDecodeError(f"{outer}[{r_index}] must be an object")
        target = targets.add()
        scopes = _get(resource, *shape.scopes) or []
        if not isinstance(scopes, list):
            raise OtlpDecodeError(f"{outer}[{r_index}].{middle} must be an array")
        try:
            if isinstance(resource.get("resource"), dict):
                json_format.ParseDict(
                    resource["resource"], target.resource, ignore_unknown_fields=True
                )
        except _PARSE_ERRORS as exc:
            lost = sum(len(_get(s, *shape.items) or []) for s in scopes if isinstance(s, dict))
            out.reject(f"{outer}[{r_index}].resource: {exc}", max(lost, 1))
            del targets[-1]
            continue
        for s_index, scope_json in enumerate(scopes):
            if not isinstance(scope_json, dict):
                raise OtlpDecodeError(f"{outer}[{r_index}].{middle}[{s_index}] must be an object")
            scope = getattr(target, shape.scopes[1]).add()
            if isinstance(scope_json.get("scope"), dict):
                try:
                    json_format.ParseDict(
                        scope_json["scope"], scope.scope, ignore_unknown_fields=True
                    )
                except _PARSE_ERRORS:
                    scope.ClearField("scope")
            items = _get(scope_json, *shape.items) or []
            if not isinstance(items, list):
                raise OtlpDecodeError(f"{inner} must be an array")
            messages = getattr(scope, shape.items[1])
            for index, item in enumerate(items):
                message = messages.add()
                try:
                    if not isinstance(item, dict):
                        raise ValueError(f"a {shape.what} must be an object")
                    json_format.ParseDict(_hex_ids(item), message, ignore_unknown_fields=True)
                except _PARSE_ERRORS as exc:
                    del messages[-1]
                    out.reject(f"{shape.what} {index}: {str(exc)[:200]}")
    return request


def decode_transit(body: bytes) -> Any:
    """The ``ExportTraceServiceRequest`` in a ``T1S``/``T1U`` document (prefix included)."""
    try:
        data = base64.b64decode(body[3:].strip(), validate=True)
    except (binascii.Error, ValueError):
        raise OtlpDecodeError("the T1 document is not valid base64") from None
    return parse_protobuf_traces(data)
