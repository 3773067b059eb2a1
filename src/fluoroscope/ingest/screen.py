"""Segment documents validated a batch at a time, in compiled code (msgspec).

:func:`check_batch` gives, for each document of a batch, the verdict of
:func:`~fluoroscope.model.documents.validate_document` - None (storable) or the very
:class:`~fluoroscope.model.errors.InvalidDocument` it raises, code and message - at a
fraction of its cost. The JSON texts are decoded again, one after the other by one compiled decoder, against a typed
schema of what validation checks (msgspec ``Struct`` types: ids and trace ids by
pattern, times by bounds, flags as booleans, objects as objects, subsegments nested at
most :data:`~fluoroscope.model.documents.MAX_DEPTH` deep, ``end_time`` not before
``start_time``); the fields validation does not look at are skipped, never built.

The schema accepts a subset of what ``validate_document`` accepts (it is stricter where
being exact would cost, e.g. times within an hour of the retention limit or of the
clock-skew allowance, or a text holding more brackets than
:data:`~fluoroscope.model.documents.MAX_NESTING`); every document it does not accept is
handed to ``validate_document`` itself, which decides and words the error. So verdicts
and messages are today's by construction, and a good document costs one decoder call
(measured in ``benchmarks/ingest_cpu.py``; decoding a batch as one JSON array measured
slower: the array of every document's structs outgrows the caches).

Thread-safe. The schema's time bounds move with the clock by whole hours: the schema of
the next bounds is built in a thread of its own ten minutes before they apply, so no
caller stalls for it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Final, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from fluoroscope.model.documents import (
    MAX_DEPTH,
    MAX_FUTURE_SECONDS,
    MAX_NAME_LENGTH,
    MAX_NESTING,
    validate_document,
)
from fluoroscope.model.errors import InvalidDocument

__all__ = ["check_batch"]

_MS_EPOCH_FLOOR: Final = 1e11  # as in model.documents: later times are milliseconds
_GRID: Final = 3600.0  # seconds: the time bounds are rounded inward to this grid
_STATUS = Annotated[int, Meta(ge=0, le=999)]
_ENTITY_ID = Annotated[str, Meta(pattern=r"\A[0-9a-f]{16}\Z")]
_TRACE_ID = Annotated[str, Meta(pattern=r"\A1-[0-9a-f]{8}-[0-9a-f]{24}\Z")]
# non-empty once stripped: a character that is not whitespace (str.isspace's set)
_NAME = Annotated[str, Meta(max_length=MAX_NAME_LENGTH, pattern=r"\S")]
_END = Annotated[float, Meta(gt=0, lt=_MS_EPOCH_FLOOR)]  # and not before start_time


class _Object(msgspec.Struct, gc=False):
    """Any JSON object (its keys are skipped)."""


class _Response(msgspec.Struct, gc=False):
    status: _STATUS | None = None


class _Http(msgspec.Struct, gc=False):
    response: _Response | None = None


_Annotations = dict[str, str | int | float | bool]


def _entity_post_init(self: Any) -> None:
    end = self.end_time
    if end is None:
        if not self.in_progress:
            raise ValueError("end_time is required unless in_progress")
    elif end < self.start_time:
        raise ValueError("end_time precedes start_time")


def _document_post_init(self: Any) -> None:
    _entity_post_init(self)
    if self.type is not None and self.parent_id is None:
        raise ValueError("an independent subsegment requires parent_id")


def _entity_fields(start: Any, children: Any) -> list[tuple[str, Any, Any]]:
    return [
        ("name", _NAME, msgspec.NODEFAULT),
        ("id", _ENTITY_ID, msgspec.NODEFAULT),
        ("start_time", start, msgspec.NODEFAULT),
        ("end_time", _END | None, None),
        ("in_progress", bool, False),
        ("error", bool, False),
        ("fault", bool, False),
        ("throttle", bool, False),
        ("parent_id", _ENTITY_ID | None, None),
        ("http", _Http | UnsetType, UNSET),
        ("aws", _Object | UnsetType, UNSET),
        ("sql", _Object | UnsetType, UNSET),
        ("annotations", _Annotations | UnsetType, UNSET),
        ("metadata", _Object | UnsetType, UNSET),
        ("service", _Object | UnsetType, UNSET),
        ("cause", str | _Object | None, None),
        ("subsegments", children, None),
    ]


def _start_type(low: float, high: float) -> Any:
    """``start_time``: a positive number of epoch seconds, not milliseconds, within
    ``[low, high]``."""
    lower = Meta(ge=low) if low > 0 else Meta(gt=0)
    upper = Meta(le=high) if high < _MS_EPOCH_FLOOR else Meta(lt=_MS_EPOCH_FLOOR)
    return Annotated[float, lower, upper]  # msgspec merges the two


def _build(low_cell: float, high_cell: float) -> Callable[[bytes], Any]:
    """The decoder of one document's JSON text against the schema, for start times from
    ``low_cell`` to ``high_cell`` (multiples of the grid); it raises
    :class:`msgspec.DecodeError` for what the schema does not accept."""
    start = _start_type(low_cell, high_cell)
    # One type per nesting depth, deepest first: past MAX_DEPTH, 'subsegments' can only
    # be null (validate_document refuses any other value there).
    children: Any = None
    for depth in range(MAX_DEPTH, 0, -1):
        level = msgspec.defstruct(
            f"_Entity{depth}",
            _entity_fields(start, children),
            namespace={"__post_init__": _entity_post_init},
            kw_only=True,
            gc=False,
        )
        children = list[level] | None  # type: ignore[valid-type]
    document = msgspec.defstruct(
        "_Document",
        [
            ("trace_id", _TRACE_ID, msgspec.NODEFAULT),
            ("type", Literal["subsegment"] | None, None),
            *_entity_fields(start, children),
        ],
        namespace={"__post_init__": _document_post_init},
        kw_only=True,
        gc=False,
    )
    return msgspec.json.Decoder(document).decode


_AHEAD: Final = 600.0  # seconds: the next bounds' decoder is built this long before use
_KEPT: Final = 4  # decoders kept (callers may pass any ``now`` and ``max_age``)
_built: dict[tuple[float, float], Callable[[bytes], Any]] = {}
_building: set[tuple[float, float]] = set()
_lock = threading.Lock()


def _cells(now: float, max_age: float | None) -> tuple[float, float]:
    """The start-time bounds at ``now``, rounded inward to the grid (low up, high down):
    only ever stricter than the exact bounds, and one schema serves up to an hour."""
    low = -math.inf if max_age is None else now - max_age
    high = now + MAX_FUTURE_SECONDS
    low_cell = math.ceil(low / _GRID) * _GRID if low > -math.inf else -math.inf
    return low_cell, math.floor(high / _GRID) * _GRID


def _keep(cells: tuple[float, float], decode: Callable[[bytes], Any]) -> None:
    with _lock:
        _built[cells] = decode
        while len(_built) > _KEPT:  # the oldest first
            del _built[next(iter(_built))]


def _decoder(cells: tuple[float, float]) -> Callable[[bytes], Any]:
    """The decoder for ``cells``, built now if it is not built yet."""
    decode = _built.get(cells)
    if decode is None:
        decode = _build(*cells)
        _keep(cells, decode)
    return decode


def _prepare(cells: tuple[float, float]) -> None:
    """Build the decoder for ``cells`` once, in a thread of its own: building one takes
    ~0.1 s of CPU, which a worker would otherwise spend when the bounds move."""
    with _lock:
        if cells in _built or cells in _building:
            return
        _building.add(cells)

    def build() -> None:
        try:
            _keep(cells, _build(*cells))
        finally:
            with _lock:
                _building.discard(cells)

    threading.Thread(target=build, name="fluoroscope-schema", daemon=True).start()


def _decoder_at(now: float, max_age: float | None) -> Callable[[bytes], Any]:
    cells = _cells(now, max_age)
    ahead = _cells(now + _AHEAD, max_age)
    if ahead != cells and ahead not in _built:
        _prepare(ahead)
    return _decoder(cells)


def check_batch(
    docs: Sequence[object], raws: Sequence[bytes], *, now: float, max_age: float | None = None
) -> list[InvalidDocument | None]:
    """For each of ``docs`` (parsed from the JSON texts ``raws``, aligned), what
    :func:`~fluoroscope.model.documents.validate_document` says with the same ``now``
    and ``max_age``: None when it accepts the document, else the error it raises (same
    class, code, message and document id). Never raises for bad input; pure."""
    decode = _decoder_at(now, max_age)
    verdicts: list[InvalidDocument | None] = [None] * len(raws)
    for index, raw in enumerate(raws):
        # Deeper bracket nesting than MAX_NESTING needs validate_document's walk; a text
        # with fewer brackets than that cannot nest that deep.
        if raw.count(b"{") + raw.count(b"[") <= MAX_NESTING:
            try:
                decode(raw)
                continue
            except msgspec.DecodeError:  # ValidationError included
                pass
        try:
            validate_document(docs[index], now=now, max_age=max_age, raw=raw)
        except InvalidDocument as exc:
            verdicts[index] = exc
    return verdicts
