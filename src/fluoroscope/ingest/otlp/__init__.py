"""OpenTelemetry in: OTLP trace requests (and Zipkin v2 spans) as segment documents.

:func:`documents_of` is the whole path from a decoded request to documents ready for
the ordinary ingest path: spans are translated by the Collector's awsxray exporter
rules (:mod:`fluoroscope.ingest.otlp.translate`), then each document is serialized and
validated exactly as a document sent by an X-Ray client would be; a span whose document
is refused is counted as rejected, with its reason, and never affects the others.
Decoding from the wire is in :mod:`fluoroscope.ingest.otlp.decode`, Zipkin in
:mod:`fluoroscope.ingest.otlp.zipkin`. Pure and thread-safe.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from fluoroscope.ingest.otlp.decode import (
    SAMPLED_PREFIX,
    UNSAMPLED_PREFIX,
    OtlpDecodeError,
    decode_transit,
)
from fluoroscope.ingest.otlp.translate import TranslateOptions, Translation, Translator
from fluoroscope.model.documents import (
    MAX_DOCUMENT_BYTES,
    MAX_FUTURE_SECONDS,
    MAX_NESTING,
    brackets,
    validate_document,
)
from fluoroscope.model.errors import InvalidDocument

__all__ = [
    "TranslateOptions",
    "Translation",
    "Translator",
    "documents_of",
    "transit_documents",
    "validated",
]


def documents_of(
    request: Any,
    translator: Translator,
    *,
    now: float,
    max_age: float | None,
    into: Translation | None = None,
) -> tuple[list[tuple[str, bytes]], int, Translation]:
    """The valid documents of ``request`` (an ``ExportTraceServiceRequest``) as
    ``(trace id, JSON)`` pairs, their total bytes, and the translation (its
    ``rejected`` count and reasons include the documents validation refused)."""
    out = translator.translate(request, into)
    valid = [(doc["trace_id"], raw) for doc, raw in validated(out, now=now, max_age=max_age)]
    return valid, sum(len(raw) for _, raw in valid), out


def validated(
    out: Translation, *, now: float, max_age: float | None
) -> list[tuple[dict[str, Any], bytes]]:
    """The documents of ``out`` that validation accepts, each with its JSON; the others
    are counted in ``out`` as rejected, with their reasons.

    Translation makes documents :func:`validate_document` accepts by construction
    (ids and trace ids from checked bytes, names fitted, times in seconds with the end
    not before the start, flags booleans, statuses and annotations of the accepted
    types, no subsegments; a property test holds it to that) but for what depends on
    the clock, the retention or the attributes' size and depth: a document within
    those bounds is taken without the full walk (~2 us per document, measured), any
    other is validated in full, for its precise reason."""
    dumps = orjson.dumps
    min_start = -math.inf if max_age is None else now - max_age
    latest = now + MAX_FUTURE_SECONDS
    valid: list[tuple[dict[str, Any], bytes]] = []
    for doc in out.documents:
        raw = dumps(doc)
        if (
            min_start <= doc["start_time"] <= latest
            and len(raw) <= MAX_DOCUMENT_BYTES
            and brackets(raw) <= MAX_NESTING
        ):
            valid.append((doc, raw))
            continue
        try:
            if len(raw) > MAX_DOCUMENT_BYTES:
                raise InvalidDocument(
                    f"its document is {len(raw)} bytes; the limit is {MAX_DOCUMENT_BYTES}"
                )
            validate_document(doc, now=now, max_age=max_age, raw=raw)
        except InvalidDocument as exc:
            out.reject(f"span {doc.get('id', '')}: {exc.message}")
            continue
        valid.append((doc, raw))
    return valid


def transit_documents(
    body: bytes, translator: Translator, *, now: float, max_age: float | None
) -> tuple[list[tuple[dict[str, Any], bytes]], Translation, str]:
    """The valid documents of one ``T1S``/``T1U`` text (AWS's base64 OTLP, as sent over
    UDP or inside PutTraceSegments), the translation, and what happened to the text:
    ``sampled`` (translated), ``unsampled`` (``T1U``: spans kept for metrics, not
    traces; nothing returned), ``unknown_prefix``, ``base64`` or ``protobuf`` (refused)."""
    out = Translation()
    prefix = body[:3]
    if prefix == UNSAMPLED_PREFIX:
        return [], out, "unsampled"
    if prefix != SAMPLED_PREFIX:
        return [], out, "unknown_prefix"
    try:
        request = decode_transit(body)
    except OtlpDecodeError as exc:
        return [], out, "base64" if "base64" in str(exc) else "protobuf"
    translator.translate(request, out)
    return validated(out, now=now, max_age=max_age), out, "sampled"
