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

from typing import Any

import orjson

from fluoroscope.ingest.otlp.translate import TranslateOptions, Translation, Translator
from fluoroscope.model.documents import MAX_DOCUMENT_BYTES, validate_document
from fluoroscope.model.errors import InvalidDocument

__all__ = ["TranslateOptions", "Translation", "Translator", "documents_of"]


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
    dumps = orjson.dumps
    valid: list[tuple[str, bytes]] = []
    size = 0
    for doc in out.documents:
        raw = dumps(doc)
        try:
            if len(raw) > MAX_DOCUMENT_BYTES:
                raise InvalidDocument(
                    f"its document is {len(raw)} bytes; the limit is {MAX_DOCUMENT_BYTES}"
                )
            validate_document(doc, now=now, max_age=max_age, raw=raw)
        except InvalidDocument as exc:
            out.reject(f"span {doc.get('id', '')}: {exc.message}")
            continue
        valid.append((doc["trace_id"], raw))
        size += len(raw)
    return valid, size, out
