"""OTLP spans -> X-Ray segment documents, by the Collector's awsxray exporter rules.

:class:`Translator` turns an ``ExportTraceServiceRequest`` (the compiled protobuf
message, whichever way it arrived) into segment documents: plain dicts as a client
would have sent them, which then take the ordinary ingest path (validation, merging,
storage) like any other document. One span makes one document - a ``subsegment``
unless it is a SERVER span or has no parent - except a CLIENT/PRODUCER/CONSUMER span
marked ``aws.span.kind=LOCAL_ROOT``, which makes a service segment and its dependency
subsegment. Names, namespaces, ``http``/``aws``/``sql``/``cause`` blocks
(:mod:`fluoroscope.ingest.otlp.blocks`), ``origin``, ``user``, annotations (the
indexed attributes: :class:`TranslateOptions`, plus a span's ``aws.xray.annotations``)
and metadata (everything else, ``otel.resource.*`` on segments), ``links``.

A span that cannot become a valid document (no ids, zero ids, no start, end before
start, ...) is rejected on its own, with a reason; the others are unaffected. The trace
id's first 4 bytes need not be a recent epoch (W3C random ids are accepted and stored).

Attributes are read from the request's bytes when the caller has them
(:mod:`fluoroscope.ingest.otlp.wire`); the documents are the same either way.

Thread-safe: a translator holds its immutable options and bounded caches (attributes
and span names already read) that are only ever added to or emptied whole.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from fluoroscope.ingest.otlp.blocks import (
    AWS_KEYS,
    HTTP_KEYS,
    SERVER,
    SQL_KEYS,
    STATUS_ERROR,
    ResourceFacts,
    make_cause,
    make_http,
    make_span_aws,
    make_sql,
    resource_facts,
    status_flags,
)
from fluoroscope.ingest.otlp.options import TranslateOptions
from fluoroscope.ingest.otlp.wire import SpanAttributes, any_value, attribute_dict
from fluoroscope.model.documents import MAX_NAME_LENGTH
from fluoroscope.model.ids import xray_trace_id

__all__ = [
    "TranslateOptions",
    "Translation",
    "Translator",
    "any_value",
    "attribute_dict",
]

INTERNAL: Final = 1
CLIENT: Final = 3
PRODUCER: Final = 4
CONSUMER: Final = 5
_DEPENDENCY_KINDS: Final = (CLIENT, PRODUCER, CONSUMER)
_ZERO_TRACE: Final = bytes(16)
_ZERO_SPAN: Final = bytes(8)
_BAD_NAME_CHARS: Final = re.compile(r"[^ \w.:/%&#=+\-@]")
_BAD_KEY_CHARS: Final = re.compile(r"[^A-Za-z0-9.]")
_INDEX_ALL: Final = "aws.xray.exporter.config.index_all_attributes"
_INDEXED: Final = "aws.xray.exporter.config.indexed_attributes"
_SERVICE_SEGMENT_DROPS: Final = (
    "aws.remote.service", "aws.remote.operation", "remoteTarget", "K8s.RemoteNamespace",
)  # fmt: skip
_SERVICE_SEGMENT_AWS_DROPS: Final = (
    "operation", "account_id", "region", "request_id", "queue_url", "table_name", "table_names",
)  # fmt: skip
_MAX_ERRORS: Final = 5  # reasons kept per request for the partial-success message
# Every attribute :func:`_name` reads: a span with none of them is named at once.
_NAME_KEYS: Final = frozenset((
    "aws.span.kind", "aws.local.service", "aws.remote.service", "peer.service", "rpc.system",
    "aws.service", "db.name", "rpc.service", "http.host", "net.peer.name",
))  # fmt: skip
_SEGMENT_NAMES: dict[str, str] = {}  # span name -> segment name (shared, bounded)
_REMEMBERED_NAMES: Final = 4096


@dataclass(slots=True)
class Translation:
    """A request's documents, and its rejected spans with the first few reasons."""

    documents: list[dict[str, Any]] = field(default_factory=list)
    rejected: int = 0
    errors: list[str] = field(default_factory=list)
    what: str = "span"  # what is rejected, for the message ("log record" for logs)

    def reject(self, reason: str, count: int = 1) -> None:
        """Count ``count`` spans rejected for ``reason``."""
        self.rejected += count
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(reason)

    @property
    def message(self) -> str:
        """The reasons, for OTLP's ``partial_success.error_message`` (empty if none)."""
        if not self.rejected:
            return ""
        hidden = self.rejected - len(self.errors)
        more = f" (and {hidden} more)" if hidden > 0 else ""
        return f"{self.rejected} {self.what}(s) rejected: " + "; ".join(self.errors) + more


