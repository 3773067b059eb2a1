"""How :class:`~fluoroscope.sdk.LogsHandler` turns a log record into one log event's text.

Without a formatter of the user's, each record becomes one JSON object per line, in the
shape Powertools for AWS Lambda writes (logs.md §5.4), so the server's ingest finds the
trace id under ``xray_trace_id`` (logs.md §5.8)::

    {"level":"INFO","location":"get_order:31","timestamp":"2026-12-03T22:40:01.123Z",
     "service":"orders","logger":"orders.db","xray_trace_id":
     "1-5759e988-bd862e3fe1be46a994272793","xray_segment_id":"53995c3f42cd8ad8",
     "message":"loaded", ...extra fields, "exception":"...","exception_name":"KeyError"}

The two ids come before the message (ingest takes the first trace id in a line, and a
message may quote another) and are left out outside any segment. With a formatter set on
the handler, its text is used, and when the record has a trace id the text does not
already contain, the X-Ray SDK's own form (logs.md §5.6) is appended:
`` AWS-XRAY-TRACE-ID: <trace id>@<entity id>``.

The ids are those stamped on the record by the SDK's logging integration
(:mod:`fluoroscope.sdk.instrument.logging`, which stamps at record creation) when present;
otherwise they are read from the current context, on the thread that logs.

Every event is valid UTF-8 (unencodable characters become U+FFFD) and at most
``limit`` bytes: a longer JSON line has its ``message`` and ``exception`` shortened (the
line stays valid JSON and keeps its ids); a longer text line is cut before the ids are
appended. All functions here never raise for any record (the handler counts a record
whose user formatter raises as unformattable).
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Final

from fluoroscope.sdk._serialize import _backend, _default
from fluoroscope.sdk.instrument.logging import ENTITY_ID_ATTRIBUTE, TRACE_ID_ATTRIBUTE, stamp

__all__ = ["TRUNCATED", "encode_text", "json_line", "record_ids", "text_line"]

TRUNCATED: Final = "…[truncated]"
_COMPACT: Final = (",", ":")
_SURROGATES: Final = re.compile("[\ud800-\udfff]")
_STANDARD: Final = frozenset(
    (
        *("args", "asctime", "created", "exc_info", "exc_text", "filename", "funcName"),
        *("levelname", "levelno", "lineno", "message", "module", "msecs", "msg", "name"),
        *("pathname", "process", "processName", "relativeCreated", "stack_info", "thread"),
        *("threadName", "taskName", TRACE_ID_ATTRIBUTE, ENTITY_ID_ATTRIBUTE),
    )
)
"""A ``LogRecord``'s own attributes; any other is an ``extra`` field, written out."""


def record_ids(record: logging.LogRecord) -> tuple[str, str]:
    """The record's (trace id, entity id): as stamped, else from the current context."""
    trace_id = getattr(record, TRACE_ID_ATTRIBUTE, None)
    if trace_id is None:
        stamp(record)
        trace_id = getattr(record, TRACE_ID_ATTRIBUTE, "")
    return str(trace_id or ""), str(getattr(record, ENTITY_ID_ATTRIBUTE, "") or "")


def encode_text(text: str) -> bytes:
    """UTF-8 bytes of ``text``; lone surrogates and the like become U+FFFD."""
    try:
        return text.encode()
    except UnicodeEncodeError:  # lone surrogates (from bytes decoded with surrogateescape)
        return _SURROGATES.sub("\ufffd", text).encode()


def _cut(data: bytes, size: int) -> str:
    """The longest prefix of ``data`` of at most ``size`` bytes that is whole UTF-8."""
    return data[: max(0, size)].decode("utf-8", "ignore")


_second: list[tuple[int, str]] = [(-1, "")]  # the last second formatted, and its text


def _timestamp(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    cached_second, text = _second[0]
    if cached_second != seconds:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second[0] = (seconds, text)
    return f"{text}.{millis:03d}Z"


def _dumps(doc: dict[str, Any]) -> bytes:
    """``doc`` as compact JSON in UTF-8: orjson when installed, else json; values JSON
    cannot hold become their ``repr``; never raises."""
    try:
        return _backend()(doc)
    except Exception:  # orjson: lone surrogates, ints beyond 64 bits, ...
        pass
    try:
        text = json.dumps(doc, ensure_ascii=False, separators=_COMPACT, default=_default)
    except Exception:  # circular references, keys JSON cannot hold
        plain = (str, int, float, bool, type(None))
        safe = {k: v if isinstance(v, plain) else _default(v) for k, v in doc.items()}
        text = json.dumps(safe, ensure_ascii=False, separators=_COMPACT)
    return encode_text(text)


def json_line(record: logging.LogRecord, service: str, limit: int) -> tuple[bytes, bool]:
    """The record as one JSON line (UTF-8, at most ``limit`` bytes) and whether it was cut."""
    trace_id, entity_id = record_ids(record)
    doc: dict[str, Any] = {
        "level": record.levelname,
        "location": f"{record.funcName}:{record.lineno}",
        "timestamp": _timestamp(record.created),
        "service": service,
        "logger": record.name,
    }
    if trace_id:  # before the message: ingest takes the first trace id in a line
        doc["xray_trace_id"] = trace_id
        if entity_id:
            doc["xray_segment_id"] = entity_id
    doc["message"] = record.getMessage()
    for key, value in record.__dict__.items():
        if key not in _STANDARD and key not in doc and not key.startswith("_"):
            doc[key] = value
    if record.exc_info and record.exc_info[0] is not None:
        doc["exception"] = logging.Formatter().formatException(record.exc_info)
        doc["exception_name"] = record.exc_info[0].__name__
    elif record.exc_text:
        doc["exception"] = record.exc_text
    if record.stack_info:
        doc["stack_info"] = record.stack_info
    data = _dumps(doc)
    if len(data) <= limit:
        return data, False
    # too long: shorten the long free-text fields, keep everything else (and valid JSON)
    excess = len(data) - limit + 2 * len(TRUNCATED.encode()) + 64
    for key in ("exception", "stack_info", "message"):
        value = doc.get(key)
        if not isinstance(value, str) or excess <= 0:
            continue
        raw = encode_text(value)
        keep = max(0, len(raw) - excess)
        excess -= len(raw) - keep
        doc[key] = _cut(raw, keep) + TRUNCATED
    data = _dumps(doc)
    if len(data) > limit:  # huge extra fields: fall back to the essentials
        essentials: dict[str, Any] = {
            k: doc[k] for k in ("level", "message", "timestamp", "service") if k in doc
        }
        for key in ("xray_trace_id", "xray_segment_id"):
            if key in doc:
                essentials[key] = doc[key]
        essentials["message"] = _cut(encode_text(str(essentials["message"])), limit // 2)
        data = _dumps(essentials)
    return data, True


def text_line(record: logging.LogRecord, text: str, limit: int) -> tuple[bytes, bool]:
    """A formatter's ``text`` with the X-Ray ids appended when missing; at most ``limit`` bytes."""
    trace_id, entity_id = record_ids(record)
    suffix = ""
    if trace_id and trace_id not in text:
        suffix = f" AWS-XRAY-TRACE-ID: {trace_id}" + (f"@{entity_id}" if entity_id else "")
    data = encode_text(text or " ")
    tail = suffix.encode()
    if len(data) + len(tail) <= limit:
        return data + tail, False
    room = limit - len(tail) - len(TRUNCATED.encode())
    return encode_text(_cut(data, room) + TRUNCATED) + tail, True
