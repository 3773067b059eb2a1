"""OTLP log records -> log lines for the log store, found by trace like any other line.

Each record becomes one JSON line in a log group and stream named after its resource:
the group is the resource's first ``aws.log.group.names`` entry (as AWS's OpenTelemetry
distribution names it), else ``/otel/<service.name>``; the stream is its
``service.instance.id``, else ``host.name``, else ``otlp``. The line holds what the
store's line reader looks for - ``traceId`` in X-Ray form, ``spanId``, ``level`` (the
severity text, else the severity number's name) - then ``severityNumber``, ``body``
(any value: a string, or a map, array, number...), ``attributes``, ``scope`` and
``eventName`` when present. The event's time is ``time_unix_nano``, else
``observed_time_unix_nano``, else the receiving time, in milliseconds.

A record that cannot be stored (an id of the wrong length, a line over the store's
event size) is rejected on its own, with a reason. Pure and thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from fluoroscope.ingest.otlp.translate import Translation, any_value, attribute_dict
from fluoroscope.model.ids import xray_trace_id

__all__ = ["MAX_LINE_BYTES", "LogBatch", "log_batches"]

MAX_LINE_BYTES: Final = 256 * 1024 - 26
"""Largest line accepted (CloudWatch Logs' event size, less its per-event overhead)."""

_SEVERITIES: Final = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
_ZERO_TRACE: Final = bytes(16)
_ZERO_SPAN: Final = bytes(8)


@dataclass(slots=True)
class LogBatch:
    """The lines of one log group and stream, with their times (ms)."""

    group: str
    stream: str
    timestamps: list[int] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def _severity(number: int, text: str) -> str:
    if text:
        return text.upper()
    if 1 <= number <= 24:
        return _SEVERITIES[(number - 1) // 4]
    return ""


def _names(resource: dict[str, Any]) -> tuple[str, str]:
    names = resource.get("aws.log.group.names")
    group = ""
    if isinstance(names, str):
        group = next((n for n in names.split("&") if n), "")
    elif isinstance(names, list) and names and isinstance(names[0], str):
        group = names[0]
    if not group:
        group = f"/otel/{resource.get('service.name') or 'unknown_service'}"
    stream = resource.get("service.instance.id") or resource.get("host.name") or "otlp"
    return str(group)[:512], str(stream)[:512].replace(":", "_")


def log_batches(request: Any, now_ms: int, out: Translation) -> list[LogBatch]:
    """The lines of ``request`` (an ``ExportLogsServiceRequest``) by group and stream;
    records that cannot be stored are counted in ``out`` (``rejected``)."""
    batches: dict[tuple[str, str], LogBatch] = {}
    dumps = orjson.dumps
    for resource_logs in request.resource_logs:
        resource = attribute_dict(resource_logs.resource.attributes)
        key = _names(resource)
        batch = batches.get(key)
        if batch is None:
            batch = batches[key] = LogBatch(*key)
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope.name
            for position, record in enumerate(scope_logs.log_records):
                try:
                    line, when = _line(record, scope, now_ms, dumps)
                except ValueError as exc:
                    out.reject(f"log record {position}: {exc}")
                    continue
                batch.timestamps.append(when)
                batch.messages.append(line)
    return [b for b in batches.values() if b.messages]


def _line(record: Any, scope: str, now_ms: int, dumps: Any) -> tuple[str, int]:
    trace_id, span_id = record.trace_id, record.span_id
    if trace_id and len(trace_id) != 16:
        raise ValueError("trace_id must be 16 bytes or empty")
    if span_id and len(span_id) != 8:
        raise ValueError("span_id must be 8 bytes or empty")
    line: dict[str, Any] = {}
    if trace_id and trace_id != _ZERO_TRACE:
        line["traceId"] = xray_trace_id(trace_id)
    if span_id and span_id != _ZERO_SPAN:
        line["spanId"] = span_id.hex()
    level = _severity(record.severity_number, record.severity_text)
    if level:
        line["level"] = level
    if record.severity_number:
        line["severityNumber"] = record.severity_number
    line["body"] = any_value(record.body) if record.HasField("body") else None
    attributes = attribute_dict(record.attributes)
    if attributes:
        line["attributes"] = attributes
    if scope:
        line["scope"] = scope
    if record.event_name:
        line["eventName"] = record.event_name
    text = dumps(line).decode()
    if len(text) > MAX_LINE_BYTES:
        raise ValueError(f"the line is {len(text)} bytes; the limit is {MAX_LINE_BYTES}")
    nanos = record.time_unix_nano or record.observed_time_unix_nano
    return text, nanos // 1_000_000 if nanos else now_ms
