"""Entities → segment documents (JSON bytes), each small enough for one datagram.

:func:`encode` turns a closed segment, an independent subsegment or an
:class:`~fluoroscope.sdk._entities.InProgress` snapshot into one or more documents:

* the entity with its closed children embedded, when that fits in
  :data:`MAX_DOCUMENT_BYTES`;
* otherwise the entity with as many child subtrees embedded as fit (in order), and
  each remaining child subtree as an independent subsegment (recursively), so no
  document exceeds the limit;
* an entity too large even alone loses its metadata, then its exception stacks, then
  its ``http``/``sql``/``aws``/``annotations`` blocks; if still too large it is dropped
  (counted by the caller, logged once).

Embedding stops at depth :data:`MAX_EMBED_DEPTH`; deeper subtrees are sent
independently. Values JSON cannot represent are written as their ``repr``.
``orjson`` is used when importable (looked up on first use), else :mod:`json`.

Called from the emitter's sender thread (or from ``flush``); pure apart from the
one-time JSON backend lookup; never raises.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, Final

from fluoroscope import __version__
from fluoroscope.sdk._entities import Entity, InProgress, Segment, Subsegment
from fluoroscope.sdk._log import warn_once

__all__ = ["DAEMON_HEADER", "MAX_DOCUMENT_BYTES", "MAX_EMBED_DEPTH", "SDK_NAME", "encode"]

DAEMON_HEADER: Final = b'{"format":"json","version":1}\n'
"""The header line of every UDP datagram (xray-protocol §3.1)."""

MAX_DOCUMENT_BYTES: Final = 65507 - len(DAEMON_HEADER)
"""Largest document: header + document must fit one IPv4 UDP datagram (< 64 KiB)."""

MAX_EMBED_DEPTH: Final = 30
"""Subsegments nested deeper than this are sent as independent documents."""

SDK_NAME: Final = "Fluoroscope for Python"
_XRAY_BLOCK: Final = {"sdk": SDK_NAME, "sdk_version": __version__}
_AWS_BLOCK: Final = {"xray": _XRAY_BLOCK}

_dumps: list[Callable[[Any], bytes]] = []


def _default(value: object) -> object:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    try:
        text = repr(value)
    except Exception:
        text = f"<unrepresentable {type(value).__name__}>"
    return text[:1000]


def _json_dumps(doc: Any) -> bytes:
    return json.dumps(
        doc, default=_default, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "replace")


def _backend() -> Callable[[Any], bytes]:
    if not _dumps:
        try:
            import orjson
        except ImportError:
            _dumps.append(_json_dumps)
        else:
            option = orjson.OPT_NON_STR_KEYS

            def orjson_dumps(doc: Any) -> bytes:
                return orjson.dumps(doc, default=_default, option=option)

            _dumps.append(orjson_dumps)
    return _dumps[0]


def _try_dumps(doc: dict[str, Any]) -> bytes | None:
    try:
        return _backend()(doc)
    except Exception:
        pass
    try:  # orjson refuses ints beyond 64 bits; json takes them
        return _json_dumps(doc)
    except Exception:
        return None


def _subsegment_dict(
    sub: Subsegment, independent: bool, depth: int, spill: list[Subsegment], children: bool
) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": sub.id, "name": sub.name, "start_time": sub.start_time}
    if sub.end_time:
        doc["end_time"] = sub.end_time
    else:
        doc["in_progress"] = True
    if sub.namespace:
        doc["namespace"] = sub.namespace
    data = sub._data
    if data:
        doc.update(data)
    if independent:
        doc["type"] = "subsegment"
        doc["trace_id"] = sub.segment.trace_id
        doc["parent_id"] = sub.parent.id
    kids = sub.children
    if kids and children:
        if depth >= MAX_EMBED_DEPTH:
            spill.extend(kids)
        else:
            doc["subsegments"] = [_subsegment_dict(k, False, depth + 1, spill, True) for k in kids]
    return doc


def _segment_dict(
    seg: Segment, spill: list[Subsegment], children: bool, in_progress: bool = False
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": seg.id,
        "name": seg.name,
        "trace_id": seg.trace_id,
        "start_time": seg.start_time,
    }
    if in_progress:
        doc["in_progress"] = True
    else:
        doc["end_time"] = seg.end_time
    if seg.parent_id:
        doc["parent_id"] = seg.parent_id
    if seg.origin:
        doc["origin"] = seg.origin
    if seg.user:
        doc["user"] = seg.user
    if seg.service_block:
        doc["service"] = seg.service_block
    data = seg._data
    if data and not in_progress:
        doc.update(data)
        aws = data.get("aws")
        doc["aws"] = {**aws, "xray": _XRAY_BLOCK} if aws else _AWS_BLOCK
    else:
        doc["aws"] = _AWS_BLOCK
    kids = seg.children
    if kids and children and not in_progress:
        doc["subsegments"] = [_subsegment_dict(k, False, 1, spill, True) for k in kids]
    return doc


def _entity_dict(
    entity: Entity, independent: bool, spill: list[Subsegment], children: bool
) -> dict[str, Any]:
    if isinstance(entity, Segment):
        return _segment_dict(entity, spill, children)
    if isinstance(entity, Subsegment):
        return _subsegment_dict(entity, independent, 0, spill, children)
    raise TypeError(type(entity).__name__)  # pragma: no cover - emitters only see these


def _reduced(doc: dict[str, Any]) -> bytes | None:
    """Shrink a document that is too large on its own, step by step."""
    steps: list[Callable[[dict[str, Any]], object]] = [
        lambda d: d.pop("metadata", None),
        _strip_stacks,
        lambda d: [d.pop(k, None) for k in ("http", "sql", "annotations")],
        lambda d: d.pop("aws", None) if "type" in d else d.update(aws=_AWS_BLOCK),
        lambda d: d.pop("cause", None),
    ]
    for step in steps:
        step(doc)
        data = _try_dumps(doc)
        if data is not None and len(data) <= MAX_DOCUMENT_BYTES:
            warn_once(
                "document-reduced",
                "segment %r was too large (or not serializable) and was sent without some "
                "of its data (metadata first); logged once",
                doc.get("name"),
            )
            return data
    return None


def _strip_stacks(doc: dict[str, Any]) -> None:
    cause = doc.get("cause")
    if isinstance(cause, dict):
        exceptions = [
            {k: (v[:200] if k == "message" and isinstance(v, str) else v) for k, v in e.items()}
            for e in cause.get("exceptions", ())
            if isinstance(e, dict)
        ]
        for e in exceptions:
            e.pop("stack", None)
        doc["cause"] = {"exceptions": exceptions}


def _encode_entity(entity: Entity, independent: bool, out: list[bytes]) -> int:
    spill: list[Subsegment] = []
    dropped = 0
    try:
        data = _try_dumps(_entity_dict(entity, independent, spill, True))
    except Exception:  # a racing mutation; fall through to the split path
        data = None
    if data is not None and len(data) <= MAX_DOCUMENT_BYTES:
        out.append(data)
    else:
        spill = []
        doc = _entity_dict(entity, independent, spill, False)
        data = _try_dumps(doc)
        rest: list[Subsegment] = list(entity.children or ())
        if data is None or len(data) > MAX_DOCUMENT_BYTES:
            data = _reduced(doc)
        elif rest:
            data, rest = _pack_children(doc, data, rest, spill)
        if data is None:
            dropped += 1
            warn_once(
                "document-too-large",
                "a segment document could not be made smaller than %d bytes; dropped",
                MAX_DOCUMENT_BYTES,
            )
        else:
            out.append(data)
        for child in rest:
            dropped += _encode_entity(child, True, out)
    for child in spill:
        dropped += _encode_entity(child, True, out)
    return dropped


def _pack_children(
    doc: dict[str, Any], alone: bytes, children: list[Subsegment], spill: list[Subsegment]
) -> tuple[bytes, list[Subsegment]]:
    """Embed as many child subtrees as fit next to ``doc`` (in order); return the rest.

    ``alone`` is ``doc`` encoded without children. Children that would not fit (or
    cannot be encoded) are returned, to be sent as independent subsegments.
    """
    budget = MAX_DOCUMENT_BYTES - len(alone) - len(b',"subsegments":[]')
    embedded: list[dict[str, Any]] = []
    rest: list[Subsegment] = []
    for child in children:
        if budget <= 2:
            rest.append(child)
            continue
        child_spill: list[Subsegment] = []
        child_doc = _subsegment_dict(child, False, 1, child_spill, True)
        encoded = _try_dumps(child_doc)
        if encoded is not None and len(encoded) + 1 <= budget:
            embedded.append(child_doc)
            spill.extend(child_spill)
            budget -= len(encoded) + 1
        else:
            rest.append(child)
    if not embedded:
        return alone, rest
    doc["subsegments"] = embedded
    packed = _try_dumps(doc)
    if packed is None or len(packed) > MAX_DOCUMENT_BYTES:  # should not happen; be safe
        del doc["subsegments"]
        spill.clear()
        return alone, children
    return packed, rest


def encode(item: Entity | InProgress) -> tuple[list[bytes], int]:
    """The documents for one emitted item, and how many entities had to be dropped."""
    out: list[bytes] = []
    try:
        if isinstance(item, InProgress):
            data = _try_dumps(_segment_dict(item.segment, [], False, in_progress=True))
            if data is not None and len(data) <= MAX_DOCUMENT_BYTES:
                out.append(data)
            return out, 0 if data is not None else 1
        dropped = _encode_entity(item, isinstance(item, Subsegment), out)
    except RecursionError:
        warn_once("encode-recursion", "a segment tree is too deep to serialize; dropped")
        return out, 1
    except Exception as exc:  # never raise into the sender thread
        warn_once("encode-failed", "could not serialize a segment: %r", exc)
        return out, 1
    return out, dropped


def python_runtime() -> dict[str, str]:
    """The ``service`` block fields describing this interpreter."""
    return {
        "runtime": sys.implementation.name.replace("cpython", "CPython"),
        "runtime_version": ".".join(map(str, sys.version_info[:3])),
    }
