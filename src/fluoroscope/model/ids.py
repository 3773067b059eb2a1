"""Trace and entity identifiers (reference: xray-protocol §1.1, §1.2).

A trace id is ``1-XXXXXXXX-YYYYYYYYYYYYYYYYYYYYYYYY``: version 1, eight hex digits of
epoch seconds, 24 hex digits of randomness. Segment, subsegment and exception ids are
16 hex digits. An OpenTelemetry (W3C) trace id is the same 128 bits as 32 hex digits;
its first 8 need not be a time. All functions here are pure and thread-safe.
"""

from __future__ import annotations

import os
import re
import time

__all__ = [
    "ENTITY_ID_RE",
    "TRACE_ID_RE",
    "is_entity_id",
    "is_trace_id",
    "new_entity_id",
    "new_trace_id",
    "normalize_trace_id",
    "trace_epoch",
    "xray_trace_id",
]

TRACE_ID_RE = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
_W3C_RE = re.compile(r"[0-9a-f]{32}")
ENTITY_ID_RE = re.compile(r"[0-9a-f]{16}")


def is_trace_id(value: object) -> bool:
    """True when ``value`` is a well-formed X-Ray trace id (lowercase hex, 35 chars)."""
    return isinstance(value, str) and TRACE_ID_RE.fullmatch(value) is not None


def is_entity_id(value: object) -> bool:
    """True when ``value`` is a 16-hex-digit segment/subsegment/exception id."""
    return isinstance(value, str) and ENTITY_ID_RE.fullmatch(value) is not None


def normalize_trace_id(value: str) -> str | None:
    """The X-Ray form of a trace id given as ``1-xxxxxxxx-yyyy...`` or as the 32 hex
    digits of a W3C/OpenTelemetry id (any case, surrounding blanks ignored), or None.
    Both forms name the same 128 bits, so either finds the same trace."""
    text = value.strip().lower()
    if len(text) == 32 and _W3C_RE.fullmatch(text):
        text = f"1-{text[:8]}-{text[8:]}"
    return text if TRACE_ID_RE.fullmatch(text) else None


def trace_epoch(trace_id: str) -> int:
    """The epoch seconds encoded in a well-formed trace id (caller validates the shape)."""
    return int(trace_id[2:10], 16)


def new_trace_id(now: float | None = None) -> str:
    """A fresh trace id stamped with ``now`` (default: the current time)."""
    epoch = int(time.time() if now is None else now)
    return f"1-{epoch:08x}-{os.urandom(12).hex()}"


def new_entity_id() -> str:
    """A fresh random 64-bit id as 16 lowercase hex digits."""
    return os.urandom(8).hex()


def xray_trace_id(raw: bytes) -> str:
    """A 16-byte trace id (OpenTelemetry's, as raw bytes) in X-Ray's form,
    ``1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy``."""
    text = raw.hex()
    return f"1-{text[:8]}-{text[8:]}"
