"""Log lines for the query tests: the lines of ``reference/logs.md`` §5 (Lambda text and
JSON platform lines, the Python runtime, Powertools, API Gateway access logs) stored in
a real chDB ``log_events`` table, each with the columns ingest extracts from it.

``store_lines(store, lines)`` writes ``Line`` rows through SQL with bound parameters; the
extraction here (request id, trace id, segment id, level, Lambda line type, first JSON
object) follows Contract 1 of the log store for exactly these line shapes.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from typing import Any

from fluoroscope.store.store import Store

BASE_MS = 1_764_700_000_000  # 2025-12-02 18:26:40 UTC
"""The time every test line is placed relative to (the first bin starts on a 5 min)."""

_REQUEST = re.compile(r"RequestId: (\S+)|^\[[A-Z]+\]\t\S+\t([0-9a-f-]{36})\t")
_TRACE = re.compile(r"XRAY TraceId: (\S+)\tSegmentId: ([0-9a-f]+)")
_ROOT = re.compile(r"Root=(1-[0-9a-f]{8}-[0-9a-f]{24})")


@dataclass(frozen=True)
class Line:
    offset_ms: int
    message: str
    group: str = "/aws/lambda/checkout"
    stream: str = "2025/12/02/[$LATEST]0123456789abcdef0123456789abcdef"


def _columns(message: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "trace_id": "",
        "segment_id": "",
        "request_id": "",
        "level": "",
        "type": "",
        "json_text": "",
    }
    word = message.split(" ", 1)[0]
    if word in ("START", "END", "REPORT", "INIT_START"):
        out["type"] = word
    if m := _REQUEST.search(message):
        out["request_id"] = m.group(1) or m.group(2)
    if m := _TRACE.search(message):
        out["trace_id"], out["segment_id"] = m.group(1), m.group(2)
    if level := re.match(r"^\[([A-Z]+)\]", message):
        out["level"] = level.group(1)
    start = message.find("{")
    if start >= 0:
        doc: Any = None
        with contextlib.suppress(ValueError):
            doc, _ = json.JSONDecoder().raw_decode(message, start)
        if isinstance(doc, dict):
            out["json_text"] = json.dumps(doc)
            record: dict[str, Any] = doc["record"] if isinstance(doc.get("record"), dict) else {}
            kind = str(doc.get("type", ""))
            if kind.startswith("platform."):
                out["type"] = {"report": "REPORT", "start": "START"}.get(kind[9:], kind[9:])
            out["request_id"] = str(
                doc.get("requestId")
                or doc.get("function_request_id")
                or record.get("requestId")
                or out["request_id"]
            )
            trace = doc.get("xray_trace_id") or doc.get("xrayTraceId") or ""
            tracing: dict[str, Any] = record.get("tracing") or {}
            if m := _ROOT.search(str(tracing.get("value", ""))):
                trace = m.group(1)
                out["segment_id"] = str(tracing.get("spanId", ""))
            out["trace_id"] = str(trace) or out["trace_id"]
            out["level"] = str(doc.get("level", "")).upper() or out["level"]
    return out


def store_lines(store: Store, lines: list[Line]) -> None:
    """Insert ``lines`` into ``log_events`` (ingestion 5 ms after each event; kept ten
    years, so the fixed dates of the lines never expire)."""
    db = f"`{store.database}`"
    for seq, line in enumerate(lines, start=1):
        cols = _columns(line.message)
        params = {
            "g": line.group,
            "s": line.stream,
            "ts": BASE_MS + line.offset_ms,
            "seq": seq,
            "m": line.message,
            **cols,
        }
        store._t.execute(  # the store's own transport: the writer is the log store's part
            f"INSERT INTO {db}.log_events (log_group, stream, ts, ingest_ts, seq, message, "
            "trace_id, segment_id, request_id, level, type, json_whole, json_text, "
            "retention_days) SELECT {g:String}, {s:String}, fromUnixTimestamp64Milli("
            "{ts:Int64}, 'UTC'), fromUnixTimestamp64Milli({ts:Int64} + 5, 'UTC'), "
            "{seq:UInt64}, {m:String}, {trace_id:String}, {segment_id:String}, "
            "{request_id:String}, {level:String}, {type:String}, 0, {json_text:String}, 3653",
            params,
        )
