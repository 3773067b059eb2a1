"""Which ingest worker owns a trace.

Ingest runs in several worker processes; every document of a trace must reach the same
one, since a worker keeps its traces' state (merging, summaries, graph statistics) in
memory. A trace belongs to ``crc32(trace_id) % shards``.

The UDP receiving process routes datagram bodies without parsing them: it takes the
value after the first ``"trace_id"`` key in the body's bytes (:func:`trace_id_of`). That
is the document's own trace id unless a nested object names an earlier ``trace_id`` (or
the value is escaped), so each worker checks the parsed id and hands a document it does
not own back for routing by that id (``fluoroscope.ingest.worker``): routing is then
always right, and almost always takes one hop. Standard library only.
"""

from __future__ import annotations

import zlib
from typing import Final

from fluoroscope.model.ids import xray_trace_id

__all__ = ["shard_of", "span_shard", "trace_id_of"]

_KEY: Final = b'"trace_id"'
_ZERO_TRACE: Final = bytes(16)


def shard_of(trace_id: bytes, shards: int) -> int:
    """The worker (0 .. shards-1) owning the trace ``trace_id`` (its UTF-8 bytes)."""
    return zlib.crc32(trace_id) % shards if shards > 1 else 0


def span_shard(trace_id: bytes, shards: int) -> int:
    """The worker owning the trace of an OTLP span whose ``trace_id`` field holds these
    raw bytes: :func:`shard_of` of the id in X-Ray's form (as the span's documents carry
    it). A value that is no trace id (not 16 bytes, or all zero) gives 0, so that
    exactly one worker refuses such a span."""
    if shards <= 1 or len(trace_id) != 16 or trace_id == _ZERO_TRACE:
        return 0
    return zlib.crc32(xray_trace_id(trace_id).encode()) % shards


def trace_id_of(body: bytes) -> bytes:
    """The string after the first ``"trace_id"`` key in the JSON ``body``, as it is
    written there (escapes not decoded); empty when there is none. O(len(body))."""
    key = body.find(_KEY)
    if key < 0:
        return b""
    start = body.find(b'"', key + len(_KEY)) + 1
    if start <= 0 or body[key + len(_KEY) : start - 1].strip(b" \t\r\n") != b":":
        return b""
    end = body.find(b'"', start)
    return body[start:end] if end > 0 else b""
