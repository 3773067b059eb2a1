"""OTLP spans -> segment documents, by the Collector's awsxray exporter rules; OTLP/JSON's
quirks; one bad span never costs the others."""

from __future__ import annotations

import os
import time
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from fluoroscope.ingest.otlp import TranslateOptions, Translation, Translator, documents_of
from fluoroscope.ingest.otlp.decode import parse_json_traces
from fluoroscope.model.documents import validate_document

NOW = time.time()
TRACE = bytes.fromhex("5b8efff798038103d269b633813fc60c")
XRAY_TRACE = "1-5b8efff7-98038103d269b633813fc60c"


def _set(attributes: Any, key: str, value: Any) -> None:
    kv = attributes.add()
    kv.key = key
    _fill(kv.value, value)


def _fill(target: Any, value: Any) -> None:
    if value is None:
        return  # an empty AnyValue
    if isinstance(value, bool):
        target.bool_value = value
    elif isinstance(value, int):
        target.int_value = value
    elif isinstance(value, float):
        target.double_value = value
    elif isinstance(value, bytes):
        target.bytes_value = value
    elif isinstance(value, list):
        target.array_value.SetInParent()
        for item in value:
            _fill(target.array_value.values.add(), item)
    elif isinstance(value, dict):
        target.kvlist_value.SetInParent()
        for key, item in value.items():
            _set(target.kvlist_value.values, key, item)
    else:
        target.string_value = value


def request(
    *spans: dict[str, Any], resource: dict[str, Any] | None = None
) -> ExportTraceServiceRequest:
    """A request of one resource holding ``spans`` (dicts of span fields)."""
    message = ExportTraceServiceRequest()
    rs = message.resource_spans.add()
    for key, value in (resource if resource is not None else {"service.name": "shop"}).items():
        _set(rs.resource.attributes, key, value)
    scope = rs.scope_spans.add()
    for fields in spans:
        span = scope.spans.add()
        span.trace_id = fields.get("trace_id", TRACE)
        span.span_id = fields.get("span_id", os.urandom(8))
        span.parent_span_id = fields.get("parent", b"")
        span.name = fields.get("name", "op")
        span.kind = fields.get("kind", 1)
        start = fields.get("start", int(NOW * 1e9))
        span.start_time_unix_nano = start
        span.end_time_unix_nano = fields.get("end", min(start + 5_000_000, 2**64 - 1))
        for key, value in fields.get("attrs", {}).items():
            _set(span.attributes, key, value)
        if "status" in fields:
            span.status.code, span.status.message = fields["status"]
        for name, attrs in fields.get("events", []):
            event = span.events.add()
            event.name = name
            event.time_unix_nano = start
            for key, value in attrs.items():
                _set(event.attributes, key, value)
        for link_trace, link_span in fields.get("links", []):
            link = span.links.add()
            link.trace_id, link.span_id = link_trace, link_span
    return message


def docs(message: Any, options: TranslateOptions | None = None) -> list[dict[str, Any]]:
    valid, _, out = documents_of(message, Translator(options), now=NOW, max_age=86_400.0)
    assert out.rejected == 0, out.message
    return [orjson.loads(raw) for _, raw in valid]


def one(options: TranslateOptions | None = None, **fields: Any) -> dict[str, Any]:
    resource = fields.pop("resource", None)
    (doc,) = docs(request(fields, resource=resource), options)
    return doc


def test_a_server_span_is_a_segment_named_after_the_service_with_http_from_new_conventions() -> (
    None
):
    doc = one(
        kind=2,
        parent=b"\x01" * 8,
        attrs={
            "http.request.method": "GET",
            "http.response.status_code": 503,
            "url.full": "https://shop/cart",
            "user_agent.original": "curl",
            "client.address": "10.0.0.9",
        },
        status=(2, ""),
    )
    assert doc["trace_id"] == XRAY_TRACE
    assert doc["name"] == "shop" and "type" not in doc and doc["parent_id"] == "01" * 8
    assert doc["http"] == {
        "request": {
            "method": "GET",
            "url": "https://shop/cart",
            "user_agent": "curl",
            "client_ip": "10.0.0.9",
            "x_forwarded_for": True,
        },
        "response": {"status": 503, "content_length": 0},
    }
    assert (doc["fault"], doc["error"], doc["throttle"]) == (True, False, False)
    assert doc["metadata"] == {"default": {"otel.resource.service.name": "shop"}}


