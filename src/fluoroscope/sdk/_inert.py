"""Stand-in entities that record nothing: unsampled requests and "no segment here".

:class:`UnsampledSegment` is one small object per unsampled request: it carries the
trace id so the ``Sampled=0`` decision still propagates downstream, and one shared
child (:meth:`UnsampledSegment.child`) stands for every subsegment opened inside it,
so unsampled work allocates nothing per call. :data:`NOOP` is the shared entity seen
when there is no current segment: it records and propagates nothing. Both accept
every :class:`~fluoroscope.sdk._entities.Entity` call; none of their methods raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any, ClassVar, Final, Self

from fluoroscope.model.ids import new_entity_id
from fluoroscope.model.trace_header import NOT_SAMPLED
from fluoroscope.sdk._entities import Entity

__all__ = ["NOOP", "UnsampledSegment"]


class _Inert(Entity):
    """Shared behaviour of the stand-ins that record nothing."""

    __slots__ = ()
    sampled: ClassVar[bool] = False

    def put_annotation(self, key: str, value: str | int | float | bool) -> None:
        return None

    def put_metadata(self, key: str, value: object, namespace: str = "default") -> None:
        return None

    def set_http_request(self, **fields: Any) -> None:
        return None

    def set_http_response(self, **fields: Any) -> None:
        return None

    def put_http_meta(self, key: str, value: object) -> None:
        return None

    def apply_status_code(self, status: int) -> None:
        return None

    def mark_error(self) -> None:
        return None

    def mark_fault(self) -> None:
        return None

    def mark_throttle(self) -> None:
        return None

    def set_aws(self, fields: Mapping[str, object] | None = None, /, **more: object) -> None:
        return None

    def set_sql(self, fields: Mapping[str, object] | None = None, /, **more: object) -> None:
        return None

    def add_exception(
        self, exc: BaseException, *, remote: bool = False, max_frames: int | None = None
    ) -> None:
        return None

    def set_user(self, user: str) -> None:
        return None

    def close(self, end_time: float | None = None) -> None:
        return None


class UnsampledSegment(_Inert):
    """A request that is not sampled: it propagates ``Sampled=0`` and records nothing.

    One shared stand-in (:meth:`child`) serves for all the subsegments opened inside
    it, so unsampled work allocates nothing per call.
    """

    __slots__ = (
        "_child",
        "header_extra",
        "parent_id",
        "sampling_requested",
        "segment",
        "trace_id",
    )

    trace_id: str

    def __init__(
        self,
        name: str,
        *,
        trace_id: str,
        entity_id: str | None = None,
        parent_id: str | None = None,
        header_extra: tuple[tuple[str, str], ...] = (),
        sampling_requested: bool = False,
    ) -> None:
        self.name = name
        self.id = entity_id or new_entity_id()
        self.trace_id = trace_id
        self.start_time = 0.0
        self.end_time = 0.0
        self.children = None
        self._data = None
        self._count = 1
        self._token = None
        self.segment = self  # type: ignore[assignment]
        self.parent_id = parent_id
        self.header_extra = header_extra
        self.sampling_requested = sampling_requested
        self._child: _UnsampledChild | None = None

    def response_header(self) -> str:
        """The ``X-Amzn-Trace-Id`` value to return to the caller (§1.3)."""
        if self.sampling_requested:
            return f"Root={self.trace_id};Sampled={NOT_SAMPLED}"
        return f"Root={self.trace_id}"

    def send_in_progress(self) -> None:
        return None

    def child(self) -> Entity:
        """The stand-in for any subsegment opened inside this unsampled segment."""
        kid = self._child
        if kid is None:
            kid = self._child = _UnsampledChild(self)
        return kid


class _UnsampledChild(_Inert):
    """A subsegment of an unsampled segment: entering it changes nothing."""

    __slots__ = ("segment",)

    def __init__(self, segment: UnsampledSegment) -> None:
        self.name = segment.name
        self.id = segment.id
        self.start_time = 0.0
        self.end_time = 0.0
        self.children = None
        self._data = None
        self._count = 1
        self._token = None
        self.segment = segment  # type: ignore[assignment]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class _Noop(_Inert):
    """The entity seen outside any segment: records nothing, propagates nothing."""

    __slots__ = ()

    def __init__(self) -> None:
        self.name = "noop"
        self.id = "0000000000000000"
        self.start_time = 0.0
        self.end_time = 0.0
        self.children = None
        self._data = None
        self._count = 1
        self._token = None

    @property
    def trace_id(self) -> str:
        return ""

    def trace_header(self) -> str | None:
        return None

    def traceparent(self) -> str | None:
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


NOOP: Final[Entity] = _Noop()
"""The shared stand-in returned when there is no current segment."""
