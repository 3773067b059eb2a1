"""Segment documents: limits and validation (reference: xray-protocol §2, §2.12).

A *document* is one JSON object as sent over UDP or in ``PutTraceSegments``: a segment
(with any embedded subsegments), an in-progress segment, or an independently sent
subsegment (``"type": "subsegment"``). Validation is liberal where real clients differ
(int or float times, ``in_progress: false`` next to ``end_time``, unknown keys are kept)
and strict where a document could not be stored or found again (ids, times, types).

Validation is the only gate: a document it accepts is stored whole - merged, summarized,
counted and encoded - so every value a later stage would choke on is refused here with
the field named (an out-of-range HTTP status, nesting past :data:`MAX_NESTING`, a time in
milliseconds). Checks are iterative, never recursive: no input depth reaches Python's
recursion limit or the serializer's.

``validate_document`` is pure and thread-safe; it raises
:class:`~fluoroscope.model.errors.InvalidDocument` naming the field that is wrong. It
runs on every document the UDP path and ``PutTraceSegments`` receive, compiled by mypyc
(:data:`fluoroscope.native.COMPILED`): a fast path (``_good_document``) accepts the
common document - plain dicts, float times, ids checked a character at a time, no error
path - and hands any other to the reference checks (``_validate_reference``), which
decide and word every refusal; so the fast path changes no verdict and no message
(``tests/model/test_documents_fast.py`` compares the two).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from fluoroscope.model.errors import InvalidDocument
from fluoroscope.model.ids import ENTITY_ID_RE, TRACE_ID_RE

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_FUTURE_SECONDS",
    "MAX_NAME_LENGTH",
    "MAX_NESTING",
    "brackets",
    "is_independent_subsegment",
    "refusal_reason",
    "validate_document",
]

MAX_DOCUMENT_BYTES: Final = 64 * 1024
"""Largest accepted document, in bytes of its JSON text (the X-Ray limit)."""

MAX_NAME_LENGTH: Final = 200
"""Longest accepted ``name`` (the X-Ray limit)."""

MAX_DEPTH: Final = 32
"""Deepest accepted nesting of embedded subsegments."""

MAX_NESTING: Final = 128
"""Deepest accepted nesting of JSON arrays and objects in a document, the document itself
being level 1 (each embedded subsegment level adds two: its array and its object).
Metadata nested deeper than this is refused; stored documents are serialized again, and
the serializer stops at 254 levels."""

MAX_STATUS: Final = 999
"""Largest accepted ``http.response.status`` (an integer from 0, three digits at most)."""

MAX_FUTURE_SECONDS: Final = 24 * 3600.0
"""How far ahead of the receiver's clock a start time may lie (clock skew allowance)."""

_MS_EPOCH_FLOOR: Final = 1e11  # epoch seconds pass this in the year 5138; milliseconds did in 1973
_OBJECT_FIELDS: Final = ("http", "aws", "sql", "annotations", "metadata", "service")
_ANNOTATION_TYPES: Final = (str, int, float)  # bool is an int
_INF: Final = math.inf
_entity_id: Final = ENTITY_ID_RE.fullmatch


_REASONS: Final = {
    "InvalidJson": "json",
    "DocumentTooLarge": "too_large",
    "MissingField": "missing_field",
    "InvalidId": "id",
    "InvalidTraceId": "trace_id",
    "InvalidTime": "time",
}


def refusal_reason(code: str) -> str:
    """A short snake_case reason for an :class:`InvalidDocument` ``code``, for counters
    of refused documents (``udp_invalid_<reason>``): ``json``, ``too_large``,
    ``missing_field``, ``id``, ``trace_id``, ``time``, else ``document``."""
    return _REASONS.get(code, "document")


def is_independent_subsegment(doc: Mapping[str, Any]) -> bool:
    """True for a top-level document that is a streamed subsegment, not a segment."""
    return doc.get("type") == "subsegment"


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fail(path: str, message: str, doc_id: str, code: str = "InvalidDocument") -> InvalidDocument:
    where = f"{path}: " if path else ""
    return InvalidDocument(f"{where}{message}", doc_id=doc_id, code=code)