def test_old_conventions_build_the_url_from_host_port_and_target() -> None:
    doc = one(
        kind=2,
        attrs={
            "http.method": "POST",
            "http.scheme": "http",
            "http.host": "api.local",
            "net.host.port": 8080,
            "http.target": "/orders?x=1",
            "http.status_code": 429,
        },
    )
    assert doc["http"]["request"]["url"] == "http://api.local:8080/orders?x=1"
    assert (doc["fault"], doc["error"], doc["throttle"]) == (False, True, True)


def test_children_are_subsegments_and_a_client_call_is_remote() -> None:
    doc = one(kind=3, parent=b"\x02" * 8, name="GET", attrs={"net.peer.name": "payments"})
    assert doc["type"] == "subsegment" and doc["parent_id"] == "02" * 8
    assert doc["name"] == "payments" and doc["namespace"] == "remote"
    # resource attributes go on segments only
    assert doc["metadata"] == {"default": {"net.peer.name": "payments"}}
    internal = one(kind=1, parent=b"\x02" * 8, name="render <page>!")
    assert internal["name"] == "render page" and "namespace" not in internal


def test_an_aws_sdk_call_names_the_service_and_its_table_for_the_inferred_node() -> None:
    doc = one(
        kind=3,
        parent=b"\x03" * 8,
        name="DynamoDB.PutItem",
        attrs={
            "rpc.system": "aws-api",
            "rpc.service": "DynamoDB",
            "rpc.method": "PutItem",
            "aws.region": "us-east-1",
            "aws.request_id": "R1",
            "aws.dynamodb.table_names": ["orders"],
        },
    )
    assert doc["name"] == "DynamoDB" and doc["namespace"] == "aws"
    aws = doc["aws"]
    assert (aws["operation"], aws["region"], aws["request_id"], aws["table_name"]) == (
        "PutItem",
        "us-east-1",
        "R1",
        "orders",
    )
    assert "rpc.method" not in doc["metadata"]["default"]


def test_sql_block_and_db_name_at_host() -> None:
    doc = one(
        kind=3,
        parent=b"\x04" * 8,
        name="SELECT shop",
        attrs={
            "db.system": "postgresql",
            "db.name": "shop",
            "db.connection_string": "jdbc:postgresql://db.internal:5432",
            "db.user": "app",
            "db.statement": "SELECT 1",
        },
    )
    assert doc["name"] == "shop@db.internal"
    assert doc["sql"] == {
        "url": "SELECT shop",
        "connection_string": "jdbc:postgresql://db.internal:5432/shop",
        "database_type": "postgresql",
        "user": "app",
        "sanitized_query": "SELECT 1",
    }


PY_STACK = """Traceback (most recent call last):
  File "/app/db.py", line 10, in query
    raise KeyError("x")
KeyError: 'x'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/handler.py", line 5, in handle
    query()
ValueError: wrapped
"""


def test_exception_events_become_causes_with_stacks_and_chains() -> None:
    doc = one(
        kind=2,
        resource={"service.name": "shop", "telemetry.sdk.language": "python"},
        status=(2, "failed"),
        events=[
            (
                "exception",
                {
                    "exception.type": "ValueError",
                    "exception.message": "wrapped",
                    "exception.stacktrace": PY_STACK,
                },
            )
        ],
    )
    first, second = doc["cause"]["exceptions"]
    assert (first["type"], first["message"], first["remote"]) == ("ValueError", "wrapped", False)
    assert first["stack"] == [{"path": "/app/handler.py", "line": 5, "label": "handle"}]
    assert first["cause"] == second["id"]
    assert (second["type"], second["message"]) == ("KeyError", "'x'")
    assert second["stack"] == [{"path": "/app/db.py", "line": 10, "label": "query"}]
    assert doc["fault"] is True


