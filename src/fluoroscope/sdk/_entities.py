"""Segments and subsegments: the in-memory trace tree (reference: xray-protocol §2).

An entity is created open, collects data while the application runs, and is closed
once. Closed subsegments are *attached* to their still-open parent (and travel
embedded in it); a subsegment whose parent is already closed, or whose segment is a
Lambda facade, is emitted on its own as an independent subsegment. When a segment has
buffered more than ``streaming_threshold`` closed subsegments, the closed subtrees of
the parent that just grew are detached and streamed as independent subsegments, so a
long or busy segment never grows without bound. (The serializer also splits any
document that would exceed 64 KiB; see :mod:`fluoroscope.sdk._serialize`.)

Threads: an entity may be used from several threads or tasks (children are attached
under the owning segment's lock). Recording methods never raise into application
code: invalid input is dropped and logged once. Methods are meant to be called from
the code that owns the entity; mutating an entity after it was closed has no
defined effect on what was sent.

Unsampled work and code outside any segment use the stand-ins of
:mod:`fluoroscope.sdk._inert`, which accept every call and record nothing.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Mapping
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self

from fluoroscope.model.ids import new_entity_id
from fluoroscope.model.trace_header import NOT_SAMPLED, SAMPLED, to_traceparent
from fluoroscope.sdk._context import CURRENT
from fluoroscope.sdk._exceptions import exception_cause
from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk._recording import RECORDING

if TYPE_CHECKING:
    from fluoroscope.sdk._emitters import Emitter

__all__ = ["Entity", "InProgress", "Segment", "Subsegment", "sanitize_name"]

_time = time.time
_BAD_NAME_CHARS: Final = re.compile(r"[^\w\s.:/%&#=+\\\-@]")
_ANNOTATION_KEY: Final = re.compile(r"[A-Za-z0-9_]{1,250}")
_MAX_ANNOTATION_STRING: Final = 1000
_MAX_INT: Final = 2**63
_HTTP_REQUEST_KEYS: Final = frozenset(
    ("method", "url", "user_agent", "client_ip", "x_forwarded_for", "traced")
)
_HTTP_RESPONSE_KEYS: Final = frozenset(("status", "content_length"))


_names: dict[str, str] = {}


def sanitize_name(name: object) -> str:
    """A valid entity name: allowed characters only, at most 200, never empty (§2.1).

    Results for short names are cached (up to 4096 of them), since the same names
    recur on every request.
    """
    if isinstance(name, str):
        cached = _names.get(name)
        if cached is not None:
            return cached
        clean = _sanitize(name)
        if len(_names) < 4096 and len(name) <= 256:
            _names[name] = clean
        return clean
    return _sanitize(str(name))


def _sanitize(text: str) -> str:
    if _BAD_NAME_CHARS.search(text) is not None:
        text = _BAD_NAME_CHARS.sub("", text)
    text = text[:200]
    return text if text.strip() else "unnamed"


def _valid_annotation(key: object, value: object) -> bool:
    if not isinstance(key, str) or _ANNOTATION_KEY.fullmatch(key) is None:
        warn_once(
            f"annotation-key:{key!r:.80}",
            "annotation key %r dropped: keys are 1-250 letters, digits or underscores",
            key,
        )
        return False
    if isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        if -_MAX_INT < value < _MAX_INT:
            return True
    elif isinstance(value, float) and math.isfinite(value):
        return True
    warn_once(
        f"annotation-value:{type(value).__name__}",
        "annotation %r dropped: values must be a string, a finite number or a boolean (got %s)",
        key,
        type(value).__name__,
    )
    return False


class Entity:
    """What segments and subsegments have in common; the interface instrumentations use.

    ``id`` is the entity's 16-hex id, ``start_time``/``end_time`` epoch seconds
    (``end_time`` is 0.0 while open). ``sampled`` is False for the stand-ins that
    record nothing. Every method is safe to call on any entity, sampled or not.

    Entering an entity (``with``) makes it current until the block exits and closes it
    then; enter each entity once. Other threads and tasks may record on it, or open
    their own subsegments under it (the context they inherit makes it their parent).
    """

    __slots__ = ("_count", "_data", "_token", "children", "end_time", "id", "name", "start_time")

    sampled: ClassVar[bool] = True
    segment: Segment
    name: str
    id: str
    start_time: float
    end_time: float
    children: list[Subsegment] | None
    _data: dict[str, Any] | None
    _count: int
    _token: Token[Entity | None] | None

    # -- identity ----------------------------------------------------------------

    @property
    def trace_id(self) -> str:
        """The trace id this entity belongs to."""
        return self.segment.trace_id

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self.end_time != 0.0

    def trace_header(self) -> str | None:
        """The ``X-Amzn-Trace-Id`` value for a call made from inside this entity.

        ``Root=<trace>;Parent=<this id>;Sampled=1`` plus the extra fields that arrived
        with the segment's incoming header. None only for :data:`NOOP`.
        """
        seg = self.segment
        header = f"Root={seg.trace_id};Parent={self.id};Sampled={SAMPLED if self.sampled else NOT_SAMPLED}"
        if seg.header_extra:
            header += "".join(f";{k}={v}" for k, v in seg.header_extra)
        return header

    def traceparent(self) -> str | None:
        """The W3C ``traceparent`` value for a call made from inside this entity.

        For callees instrumented with OpenTelemetry; None only for :data:`NOOP`.
        """
        return to_traceparent(self.segment.trace_id, self.id, self.sampled)

    # -- recording ---------------------------------------------------------------

    def _fields(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            with self.segment._lock:  # two threads recording the first field at once
                data = self._data
                if data is None:
                    data = self._data = {}
        return data

    def put_annotation(self, key: str, value: str | int | float | bool) -> None:
        """Add an indexed annotation (§2.8): key of letters, digits, ``_``; value str/number/bool.

        Invalid keys or values are dropped and logged once.
        """
        if _valid_annotation(key, value):
            if isinstance(value, str) and len(value) > _MAX_ANNOTATION_STRING:
                value = value[:_MAX_ANNOTATION_STRING]
            self._fields().setdefault("annotations", {})[key] = value

    def put_metadata(self, key: str, value: object, namespace: str = "default") -> None:
        """Add unindexed metadata under ``namespace`` (§2.9); ``AWS.*`` namespaces are refused.

        Values that JSON cannot represent are written as their ``repr`` when sent.
        """
        if not isinstance(namespace, str) or not namespace or namespace.startswith("AWS."):
            warn_once(
                f"metadata-ns:{namespace!r:.80}",
                "metadata namespace %r refused (empty or reserved AWS.*)",
                namespace,
            )
            return
        if not isinstance(key, str):
            warn_once("metadata-key", "metadata key %r refused: keys are strings", key)
            return
        self._fields().setdefault("metadata", {}).setdefault(namespace, {})[key] = value

    def set_http_request(
        self,
        *,
        method: str | None = None,
        url: str | None = None,
        user_agent: str | None = None,
        client_ip: str | None = None,
        x_forwarded_for: bool | None = None,
        traced: bool | None = None,
    ) -> None:
        """Record ``http.request`` fields (§2.4); None leaves a field unset."""
        request = self._fields().setdefault("http", {}).setdefault("request", {})
        for key, value in (
            ("method", method),
            ("url", url),
            ("user_agent", user_agent),
            ("client_ip", client_ip),
            ("x_forwarded_for", x_forwarded_for),
            ("traced", traced),
        ):
            if value is not None:
                request[key] = value

    def set_http_response(
        self, *, status: int | None = None, content_length: int | None = None
    ) -> None:
        """Record ``http.response`` fields; a status also sets error/throttle/fault flags."""
        response = self._fields().setdefault("http", {}).setdefault("response", {})
        if content_length is not None:
            response["content_length"] = content_length
        if status is not None:
            response["status"] = status
            self.apply_status_code(status)

    def put_http_meta(self, key: str, value: object) -> None:
        """aws-xray-sdk style: one ``http`` field by name (``url``, ``status``, ...)."""
        if key in _HTTP_REQUEST_KEYS:
            self._fields().setdefault("http", {}).setdefault("request", {})[key] = value
        elif key in _HTTP_RESPONSE_KEYS:
            if key == "status" and isinstance(value, int):
                self.set_http_response(status=value)
            else:
                self._fields().setdefault("http", {}).setdefault("response", {})[key] = value
        else:
            warn_once(f"http-key:{key!r:.40}", "unknown http field %r dropped", key)

    def apply_status_code(self, status: int) -> None:
        """Set flags from an HTTP status: 429 → throttle+error, 4xx → error, 5xx → fault."""
        if not isinstance(status, int):
            return
        if status >= 500:
            self.mark_fault()
        elif status == 429:
            self.mark_throttle()
            self.mark_error()
        elif status >= 400:
            self.mark_error()

    def mark_error(self) -> None:
        """Set ``error: true`` (a client-side 4xx problem)."""
        self._fields()["error"] = True

    def mark_fault(self) -> None:
        """Set ``fault: true`` (a server-side 5xx problem)."""
        self._fields()["fault"] = True

    def mark_throttle(self) -> None:
        """Set ``throttle: true`` (429)."""
        self._fields()["throttle"] = True

    def set_aws(self, fields: Mapping[str, object] | None = None, /, **more: object) -> None:
        """Merge fields into the ``aws`` block (§2.5), e.g. ``operation``, ``region``."""
        block = self._fields().setdefault("aws", {})
        if fields:
            block.update(fields)
        if more:
            block.update(more)

    def set_sql(self, fields: Mapping[str, object] | None = None, /, **more: object) -> None:
        """Merge fields into the ``sql`` block (§2.10), e.g. ``url``, ``sanitized_query``."""
        block = self._fields().setdefault("sql", {})
        if fields:
            block.update(fields)
        if more:
            block.update(more)

    def add_exception(
        self, exc: BaseException, *, remote: bool = False, max_frames: int | None = None
    ) -> None:
        """Record ``exc`` as this entity's ``cause`` (§2.7), with its stack.

        Sets ``fault`` unless a status code already marked ``error`` or ``throttle``.
        Frames inside the SDK are left out; at most ``max_frames`` (default: the
        tracer's ``max_stack_frames``) innermost frames are kept, most recent first.
        When the same exception object was already recorded by an inner entity, only
        its id is written (``"cause": "<id>"``). Never raises.
        """
        try:
            data = self._fields()
            if not (data.get("error") or data.get("throttle")):
                data["fault"] = True
            limit = self.segment.max_stack_frames if max_frames is None else max_frames
            data["cause"] = exception_cause(exc, remote, limit)
        except Exception:  # pragma: no cover - defensive: never break the app
            warn_once("exception-record", "could not record an exception")

    # -- lifecycle ---------------------------------------------------------------

    def close(self, end_time: float | None = None) -> None:
        """End the entity (idempotent). Never blocks for long, never raises."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._token = CURRENT.set(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and isinstance(exc, Exception):
            self.add_exception(exc)
        token = self._token
        if token is not None:
            self._token = None
            try:
                CURRENT.reset(token)
            except ValueError:  # exited in another context than it was entered in
                CURRENT.set(getattr(self, "parent", None))
        self.close()

    async def __aenter__(self) -> Self:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class Segment(Entity):
    """The root of one service's work on one request; emitted when closed.

    Created by :meth:`Tracer.segment` (or, for middleware,
    :func:`fluoroscope.sdk.instrument.start_request`); the tracer owns the emitter it
    is sent to. ``parent_id`` is the caller's entity id from an
    incoming header; ``sampling_requested`` is True when the caller sent
    ``Sampled=?`` (then :meth:`response_header` echoes the decision).
    """

    __slots__ = (
        "_buffered",
        "_emitter",
        "_facade",
        "_lock",
        "_threshold",
        "header_extra",
        "max_stack_frames",
        "origin",
        "parent_id",
        "sampling_requested",
        "segment",
        "service_block",
        "trace_id",
        "user",
    )

    trace_id: str  # a slot here, a property on the base

    def __init__(
        self,
        name: str,
        *,
        trace_id: str,
        emitter: Emitter,
        entity_id: str | None = None,
        parent_id: str | None = None,
        start_time: float | None = None,
        origin: str | None = None,
        service_block: Mapping[str, object] | None = None,
        header_extra: tuple[tuple[str, str], ...] = (),
        sampling_requested: bool = False,
        streaming_threshold: int = 100,
        max_stack_frames: int = 10,
        facade: bool = False,
    ) -> None:
        self.name = name
        self.id = entity_id or new_entity_id()
        self.trace_id = trace_id
        self.start_time = _time() if start_time is None else start_time
        self.end_time = 0.0
        self.children = None
        self._data = None
        self._count = 1
        self._token = None
        self.segment = self
        self.parent_id = parent_id
        self.origin = origin
        self.user: str | None = None
        self.service_block = service_block
        self.header_extra = header_extra
        self.sampling_requested = sampling_requested
        self.max_stack_frames = max_stack_frames
        self._emitter = emitter
        self._lock = threading.Lock()
        self._buffered = 0
        self._threshold = streaming_threshold
        self._facade = facade

    def set_user(self, user: str) -> None:
        """Set the indexed ``user`` field."""
        self.user = str(user)

    def response_header(self) -> str:
        """The ``X-Amzn-Trace-Id`` value to return to the caller (§1.3)."""
        if self.sampling_requested:
            return f"Root={self.trace_id};Sampled={SAMPLED if self.sampled else NOT_SAMPLED}"
        return f"Root={self.trace_id}"

    def send_in_progress(self) -> None:
        """Emit an ``in_progress`` document now (for long requests); the final one replaces it."""
        if not self.end_time and not self._facade:
            _emit(self._emitter, InProgress(self))

    def close(self, end_time: float | None = None) -> None:
        """End the segment and hand it to the emitter (idempotent; never raises)."""
        if self.end_time:
            return
        with self._lock:
            if self.end_time:
                return
            self.end_time = _time() if end_time is None else end_time
        if not self._facade:
            _emit(self._emitter, self)


class Subsegment(Entity):
    """A unit of work inside a segment: custom code (``local``), a downstream call
    (``remote``) or an AWS SDK call (``aws``). ``parent`` is the enclosing entity.
    """

    __slots__ = ("namespace", "parent", "segment")

    def __init__(
        self, name: str, parent: Segment | Subsegment, namespace: str | None = None
    ) -> None:
        self.name = name
        self.id = new_entity_id()
        self.start_time = _time()
        self.end_time = 0.0
        self.children = None
        self._data = None
        self._count = 1
        self._token = None
        self.parent = parent
        self.segment = parent.segment
        self.namespace = namespace

    @property
    def parent_id(self) -> str:
        """The id of the enclosing segment or subsegment."""
        return self.parent.id

    def close(self, end_time: float | None = None) -> None:
        """End the subsegment: attach it to its open parent, or emit it on its own.

        Idempotent; never raises; may hand documents to the emitter (which does not block).
        """
        if self.end_time:
            return
        seg = self.segment
        parent = self.parent
        streamed: list[Subsegment] | None = None
        independent = False
        with seg._lock:
            if self.end_time:
                return
            self.end_time = _time() if end_time is None else end_time
            if parent.end_time or (parent is seg and seg._facade):
                independent = True
                seg._buffered -= self._count - 1
            else:
                siblings = parent.children
                if siblings is None:
                    parent.children = [self]
                else:
                    siblings.append(self)
                parent._count += self._count
                seg._buffered += 1
                if seg._buffered > seg._threshold:
                    streamed = parent.children or []
                    parent.children = None
                    moved = 0
                    for child in streamed:
                        moved += child._count
                    parent._count -= moved
                    seg._buffered -= moved
        if independent:
            _emit(seg._emitter, self)
        elif streamed:
            for child in streamed:
                _emit(seg._emitter, child)


def _emit(emitter: Emitter, item: Entity | InProgress) -> None:
    """Hand ``item`` to ``emitter`` (to the test recorder while one records); a custom
    emitter that raises is logged once, not fatal."""
    if RECORDING:
        emitter = RECORDING[-1]
    try:
        emitter.emit(item)
    except Exception as exc:
        warn_once("emitter-raised", "the trace emitter raised %r; documents lost", exc)


class InProgress:
    """An ``in_progress`` snapshot of an open segment, for the emitter to serialize."""

    __slots__ = ("segment",)

    def __init__(self, segment: Segment) -> None:
        self.segment = segment