def _check_entity(
    entity: Mapping[str, Any],
    path: str,
    root_id: str,
    now: float,
    min_start: float,
    depth: int,
) -> None:
    """Check one segment or subsegment (and, recursively, its embedded subsegments)."""
    name = entity.get("name")
    if name is None:
        raise _fail(path, "missing required field 'name'", root_id, "MissingField")
    if not isinstance(name, str) or not name.strip():
        raise _fail(path, "'name' must be a non-empty string", root_id)
    if len(name) > MAX_NAME_LENGTH:
        raise _fail(path, f"'name' is longer than {MAX_NAME_LENGTH} characters", root_id)

    entity_id = entity.get("id")
    if entity_id is None:
        raise _fail(path, "missing required field 'id'", root_id, "MissingField")
    if not isinstance(entity_id, str) or _entity_id(entity_id) is None:
        raise _fail(
            path,
            f"'id' must be 16 lowercase hex digits, got {entity_id!r:.40}",
            root_id,
            "InvalidId",
        )

    start = entity.get("start_time")
    if start is None:
        raise _fail(path, "missing required field 'start_time'", root_id, "MissingField")
    if not (type(start) is float or type(start) is int or _is_number(start)) or not (
        0 < start < _INF
    ):
        raise _fail(
            path, "'start_time' must be a positive number of epoch seconds", root_id, "InvalidTime"
        )
    if start >= _MS_EPOCH_FLOOR:
        raise _fail(
            path,
            "'start_time' looks like milliseconds; X-Ray times are epoch seconds",
            root_id,
            "InvalidTime",
        )
    if start > now + MAX_FUTURE_SECONDS:
        raise _fail(
            path,
            f"'start_time' is {start - now:.0f} s in the future (clock skew?)",
            root_id,
            "InvalidTime",
        )
    if start < min_start:
        raise _fail(path, "'start_time' is older than the retention period", root_id, "InvalidTime")

    in_progress = entity.get("in_progress", False)
    if not isinstance(in_progress, bool):
        raise _fail(path, "'in_progress' must be a boolean", root_id)
    end = entity.get("end_time")
    if end is None:
        if not in_progress:
            raise _fail(
                path, "'end_time' is required unless 'in_progress' is true", root_id, "MissingField"
            )
    elif not (type(end) is float or type(end) is int or _is_number(end)) or not (
        -_INF < end < _INF
    ):
        raise _fail(path, "'end_time' must be a number of epoch seconds", root_id, "InvalidTime")
    elif end >= _MS_EPOCH_FLOOR:
        raise _fail(
            path,
            "'end_time' looks like milliseconds; X-Ray times are epoch seconds",
            root_id,
            "InvalidTime",
        )
    elif end < start:
        raise _fail(
            path, f"'end_time' precedes 'start_time' by {start - end:.6f} s", root_id, "InvalidTime"
        )

    for flag in ("error", "fault", "throttle"):
        if flag in entity and not isinstance(entity[flag], bool):
            raise _fail(path, f"'{flag}' must be a boolean", root_id)

    parent = entity.get("parent_id")
    if parent is not None and (not isinstance(parent, str) or _entity_id(parent) is None):
        raise _fail(path, "'parent_id' must be 16 lowercase hex digits", root_id, "InvalidId")

    for key in _OBJECT_FIELDS:
        if key in entity:
            value = entity[key]
            # ``type(x) is dict`` first: parsed JSON holds plain dicts, and the abc check
            # ``isinstance(x, Mapping)`` costs several times more.
            if type(value) is not dict and not isinstance(value, Mapping):
                raise _fail(path, f"'{key}' must be an object", root_id)
    http = entity.get("http")
    if http:
        response = http.get("response")
        if response is not None:
            if type(response) is not dict and not isinstance(response, Mapping):
                raise _fail(path, "'http.response' must be an object", root_id)
            status = response.get("status")
            if status is not None and (type(status) is not int or not 0 <= status <= MAX_STATUS):
                raise _fail(
                    path,
                    f"'http.response.status' must be an integer from 0 to {MAX_STATUS}, "
                    f"got {status!r:.40}",
                    root_id,
                )
    annotations = entity.get("annotations")
    if annotations:
        for key, value in annotations.items():
            if not isinstance(value, _ANNOTATION_TYPES):
                raise _fail(
                    path, f"annotation {key!r:.60} must be a string, number or boolean", root_id
                )
    cause = entity.get("cause")
    if cause is not None and not isinstance(cause, str | dict | Mapping):
        raise _fail(path, "'cause' must be an exception id or an object", root_id)

    children = entity.get("subsegments")
    if children is None:
        return
    if not isinstance(children, list):
        raise _fail(path, "'subsegments' must be an array", root_id)
    if depth >= MAX_DEPTH:
        raise _fail(path, f"subsegments nested deeper than {MAX_DEPTH}", root_id)
    for index, child in enumerate(children):
        child_path = f"{path}.subsegments[{index}]" if path else f"subsegments[{index}]"
        if type(child) is not dict and not isinstance(child, Mapping):
            raise _fail(child_path, "must be an object", root_id)
        _check_entity(child, child_path, root_id, now, min_start, depth + 1)