def test_an_error_status_without_events_is_a_cause_with_its_message() -> None:
    doc = one(kind=1, status=(2, "it broke"))
    assert [e["message"] for e in doc["cause"]["exceptions"]] == ["it broke"]
    assert one(kind=1).get("cause") is None


def test_annotations_come_from_indexed_attributes_and_aws_xray_annotations() -> None:
    attrs = {"tenant": "acme", "size": 3, "tags": ["a"], "aws.xray.annotations": ["size"]}
    doc = one(TranslateOptions(indexed=frozenset({"tenant", "tags"})), kind=2, attrs=attrs)
    assert doc["annotations"] == {"tenant": "acme", "size": 3}
    assert "tags" not in doc["metadata"]["default"]  # an indexed list is dropped, as X-Ray does
    everything = one(
        TranslateOptions(index_all=True), kind=2, attrs={"a.b": True, "x-y": 1.5, "m": {"k": 1}}
    )
    assert everything["annotations"] == {
        "a.b": True,
        "x_y": 1.5,
        "otel.resource.service.name": "shop",
    }


def test_metadata_keeps_every_attribute_type_and_namespaced_metadata() -> None:
    attrs = {
        "nested": {"map": {"deep": [1, 2.5, True, "s"]}},
        "raw": b"\x00\x01",
        "aws.xray.metadata.billing": '{"plan": "pro"}',
        "aws.xray.metadata.bad": "{not json",
        "enduser.id": "alice",
    }
    doc = one(kind=2, attrs=attrs)
    assert doc["user"] == "alice"
    assert doc["metadata"]["billing"] == {"plan": "pro"}
    default = doc["metadata"]["default"]
    assert default["nested"] == {"map": {"deep": [1, 2.5, True, "s"]}}
    assert default["raw"] == "AAE=" and default["aws.xray.metadata.bad"] == "{not json"


def test_resource_origin_aws_blocks_and_log_groups() -> None:
    doc = one(
        kind=2,
        resource={
            "service.name": "shop",
            "cloud.provider": "aws",
            "cloud.platform": "aws_ecs",
            "aws.ecs.launchtype": "fargate",
            "container.name": "web",
            "service.version": "1.2",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.language": "python",
            "aws.log.group.arns": "arn:aws:logs:us-east-1:1:log-group:/ecs/shop:*",
        },
    )
    assert doc["origin"] == "AWS::ECS::Fargate"
    assert doc["aws"]["ecs"] == {"container": "web", "launch_type": "fargate"}
    assert doc["aws"]["xray"]["sdk"] == "opentelemetry for python"
    assert doc["aws"]["cloudwatch_logs"] == [
        {"log_group": "/ecs/shop", "arn": "arn:aws:logs:us-east-1:1:log-group:/ecs/shop:*"}
    ]
    assert doc["service"] == {"version": "1.2"}
    names = one(kind=2, resource={"service.name": "f", "aws.log.group.names": "/a&/b"})
    assert names["aws"]["cloudwatch_logs"] == [{"log_group": "/a"}, {"log_group": "/b"}]
    gcp = one(kind=2, resource={"service.name": "g", "cloud.provider": "gcp"})
    assert "aws" not in gcp and "origin" not in gcp


def test_links_and_w3c_ids_whose_prefix_is_no_time() -> None:
    other = bytes.fromhex("00000001" + "ab" * 12)
    doc = one(kind=2, trace_id=b"\xff" * 16, links=[(other, b"\x05" * 8)])
    assert doc["trace_id"] == "1-ffffffff-" + "ff" * 12
    assert doc["links"] == [
        {"trace_id": "1-00000001-" + "ab" * 12, "id": "05" * 8, "attributes": {}}
    ]


