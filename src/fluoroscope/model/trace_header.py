"""The ``X-Amzn-Trace-Id`` header (reference: xray-protocol §1.3, §1.4).

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

from dataclasses import dataclass
from typing import Final

from fluoroscope.model.ids import is_entity_id, is_trace_id

__all__ = [
    "HEADER_NAME",
    "MAX_HEADER_LENGTH",
    "NOT_SAMPLED",
    "SAMPLED",
    "SAMPLING_REQUESTED",
    "WSGI_HEADER_NAME",
    "TraceHeader",
    "parse_trace_header",
]

HEADER_NAME: Final = "X-Amzn-Trace-Id"
"""The HTTP header name (case-insensitive on the wire)."""

WSGI_HEADER_NAME: Final = "HTTP_X_AMZN_TRACE_ID"
"""The same header as a WSGI ``environ`` key."""

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
