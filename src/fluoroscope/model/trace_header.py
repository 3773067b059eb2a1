"""The ``X-Amzn-Trace-Id`` header (reference: xray-protocol §1.3, §1.4).

W3C ``traceparent`` conversion (:func:`to_traceparent`, :func:`parse_traceparent`) maps
the 32-hex trace id to X-Ray's ``1-<8 hex>-<24 hex>`` (§1.1).

Grammar: ``field *(";" field)`` with ``field = key "=" value``. Known keys are
``Root`` (trace id), ``Parent`` (16-hex id of the caller's entity), ``Sampled``
(``1``, ``0`` or ``?``); ``Self`` (ALB), ``Lineage`` (Lambda) and any other field are
kept, in order, and written back unchanged.

Parsing is tolerant where real senders differ and strict where a value would be
wrong downstream:

* spaces around fields, keys and values are trimmed; empty fields (``;;``, a
  trailing ``;``) are skipped; known keys match case-insensitively;
* a field without ``=``, a ``Root`` that is not a trace id, a ``Parent`` that is not
  16 hex digits, a ``Sampled`` other than ``1``/``0``/``?``, a missing ``Root`` or a
  header longer than :data:`MAX_HEADER_LENGTH` make the header malformed, and
  :func:`parse_trace_header` returns ``None`` (treat as absent).

Formatting writes ``Root=…;Parent=…;Sampled=1`` then the extra fields, without
spaces and without a trailing ``;`` (what every known consumer accepts).

Everything here is pure and thread-safe; nothing raises on any input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from fluoroscope.model.ids import is_entity_id, is_trace_id

__all__ = [
    "HEADER_NAME",
    "MAX_HEADER_LENGTH",
    "NOT_SAMPLED",
    "SAMPLED",
    "SAMPLING_REQUESTED",
    "TRACEPARENT_HEADER_NAME",
    "WSGI_HEADER_NAME",
    "TraceHeader",
    "parse_trace_header",
    "parse_traceparent",
    "to_traceparent",
]

HEADER_NAME: Final = "X-Amzn-Trace-Id"
"""The HTTP header name (case-insensitive on the wire)."""

WSGI_HEADER_NAME: Final = "HTTP_X_AMZN_TRACE_ID"
"""The same header as a WSGI ``environ`` key."""

TRACEPARENT_HEADER_NAME: Final = "traceparent"
"""The W3C Trace Context header, for callees instrumented with OpenTelemetry."""

MAX_HEADER_LENGTH: Final = 8192
"""Longer values are refused as malformed (ALB rewrites headers above 7 KB)."""

SAMPLED: Final = "1"
NOT_SAMPLED: Final = "0"
SAMPLING_REQUESTED: Final = "?"
_SAMPLED_VALUES: Final = frozenset((SAMPLED, NOT_SAMPLED, SAMPLING_REQUESTED))


@dataclass(frozen=True, slots=True)
class TraceHeader:
    """One parsed trace header.

    ``sampled`` is ``"1"``, ``"0"``, ``"?"`` or ``None`` (absent: the callee decides).
    ``extra`` holds every other field as ``(key, value)`` pairs in arrival order
    (``Self``, ``Lineage``, application fields). Instances are immutable.
    """

    root: str
    parent: str | None = None
    sampled: str | None = None
    extra: tuple[tuple[str, str], ...] = ()

    def to_header(self) -> str:
        """The header value: ``Root=…;Parent=…;Sampled=…`` plus the extra fields."""
        parts = [f"Root={self.root}"]
        if self.parent is not None:
            parts.append(f"Parent={self.parent}")
        if self.sampled is not None:
            parts.append(f"Sampled={self.sampled}")
        parts.extend(f"{key}={value}" for key, value in self.extra)
        return ";".join(parts)

    def __str__(self) -> str:
        return self.to_header()

    def get(self, key: str) -> str | None:
        """The value of an extra field such as ``Lineage`` (exact key), or ``None``."""
        for name, value in self.extra:
            if name == key:
                return value
        return None


_KNOWN: Final = {"root": "Root", "parent": "Parent", "sampled": "Sampled"}


def parse_trace_header(value: str | bytes | None) -> TraceHeader | None:
    """Parse a header value; ``None`` when it is absent, empty or malformed.

    Never raises. ``bytes`` are decoded as Latin-1 (HTTP header bytes). Ids are
    lower-cased before checking, so ``Root=1-ABCDEF01-...`` is accepted.
    """
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("latin-1")
    if not isinstance(value, str) or not value or len(value) > MAX_HEADER_LENGTH:
        return None
    root: str | None = None
    parent: str | None = None
    sampled: str | None = None
    extra: list[tuple[str, str]] = []
    for raw_field in value.split(";"):
        field = raw_field.strip()
        if not field:
            continue
        key, sep, val = field.partition("=")
        if not sep:
            return None
        key = key.strip()
        val = val.strip()
        if not key:
            return None
        known = _KNOWN.get(key.lower())
        if known == "Root":
            val = val.lower()
            if root is not None or not is_trace_id(val):
                return None
            root = val
        elif known == "Parent":
            val = val.lower()
            if parent is not None or not is_entity_id(val):
                return None
            parent = val
        elif known == "Sampled":
            if sampled is not None or val not in _SAMPLED_VALUES:
                return None
            sampled = val
        else:
            extra.append((key, val))
    if root is None:
        return None
    return TraceHeader(root=root, parent=parent, sampled=sampled, extra=tuple(extra))


_TRACEPARENT: Final = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


def to_traceparent(trace_id: str, parent_id: str, sampled: bool) -> str | None:
    """The W3C ``traceparent`` value for an X-Ray trace id and entity id (§1.1 mapping).

    ``1-XXXXXXXX-YYYY…`` becomes the 32-hex trace id ``XXXXXXXXYYYY…``. None when either
    id is malformed.
    """
    if not is_trace_id(trace_id) or not is_entity_id(parent_id):
        return None
    return f"00-{trace_id[2:10]}{trace_id[11:]}-{parent_id}-{'01' if sampled else '00'}"


def parse_traceparent(value: str | bytes | None) -> TraceHeader | None:
    """A W3C ``traceparent`` as a :class:`TraceHeader` (``Sampled`` from the flags).

    None when absent or malformed (bad shape, version ``ff``, all-zero ids). Never raises.
    """
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("latin-1")
    if not isinstance(value, str) or len(value) > 512:
        return None
    match = _TRACEPARENT.fullmatch(value.strip().lower())
    if match is None:
        return None
    version, trace, parent, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or trace == "0" * 32 or parent == "0" * 16:
        return None
    sampled = SAMPLED if int(flags, 16) & 1 else NOT_SAMPLED
    return TraceHeader(root=f"1-{trace[:8]}-{trace[8:]}", parent=parent, sampled=sampled)