def test_a_local_root_client_span_makes_a_service_segment_and_its_dependency() -> None:
    dependency, service = docs(
        request(
            {
                "kind": 3,
                "parent": b"\x06" * 8,
                "attrs": {
                    "aws.span.kind": "LOCAL_ROOT",
                    "aws.local.service": "worker",
                    "aws.remote.service": "AWS::DynamoDB",
                    "rpc.system": "aws-api",
                    "rpc.method": "GetItem",
                    "http.request.method": "POST",
                },
            }
        )
    )
    assert dependency["type"] == "subsegment" and dependency["name"] == "DynamoDB"
    assert dependency["parent_id"] == service["id"] and service["parent_id"] == "06" * 8
    assert service["name"] == "worker" and "type" not in service and "http" not in service
    assert "operation" not in service["aws"]


def test_bad_spans_are_rejected_alone_with_reasons() -> None:
    good = {"kind": 2}
    bad: list[dict[str, Any]] = [
        {"trace_id": b""},
        {"trace_id": bytes(16)},
        {"span_id": bytes(8)},
        {"span_id": b"\x01\x02"},
        {"start": int(NOW * 1e9), "end": int(NOW * 1e9) - 1},
        {"start": 0},
        {"start": int((NOW - 10 * 86_400) * 1e9)},  # older than the retention given
        {"start": int((NOW + 2 * 86_400) * 1e9)},  # further ahead than clock skew
    ]
    deep: Any = "bottom"
    for _ in range(130):
        deep = {"k": deep}
    bad += [{"attrs": {"deep": deep}}, {"attrs": {"big": "x" * 70_000}}]
    message = request(good, *bad, good)
    valid, _, out = documents_of(message, Translator(), now=NOW, max_age=86_400.0)
    assert len(valid) == 2 and out.rejected == len(bad)
    assert "rejected" in out.message and "trace_id" in out.message
    _, _, late = documents_of(request(*bad[-4:]), Translator(), now=NOW, max_age=86_400.0)
    old, ahead, nested, large = (reason.split(": ", 1)[1] for reason in late.errors)
    assert old == "'start_time' is older than the retention period"
    assert ahead.endswith(" s in the future (clock skew?)")
    assert nested == "JSON nested deeper than 128 levels"
    assert large.startswith("its document is ") and large.endswith("the limit is 65536")


