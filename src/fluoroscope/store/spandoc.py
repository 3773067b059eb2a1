"""An entity's stored document, without the fields its own columns already hold.

``spans.doc`` is most of a span's bytes on disk; its ``id``, ``start_time``,
``end_time`` and a segment's trace and parent ids repeat what the ``id``, ``start_time``,
``end_time``, ``trace_id`` and ``parent_id`` columns hold (measured on 200k spans: ~20 of
its ~60 bytes per span; the start time ~7 more, measured on 1M spans).
:func:`stored_document` leaves such a field out only when its column gives back the same
value, and :func:`restore_document` puts back exactly what was left out - rows written
before this (with every field in the document) come back unchanged:

* ``id``: always (a string, the ``id`` column);
* ``start_time``: when a float (the column holds it; an integer's type would not come
  back from the column, so an integer stays in the document) - since migration 24;
* ``end_time``: when a non-zero float and the entity is complete (the column holds it;
  in progress, the column is 0 and a document's own ``end_time`` stays);
* ``trace_id`` and ``parent_id`` of a segment (always a top-level document, so its
  columns are its own fields): when equal to the column, ``parent_id`` when not empty.
  Subsegments keep theirs: an embedded one has none of its own, which its row cannot
  tell apart from a streamed one's.

A lookup by trace id reads each of these columns beside ``doc``; they are stored in small
compressed blocks (migrations 8, 22 and 24), so each costs it one small block per
granule. Pure functions; a restored document is a new dict owned by the caller, with the
restored fields first.
"""

from __future__ import annotations

from typing import Any

__all__ = ["restore_document", "stored_document", "trimmed_document"]


def stored_document(
    own: dict[str, Any], trace_id: str, parent_id: str, is_segment: bool, complete: bool
) -> dict[str, Any]:
    """``own`` (an entity's document; not modified) without its children (embedded
    ``subsegments``, stored as rows of their own) and the fields its row's columns give
    back: ``complete`` says the ``end_time`` column holds its end time. The result
    shares values with ``own``: the one copy of the entity a row makes (ingest made two
    before, one without the children and this one of it)."""
    end = own.get("end_time")
    return trimmed_document(
        own,
        trace_id,
        parent_id,
        is_segment,
        bool(own.get("subsegments")),
        type(own.get("start_time")) is float,
        complete and type(end) is float and end != 0.0,
    )


def trimmed_document(
    own: dict[str, Any],
    trace_id: str,
    parent_id: str,
    is_segment: bool,
    children: bool,
    start_column: bool,
    end_column: bool,
) -> dict[str, Any]:
    """:func:`stored_document` for an entity whose fields the caller has read already
    (``Assembler._explode``): ``children``, its ``subsegments`` are not empty;
    ``start_column``, its ``start_time`` is a float; ``end_column``, it is complete and
    its ``end_time`` a non-zero float."""
    kept = dict(own)
    del kept["id"]
    if children:  # an empty list is no children: kept, as received
        del kept["subsegments"]
    if start_column:
        del kept["start_time"]
    if end_column:
        del kept["end_time"]
    if is_segment:
        if kept.get("trace_id") == trace_id:
            del kept["trace_id"]
        if parent_id and kept.get("parent_id") == parent_id:
            del kept["parent_id"]
    return kept


def restore_document(
    doc: dict[str, Any],
    entity_id: str,
    trace_id: str,
    parent_id: str,
    is_segment: bool,
    start: float,
    end: float,
) -> dict[str, Any]:
    """The entity's document as ingest received it: ``doc`` (as stored) with the fields
    :func:`stored_document` left out taken back from the row's columns."""
    head: dict[str, Any] = {}
    if "id" not in doc:
        head["id"] = entity_id
    if "start_time" not in doc:
        head["start_time"] = start
    if is_segment:
        if "trace_id" not in doc:
            head["trace_id"] = trace_id
        if parent_id and "parent_id" not in doc:
            head["parent_id"] = parent_id
    if end != 0.0 and "end_time" not in doc:
        head["end_time"] = end
    if not head:
        return doc
    head.update(doc)
    return head