def _segment_name(name: str) -> str:
    """``name`` with the characters X-Ray refuses left out (remembered: operation names
    recur, and the substitution costs more than the lookup)."""
    known = _SEGMENT_NAMES.get(name)
    if known is not None:
        return known
    fixed = _BAD_NAME_CHARS.sub("", name)[:MAX_NAME_LENGTH]
    fixed = fixed if fixed.strip() else "span"
    if len(name) <= MAX_NAME_LENGTH:
        if len(_SEGMENT_NAMES) >= _REMEMBERED_NAMES:
            _SEGMENT_NAMES.clear()
        _SEGMENT_NAMES[name] = fixed
    return fixed


def _fit(name: str) -> str:
    name = name[:MAX_NAME_LENGTH]
    return name if name.strip() else "span"


def _annotation(value: object) -> object:
    return value if isinstance(value, str | int | float) else None


class _Resource:
    """One resource's attributes and what follows from them, for all of its spans."""

    __slots__ = ("attrs", "facts", "index_all", "indexed", "meta", "notes", "service_name")

    def __init__(self, attrs: dict[str, Any], options: TranslateOptions) -> None:
        index_all = attrs.pop(_INDEX_ALL, None)
        indexed = attrs.pop(_INDEXED, None)
        self.index_all = options.index_all if not isinstance(index_all, bool) else index_all
        self.indexed = options.indexed
        if isinstance(indexed, list):
            self.indexed = frozenset(v for v in indexed if isinstance(v, str))
        self.attrs = attrs
        self.facts: ResourceFacts = resource_facts(attrs, options.log_groups)
        name = attrs.get("service.name")
        self.service_name = name if isinstance(name, str) else ""
        self.notes, self.meta = self.split(self.indexed)

    def split(self, indexed: frozenset[str]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``otel.resource.*`` annotations and metadata under ``indexed``."""
        notes: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        for key, value in self.attrs.items():
            key = "otel.resource." + key
            note = _annotation(value)
            if note is not None and (self.index_all or key in indexed):
                notes[_BAD_KEY_CHARS.sub("_", key)] = note
            elif value is not None:
                meta[key] = value
        return notes, meta


class Translator:
    """Spans -> segment documents (module docstring). ``options`` apply to every
    request, unless a resource carries the exporter's own settings (its
    ``aws.xray.exporter.config.*`` attributes, as the CloudWatch agent sends them)."""

    def __init__(self, options: TranslateOptions | None = None) -> None:
        self.options = options or TranslateOptions()
        self._seen: dict[bytes, tuple[str, Any]] = {}  # attributes by their bytes (wire)

    def translate(
        self,
        request: Any,
        into: Translation | None = None,
        data: bytes | None = None,
        keep: Callable[[bytes], bool] | None = None,
    ) -> Translation:
        """The documents of ``request`` (an ``ExportTraceServiceRequest``); ``data``:
        the protobuf bytes it was parsed from, when it was (attributes are then read
        from them: :mod:`fluoroscope.ingest.otlp.wire`; the documents are the same).
        ``keep``, when given: only the spans whose raw ``trace_id`` bytes it accepts
        (whatever their length) are translated, or rejected; the others are skipped
        unread and uncounted (an ingest worker translating its own share of a
        request). A span's documents all have the span's trace id."""
        out = into if into is not None else Translation()
        options = self.options
        wire = SpanAttributes(data, self._seen) if data is not None else None
        for r_index, resource_spans in enumerate(request.resource_spans):
            kvs = resource_spans.resource.attributes
            attrs = wire.of_resource(r_index, kvs) if wire is not None else attribute_dict(kvs)
            resource = _Resource(attrs, options)
            for s_index, scope_spans in enumerate(resource_spans.scope_spans):
                views = wire.spans(r_index, s_index) if wire is not None else None
                for position, span in enumerate(scope_spans.spans):
                    if keep is not None and not keep(span.trace_id):
                        continue
                    try:
                        if wire is None or views is None:
                            attrs = attribute_dict(span.attributes)
                        else:
                            attrs = wire.of_span(views[position], span.attributes)
                        self._span(span, attrs, resource, out)
                    except Exception as exc:  # one span never costs the others
                        out.reject(f"span {position} ({span.name[:60]!r}): {exc}")
        return out

    def _span(
        self, span: Any, attrs: dict[str, Any], resource: _Resource, out: Translation
    ) -> None:
        trace_id = span.trace_id
        span_id = span.span_id
        if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
            raise ValueError("trace_id must be 16 bytes, not all zero")
        if len(span_id) != 8 or span_id == _ZERO_SPAN:
            raise ValueError("span_id must be 8 bytes, not all zero")
        parent = span.parent_span_id
        if parent == _ZERO_SPAN:
            parent = b""
        elif parent and len(parent) != 8:
            raise ValueError("parent_span_id must be 8 bytes or empty")
        start = span.start_time_unix_nano
        end = span.end_time_unix_nano
        if not start:
            raise ValueError("start_time_unix_nano is missing")
        if end < start:
            raise ValueError("end_time_unix_nano precedes start_time_unix_nano")
        kind = span.kind
        head = (span_id.hex(), xray_trace_id(trace_id), start / 1e9, end / 1e9)
        local_root = attrs.get("aws.span.kind") == "LOCAL_ROOT"
        if not local_root:
            doc = self._document(span, head, attrs, kind, parent, resource)
            if (
                kind in _DEPENDENCY_KINDS
                and "type" in doc
                and "namespace" not in doc
                and "aws.remote.service" in attrs
            ):
                doc["namespace"] = "remote"
            out.documents.append(doc)
            return
        if kind not in _DEPENDENCY_KINDS:
            doc = self._document(span, head, attrs, kind, parent, resource)
            doc.pop("type", None)
            doc.pop("namespace", None)
            out.documents.append(doc)
            return
        service_id = os.urandom(8)
        dependency = self._document(span, head, attrs, kind, service_id, resource)
        dependency["type"] = "subsegment"
        dependency.setdefault("namespace", "remote")
        if kind == CONSUMER:
            dependency.pop("links", None)
        remote = attrs.get("aws.remote.service")
        if isinstance(remote, str):
            dependency["name"] = _fit(_trim_sdk_prefix(remote, attrs))
        service_attrs = {k: v for k, v in attrs.items() if k not in _SERVICE_SEGMENT_DROPS}
        service_head = (service_id.hex(), *head[1:])
        service = self._document(span, service_head, service_attrs, kind, parent, resource)
        local = attrs.get("aws.local.service")
        if isinstance(local, str):
            service["name"] = _fit(local)
        service.pop("http", None)
        if "aws" in service:
            for key in _SERVICE_SEGMENT_AWS_DROPS:
                service["aws"].pop(key, None)
        for namespace in service.get("metadata", {}).values():
            for key in [k for k in namespace if not k.startswith("otel.resource.")]:
                del namespace[key]
        service.pop("type", None)
        service.pop("namespace", None)
        if kind != CONSUMER:
            service.pop("links", None)
        out.documents.append(dependency)
        out.documents.append(service)

    def _document(
        self,
        span: Any,
        head: tuple[str, str, float, float],
        attrs: dict[str, Any],
        kind: int,
        parent: bytes,
        resource: _Resource,
    ) -> dict[str, Any]:
        """One document; ``head`` is its id, trace id, start and end."""
        is_segment = kind == SERVER or not parent
        status_code = span.status.code
        http = make_http(attrs, kind)
        error, fault, throttle = status_flags(attrs, status_code)
        if status_code == STATUS_ERROR or span.events:
            cause, status_text = make_cause(
                span, kind, status_code, attrs, resource.facts.language, attribute_dict
            )
        else:
            cause, status_text = None, False
        aws = make_span_aws(attrs, resource.facts)
        name, namespace = _name(span, attrs, kind, resource)
        sql = make_sql(attrs, span.name) if "db.system" in attrs else None
        consumed = _consumed(http is not None, sql is not None, status_text)
        rest = {key: value for key, value in attrs.items() if key not in consumed}
        doc: dict[str, Any] = {
            "name": name,
            "id": head[0],
            "trace_id": head[1],
            "start_time": head[2],
            "end_time": head[3],
        }
        if parent:
            doc["parent_id"] = parent.hex()
        if not is_segment:
            doc["type"] = "subsegment"
        doc["fault"] = fault
        doc["error"] = error
        doc["throttle"] = throttle
        if cause is not None:
            doc["cause"] = cause
        if resource.facts.origin:
            doc["origin"] = resource.facts.origin
        if namespace:
            doc["namespace"] = namespace
        if http is not None:
            doc["http"] = http
        if aws is not None:
            doc["aws"] = aws
        if resource.facts.service is not None:
            doc["service"] = resource.facts.service
        if sql is not None:
            doc["sql"] = sql
        self._attributes(doc, attrs, rest, resource, is_segment)
        if span.links:
            doc["links"] = [
                {
                    "trace_id": xray_trace_id(link.trace_id),
                    "id": link.span_id.hex(),
                    "attributes": attribute_dict(link.attributes),
                }
                for link in span.links
                if len(link.trace_id) == 16 and len(link.span_id) == 8
            ]
        return doc

    def _attributes(
        self,
        doc: dict[str, Any],
        attrs: Mapping[str, Any],
        rest: dict[str, Any],
        resource: _Resource,
        is_segment: bool,
    ) -> None:
        """``user``, ``annotations`` and ``metadata`` from the unconsumed attributes."""
        indexed = resource.indexed
        for key in indexed:  # an indexed attribute a block consumed is annotated still
            if key not in rest and key in attrs:
                rest[key] = attrs[key]
        user = rest.pop("enduser.id", None)
        if user is not None:
            doc["user"] = user if isinstance(user, str) else str(user)
        extra = rest.pop("aws.xray.annotations", None)
        if isinstance(extra, list):
            indexed = indexed | {k for k in extra if isinstance(k, str)}
        elif extra is not None:
            rest["aws.xray.annotations"] = extra
        index_all = resource.index_all
        notes: dict[str, Any] = {}
        meta: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        if is_segment and resource.attrs:
            if indexed is resource.indexed:
                notes.update(resource.notes)
                meta.update(resource.meta)
            else:
                more_notes, more_meta = resource.split(indexed)
                notes.update(more_notes)
                meta.update(more_meta)
        for key, value in rest.items():
            if index_all or key in indexed:
                note = _annotation(value)
                if note is not None:
                    notes[_BAD_KEY_CHARS.sub("_", key)] = note
            elif key.startswith("aws.xray.metadata.") and isinstance(value, str):
                namespace = key[len("aws.xray.metadata.") :]
                try:
                    decoded = orjson.loads(value)
                except ValueError:
                    meta[key] = value
                    continue
                if not isinstance(decoded, dict):
                    meta[key] = value
                elif namespace.lower() == "default":
                    meta.update(decoded)
                else:
                    metadata[namespace] = decoded
            elif value is not None:
                meta[key] = value
        if meta:
            metadata["default"] = meta
        if notes:
            doc["annotations"] = notes
        if metadata:
            doc["metadata"] = metadata


_CONSUMED: dict[tuple[bool, bool, bool], frozenset[str]] = {}


def _consumed(http: bool, sql: bool, status_text: bool) -> frozenset[str]:
    """The attributes the blocks made consume (AWS call attributes always)."""
    keys = _CONSUMED.get((http, sql, status_text))
    if keys is None:
        keys = AWS_KEYS | (HTTP_KEYS if http else frozenset()) | (SQL_KEYS if sql else frozenset())
        if status_text:
            keys |= {"http.status_text"}
        _CONSUMED[(http, sql, status_text)] = keys
    return keys


def _trim_sdk_prefix(name: str, attrs: Mapping[str, Any]) -> str:
    if attrs.get("rpc.system") == "aws-api":
        if name.startswith("AWS.SDK."):
            return name[len("AWS.SDK.") :]
        if name.startswith("AWS::"):
            return name[len("AWS::") :]
    return name


def _name(span: Any, attrs: Mapping[str, Any], kind: int, resource: _Resource) -> tuple[str, str]:
    """The segment's name and namespace (the exporter's order of preference)."""
    if _NAME_KEYS.isdisjoint(attrs):  # most spans: named after the service or the span
        if kind == SERVER and resource.service_name:
            return _fit(resource.service_name), ""
        return _segment_name(span.name), "remote" if kind == CLIENT else ""
    get = attrs.get
    name: Any = None
    namespace = ""
    if kind == SERVER or (kind == INTERNAL and get("aws.span.kind") == "LOCAL_ROOT"):
        name = get("aws.local.service")
    if kind in _DEPENDENCY_KINDS:
        remote = get("aws.remote.service")
        if isinstance(remote, str):
            name = _trim_sdk_prefix(remote, attrs)
    if not name:
        name = get("peer.service")
    aws_sdk = get("rpc.system") == "aws-api"
    if aws_sdk:
        namespace = "aws"
    if not name:
        name = get("aws.service")
        if name:
            namespace = "aws"
    if not name:
        name = get("db.name")
        if name:
            name = str(name)
            connection = get("db.connection_string")
            if isinstance(connection, str):
                host = _host_of(connection.removeprefix("jdbc:"))
                if host:
                    name += "@" + host
    if not name and kind == SERVER:
        name = resource.service_name
    if not name:
        name = get("rpc.service") or get("http.host") or get("net.peer.name")
    if not name:
        return _segment_name(span.name), namespace or ("remote" if kind == CLIENT else "")
    if not namespace and kind == CLIENT:
        namespace = "remote"
    return _fit(name if isinstance(name, str) else str(name)), namespace


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""