def test_otlp_json_quirks_hex_ids_any_case_string_ints_enum_names_snake_case() -> None:
    start = int(NOW * 1e9)
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "s"}}]
                },
                "scope_spans": [
                    {
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "name": "a",
                                "kind": "SPAN_KIND_SERVER",
                                "startTimeUnixNano": str(start),
                                "endTimeUnixNano": start + 1000,
                                "attributes": [{"key": "n", "value": {"intValue": "7"}}],
                            },
                            {
                                "trace_id": "5b8efff798038103d269b633813fc60c",
                                "span_id": "eee19b7ec3c1b175",
                                "parent_span_id": "eee19b7ec3c1b174",
                                "name": "b",
                                "kind": 3,
                                "start_time_unix_nano": start,
                                "end_time_unix_nano": str(start + 10),
                                "unknownField": {"ignored": True},
                            },
                            {"traceId": "not hex", "spanId": "eee19b7ec3c1b176", "name": "c"},
                            {"traceId": "5b8efff798038103d269b633813fc60c", "kind": "BOGUS"},
                        ]
                    }
                ],
            }
        ]
    }
    out = Translation()
    message = parse_json_traces(orjson.dumps(body), out)
    valid, _, out = documents_of(message, Translator(), now=NOW, max_age=None, into=out)
    first, second = (orjson.loads(raw) for _, raw in valid)
    assert first["trace_id"] == XRAY_TRACE and first["id"] == "eee19b7ec3c1b174"
    assert "type" not in first and first["metadata"]["default"]["n"] == 7
    assert second["type"] == "subsegment" and second["parent_id"] == "eee19b7ec3c1b174"
    assert out.rejected == 2


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text()
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
_spans = st.fixed_dictionaries(
    {},
    optional={
        "trace_id": st.binary(max_size=17),
        "span_id": st.binary(max_size=9),
        "parent": st.binary(max_size=9),
        "kind": st.integers(0, 7),
        "name": st.text(max_size=300),
        "start": st.integers(0, 2**64 - 1),
        "end": st.integers(0, 2**64 - 1),
        "attrs": st.dictionaries(st.text(max_size=20), _values, max_size=5),
        "status": st.tuples(st.integers(0, 2), st.text(max_size=20)),
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_spans, max_size=6), st.lists(_spans, max_size=3))
def test_any_spans_mixed_with_good_ones_never_cost_the_good_ones(
    bad: list[dict[str, Any]], more: list[dict[str, Any]]
) -> None:
    good = [{"kind": 2, "span_id": bytes([i + 1]) * 8, "name": f"g{i}"} for i in range(3)]
    message = request(*bad, good[0], *more, good[1], good[2])
    valid, _, out = documents_of(message, Translator(), now=NOW, max_age=86_400.0)
    ids = {orjson.loads(raw)["id"] for _, raw in valid}
    assert {bytes([i + 1]).hex() * 8 for i in range(3)} <= ids
    for _, raw in valid:  # every document is storable
        validate_document(orjson.loads(raw), now=NOW, max_age=86_400.0, raw=raw)
    assert len(valid) + out.rejected >= len(bad) + len(more) + 3


def _comparable(out: Translation) -> tuple[list[bytes], int, list[str]]:
    """A translation's documents as JSON, with the random ids of causes left out."""
    texts = []
    for doc in out.documents:
        for exception in doc.get("cause", {}).get("exceptions", []):
            exception["id"] = exception.pop("cause", None) and "chained"
        texts.append(orjson.dumps(doc))
    return texts, out.rejected, out.errors


def _scribble(value: Any) -> None:
    """Change every list and map inside ``value`` (a caller's own documents may be)."""
    if isinstance(value, list):
        for item in value:
            _scribble(item)
        value.append("scribbled")
    elif isinstance(value, dict):
        for item in value.values():
            _scribble(item)
        value["scribbled"] = True


_SHARED = Translator()  # attributes it remembers outlive each example


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_spans, min_size=1, max_size=4),
    st.dictionaries(st.text(max_size=20), _values, max_size=4),
)
def test_attributes_read_from_the_wire_bytes_make_the_same_documents(
    spans: list[dict[str, Any]], resource: dict[str, Any]
) -> None:
    # Each span twice: the second reads the attributes the first left remembered.
    message = request(*spans, *spans, resource=resource)
    data = message.SerializeToString()
    expected = _comparable(Translator().translate(message))
    first = _SHARED.translate(message, data=data)
    assert _comparable(first) == expected
    for doc in first.documents:  # nothing a document holds is shared with the next
        _scribble(doc)
    assert _comparable(_SHARED.translate(message, data=data)) == expected


def test_wire_attributes_keep_the_last_of_a_repeated_key_and_unset_values() -> None:
    message = request({"kind": 2, "attrs": {"a": "first", "unset": None, "n": 1}})
    span = message.resource_spans[0].scope_spans[0].spans[0]
    _set(span.attributes, "a", "last")
    _set(span.attributes, "n", [1, {"deep": b"\x00"}])
    data = message.SerializeToString()
    for translator in (Translator(), _SHARED):
        (doc,) = translator.translate(message, data=data).documents
        meta = doc["metadata"]["default"]
        assert meta["a"] == "last" and meta["n"] == [1, {"deep": "AA=="}] and "unset" not in meta
        assert list(meta) == list(
            Translator().translate(message).documents[0]["metadata"]["default"]
        )
