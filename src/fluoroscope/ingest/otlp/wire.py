"""OTLP attribute values as plain values, and span attributes read from the wire bytes.

upb makes a Python wrapper for each ``KeyValue`` and each ``AnyValue`` read (~1 µs per
attribute, measured: the largest part of translating a span). :class:`SpanAttributes`
reads a request's bytes a second time through a compiled view that keeps each span's
attributes as their serialized ``KeyValue`` bytes (one list per span, no wrappers; the
view declares only the path to them, so it parses in ~0.3 µs per span). An attribute
whose bytes were seen before - the same key with the same value, as most are
(``http.request.method=GET``, ``rpc.system=aws-api``, a status code, a region, a host)
- is then one dict lookup; any other is read from the ordinary message at the same
index, by :func:`any_value` as before, and remembered when its value is immutable and
small. So the dict it gives is the one :func:`attribute_dict` gives, key for key and
in the same order.

Thread-safe: the view is immutable once built, and the cache is a bounded dict whose
entries never change once made.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from typing import Any, Final

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

__all__ = ["SpanAttributes", "any_value", "attribute_dict"]

_SCALARS: Final = frozenset(("string_value", "int_value", "double_value", "bool_value"))
_IMMUTABLE: Final = (str, int, float, bool, type(None))
_CACHED_BYTES: Final = 160  # longest KeyValue remembered (ids, URLs, SQL are not)
_CACHED_ENTRIES: Final = 16_384  # then the cache starts again (a few MB at most)


def _bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as a plain value (bytes as base64 text; unset: None)."""
    which = value.WhichOneof("value")
    if which in _SCALARS:
        return getattr(value, which)
    if which == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return _bytes(value.bytes_value)
    return None


def attribute_dict(attributes: Iterable[Any]) -> dict[str, Any]:
    """OTLP ``KeyValue`` messages as a dict of plain values (bytes as base64 text)."""
    return {kv.key: any_value(kv.value) for kv in attributes}


def _view_class() -> Any:
    """The view of an ``ExportTraceServiceRequest``: resource_spans(1) -> resource(1)
    -> attributes(1), and resource_spans(1) -> scope_spans(2) -> spans(2) ->
    attributes(9), each attribute as ``bytes`` (the wire type of a message); every other
    field is left unread."""
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="fluoroscope/otlp_attributes_view.proto",
        package="fluoroscope.otlpview",
        syntax="proto3",
    )
    for name, fields in (
        ("Resource", [("attributes", 1, "")]),
        ("Span", [("attributes", 9, "")]),
        ("ScopeSpans", [("spans", 2, "Span")]),
        ("ResourceSpans", [("resource", 1, "Resource"), ("scope_spans", 2, "ScopeSpans")]),
        ("Request", [("resource_spans", 1, "ResourceSpans")]),
    ):
        message = file.message_type.add(name=name)
        for field_name, number, kind in fields:
            added = message.field.add(
                name=field_name,
                number=number,
                type=field.TYPE_MESSAGE if kind else field.TYPE_BYTES,
                label=field.LABEL_OPTIONAL if field_name == "resource" else field.LABEL_REPEATED,
            )
            if kind:
                added.type_name = f".fluoroscope.otlpview.{kind}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("fluoroscope.otlpview.Request")
    )


_VIEW: Final = _view_class()


class SpanAttributes:
    """Span and resource attributes of one request, read from its bytes (module
    docstring). Made per request; :meth:`of_span` and :meth:`of_resource` give
    :func:`attribute_dict`'s dict for an item of the ordinary message, named by its
    indexes in it."""

    __slots__ = ("_cache", "_view")

    def __init__(self, data: bytes, cache: dict[bytes, tuple[str, Any]]) -> None:
        """``data``: the request's protobuf bytes, which the ordinary message was
        parsed from; ``cache``: the attributes seen before (shared by requests)."""
        try:
            self._view: Any = _VIEW.FromString(data)
        except (DecodeError, RuntimeError, ValueError):
            self._view = None  # the ordinary message is read instead
        self._cache = cache

    def of_resource(self, r_index: int, attributes: Sequence[Any]) -> dict[str, Any]:
        """The attributes of resource ``r_index``, whose ``KeyValue`` messages are
        ``attributes``."""
        if self._view is None:
            return attribute_dict(attributes)
        return self._read(self._view.resource_spans[r_index].resource.attributes, attributes)

    def spans(self, r_index: int, s_index: int) -> Sequence[Any] | None:
        """The view's spans of scope ``s_index`` of resource ``r_index`` (None without
        a view), for :meth:`of_span`."""
        if self._view is None:
            return None
        return self._view.resource_spans[r_index].scope_spans[s_index].spans  # type: ignore[no-any-return]

    def of_span(self, view: Any, attributes: Sequence[Any]) -> dict[str, Any]:
        """The attributes of a span, given its item of :meth:`spans` (or None) and its
        ``KeyValue`` messages."""
        if view is None:
            return attribute_dict(attributes)
        return self._read(view.attributes, attributes)

    def _read(self, raw: Sequence[bytes], attributes: Sequence[Any]) -> dict[str, Any]:
        if len(raw) != len(attributes):  # not the same bytes: never so, but cheap to know
            return attribute_dict(attributes)
        cache = self._cache
        get = cache.get
        out: dict[str, Any] = {}
        for index, data in enumerate(raw):
            known = get(data)
            if known is None:
                kv = attributes[index]
                known = (kv.key, any_value(kv.value))
                if len(data) <= _CACHED_BYTES and isinstance(known[1], _IMMUTABLE):
                    if len(cache) >= _CACHED_ENTRIES:
                        cache.clear()
                    cache[data] = known
            out[known[0]] = known[1]
        return out