def _check_nesting(doc: Mapping[str, Any], doc_id: str) -> None:
    """Refuse nesting deeper than :data:`MAX_NESTING`, walking without recursion."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        value, level = pop()
        if level > MAX_NESTING:
            raise _fail("", f"JSON nested deeper than {MAX_NESTING} levels", doc_id)
        children = value.values() if type(value) is dict or isinstance(value, Mapping) else value
        for child in children:
            if type(child) is dict or type(child) is list:
                push((child, level + 1))


_ABSENT: Final = object()  # what ``dict.get`` gives for a key that is not there


_COMPILED: Final = not __file__.endswith(".py")
"""Whether this module runs compiled by mypyc (``__file__`` names the extension)."""
_HEX: Final = "0123456789abcdef"


def _hex_digits(text: str, start: int, stop: int) -> bool:
    """True when ``text[start:stop]`` is lowercase hex digits only. Compiled, a loop
    reading characters as integers is the cheapest (no object made; 4.1 µs a benchmark
    document against 4.3 with ``str.strip``); as Python, ``str.strip`` is (7.0 against
    11.0). Same verdict either way."""
    if not _COMPILED:
        return not text[start:stop].strip(_HEX)
    for at in range(start, stop):
        char = ord(text[at])
        if not (48 <= char <= 57 or 97 <= char <= 102):  # 0-9, a-f
            return False
    return True


def _good_id(value: object) -> bool:
    """True for 16 lowercase hex digits (``ENTITY_ID_RE``)."""
    return type(value) is str and len(value) == 16 and _hex_digits(value, 0, 16)


def _good_trace_id(value: object) -> bool:
    """True for ``1-`` 8 hex digits ``-`` 24 hex digits (``TRACE_ID_RE``)."""
    return (
        type(value) is str
        and len(value) == 35
        and ord(value[0]) == 49  # 1
        and ord(value[1]) == 45  # -
        and ord(value[10]) == 45
        and _hex_digits(value, 2, 10)
        and _hex_digits(value, 11, 35)
    )


def _good_entity(entity: dict[str, Any], latest: float, min_start: float, depth: int) -> bool:
    """True when :func:`_check_entity` would accept ``entity`` (and its subsegments):
    the common case decided with plain dicts, floats and strings only, no error path
    and no temporary. False means "not decided here", not "refused": the caller then
    runs the reference checks, which refuse it with the message or accept it after all
    (an int time, a Mapping that is not a dict, a str subclass)."""
    name = entity.get("name")
    if type(name) is not str or not name or len(name) > MAX_NAME_LENGTH or name.isspace():
        return False
    if not _good_id(entity.get("id")):
        return False
    start = entity.get("start_time")
    if type(start) is not float:
        return False
    begin: float = start
    # NaN fails every comparison, so it is left to the reference checks
    if not (0.0 < begin < _MS_EPOCH_FLOOR and min_start <= begin <= latest):
        return False
    end = entity.get("end_time")
    if end is None:
        if entity.get("in_progress") is not True:
            return False
    else:
        if type(end) is not float:
            return False
        finish: float = end
        if not (begin <= finish < _MS_EPOCH_FLOOR):
            return False
        in_progress = entity.get("in_progress", False)
        if in_progress is not False and in_progress is not True:
            return False
    for flag in ("error", "fault", "throttle"):
        value = entity.get(flag, False)
        if value is not False and value is not True:
            return False
    parent = entity.get("parent_id")
    if parent is not None and not _good_id(parent):
        return False
    for key in ("aws", "sql", "metadata", "service"):
        value = entity.get(key, _ABSENT)
        if value is not _ABSENT and type(value) is not dict:
            return False
    http = entity.get("http", _ABSENT)
    if http is not _ABSENT:
        if type(http) is not dict:
            return False
        response = http.get("response")
        if response is not None:
            if type(response) is not dict:
                return False
            status = response.get("status")
            if status is not None:
                if type(status) is not int:
                    return False
                code: int = status
                if not 0 <= code <= MAX_STATUS:
                    return False
    annotations = entity.get("annotations", _ABSENT)
    if annotations is not _ABSENT:
        if type(annotations) is not dict:
            return False
        labels: dict[str, Any] = annotations
        for value in labels.values():
            kind = type(value)
            if kind is not str and kind is not float and kind is not int and kind is not bool:
                return False
    cause = entity.get("cause")
    if cause is not None and type(cause) is not str and type(cause) is not dict:
        return False
    children = entity.get("subsegments")
    if children is None:
        return True
    if type(children) is not list or depth >= MAX_DEPTH:
        return False
    entities: list[Any] = children
    for child in entities:
        if type(child) is not dict or not _good_entity(child, latest, min_start, depth + 1):
            return False
    return True


def brackets(raw: bytes) -> int:
    """How many ``{`` and ``[`` ``raw`` holds. A document has few arrays (often one, its
    subsegments), and finding the first and the last costs little (``memchr``) against
    counting them, a byte at a time, which is left for texts holding two or more."""
    first = raw.find(b"[")
    if first < 0:
        arrays = 0
    elif raw.rfind(b"[") == first:
        arrays = 1
    else:
        arrays = raw.count(b"[", first)
    return raw.count(b"{") + arrays


def _good_document(doc: dict[str, Any], now: float, min_start: float) -> bool:
    """True when the checks of :func:`validate_document` other than nesting would
    accept ``doc`` (see :func:`_good_entity`)."""
    if not _good_trace_id(doc.get("trace_id")):
        return False
    kind = doc.get("type")
    if kind is not None and (kind != "subsegment" or doc.get("parent_id") is None):
        return False
    return _good_entity(doc, now + MAX_FUTURE_SECONDS, min_start, 0)


def validate_document(
    doc: object, *, now: float, max_age: float | None = None, raw: bytes | None = None
) -> None:
    """Raise :class:`InvalidDocument` unless ``doc`` is a storable segment document.

    ``doc`` is the parsed JSON value; the caller checks the byte size against
    :data:`MAX_DOCUMENT_BYTES` before parsing. ``now`` is the receiver's clock in epoch
    seconds (injected for testability); ``max_age``, when given, rejects documents whose
    start lies further in the past (the retention period). ``raw``, the JSON text ``doc``
    was parsed from, when the caller has it: nesting is then walked only when the text
    holds more brackets than :data:`MAX_NESTING` (counting bytes is far cheaper than the
    walk, and fewer brackets cannot nest deeper). Unknown keys are allowed.
    """
    if type(doc) is dict:
        min_start = -math.inf if max_age is None else now - max_age
        if _good_document(doc, now, min_start):
            # The common case, decided without the reference checks: only nesting is
            # left, and nothing nests deeper than its text has brackets.
            if raw is not None and brackets(raw) <= MAX_NESTING:
                return
            raw_id = doc.get("id")
            _check_nesting(doc, raw_id if isinstance(raw_id, str) else "")
            return
    _validate_reference(doc, now, max_age, raw)


def _validate_reference(doc: object, now: float, max_age: float | None, raw: bytes | None) -> None:
    """:func:`validate_document` by the reference checks alone: every refusal is decided
    and worded here (the fast path only ever accepts what these accept)."""
    if type(doc) is not dict and not isinstance(doc, Mapping):
        raise InvalidDocument("document must be a JSON object", code="InvalidDocument")
    raw_id = doc.get("id")
    doc_id = raw_id if isinstance(raw_id, str) else ""
    trace_id = doc.get("trace_id")
    if trace_id is None:
        raise _fail("", "missing required field 'trace_id'", doc_id, "MissingField")
    if not isinstance(trace_id, str) or TRACE_ID_RE.fullmatch(trace_id) is None:
        raise _fail(
            "", f"'trace_id' is not a valid trace id: {trace_id!r:.60}", doc_id, "InvalidTraceId"
        )
    kind = doc.get("type")
    if kind is not None and kind != "subsegment":
        raise _fail("", f"'type' must be \"subsegment\" when present, got {kind!r:.40}", doc_id)
    if kind == "subsegment" and doc.get("parent_id") is None:
        raise _fail("", "an independent subsegment requires 'parent_id'", doc_id, "MissingField")
    min_start = -math.inf if max_age is None else now - max_age
    _check_entity(doc, "", doc_id, now, min_start, 0)
    if raw is None or brackets(raw) > MAX_NESTING:
        _check_nesting(doc, doc_id)
