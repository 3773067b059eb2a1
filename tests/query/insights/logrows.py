"""Log lines for the query tests, stored the way PutLogEvents stores them: through the
log store's own encoding (``ingest.logwriter.encode``: request id, trace id, segment id,
level, Lambda line type and first JSON object extracted per Contract 1) and
``LogStore.write`` into a real chDB ``log_events`` table."""

from __future__ import annotations

from dataclasses import dataclass

from fluoroscope.ingest.logwriter import encode
from fluoroscope.store.logs import LogStore
from fluoroscope.store.store import Store

BASE_MS = 1_764_700_000_000  # 2025-12-02 18:26:40 UTC
"""The time every test line is placed relative to."""

_KEEP_DAYS = 3653  # ten years: the fixed dates of the lines never expire


@dataclass(frozen=True)
class Line:
    offset_ms: int
    message: str
    group: str = "/aws/lambda/checkout"
    stream: str = "2025/12/02/[$LATEST]0123456789abcdef0123456789abcdef"


def store_lines(store: Store, lines: list[Line]) -> None:
    """Write ``lines`` in order (``seq`` 1, 2, ...; ingested 5 ms after each event)."""
    batches = [
        (
            line.group,
            line.stream,
            [BASE_MS + line.offset_ms],
            [line.message],
            _KEEP_DAYS,
            BASE_MS + line.offset_ms + 5,
        )
        for line in lines
    ]
    LogStore(store, _KEEP_DAYS).write(encode(batches, 1))
