"""OpenTelemetry in, through real clients: the OTel SDK's OTLP/HTTP and OTLP/gRPC
exporters (random and X-Ray ids), botocore and requests auto-instrumentation, AWS's
UDP exporter, Zipkin v2, read back through boto3's ``xray`` client. Clients run in
subprocesses: OpenTelemetry's instrumentation patches libraries process-wide."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support import HEADER, ServerProcess, free_port, get_documents, start_server, wait_for


@pytest.fixture(scope="module")
def otlp_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServerProcess, int, int]]:
    """A server with OTLP/HTTP and OTLP/gRPC on free ports, ``tenant`` indexed."""
    http, grpc = free_port(), free_port()
    server = start_server(
        tmp_path_factory.mktemp("otlp"),
        "--otlp-http-listen", f"127.0.0.1:{http}",
        "--otlp-grpc-listen", f"127.0.0.1:{grpc}",
        "--otlp-indexed-attribute", "tenant",
    )  # fmt: skip
    yield server, http, grpc
    server.stop()


def run_client(script: str, **values: Any) -> Any:
    """Run ``script`` (given ``VALUES``) in a fresh interpreter; its last stdout line
    is JSON, returned."""
    code = f"VALUES = {json.dumps(values)!r}\nimport json\nVALUES = json.loads(VALUES)\n"
    done = subprocess.run(
        [sys.executable, "-c", code + textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OTEL_SDK_DISABLED": "false"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def xray_id(hex32: str) -> str:
    return f"1-{hex32[:8]}-{hex32[8:]}"


SDK_CLIENT = """
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

def exporter():
    if VALUES["grpc"]:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(endpoint=VALUES["endpoint"], insecure=True)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=VALUES["endpoint"], compression=Compression.Gzip)

ids = []
for xray in (False, True):
    kwargs = {}
    if xray:
        from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
        kwargs["id_generator"] = AwsXRayIdGenerator()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}), **kwargs)
    provider.add_span_processor(SimpleSpanProcessor(exporter()))
    tracer = provider.get_tracer("tests")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER) as root:
        root.set_attribute("http.request.method", "GET")
        root.set_attribute("http.response.status_code", 500)
        root.set_attribute("tenant", VALUES["tenant"])
        with tracer.start_as_current_span("load cart") as child:
            try:
                raise KeyError("cart-42")
            except KeyError as exc:
                child.record_exception(exc)
                child.set_status(Status(StatusCode.ERROR))
        ids.append(format(root.get_span_context().trace_id, "032x"))
    provider.shutdown()
print(json.dumps(ids))
"""


def _check_sdk_traces(server: ServerProcess, ids: list[str], tenant: str) -> None:
    client = server.xray()
    assert int(ids[1][:8], 16) > time.time() - 3600  # the X-Ray generator's epoch
    for hex32 in ids:
        # found in either form, and the same trace
        docs = wait_for(lambda h=hex32: get_documents(client, h))  # type: ignore[misc]
        assert docs == get_documents(client, xray_id(hex32))
        (root,) = [d for d in docs if "parent_id" not in d]
        assert root["name"] == "checkout" and root["fault"] is True
        assert root["annotations"] == {"tenant": tenant}
        (child,) = root["subsegments"]
        (cause,) = child["cause"]["exceptions"]
        assert cause["type"] == "KeyError" and cause["stack"][0]["label"] == "<module>"
    # the time range finds both by their start; a filter on the annotation finds them
    now = time.time()
    found = client.get_trace_summaries(
        StartTime=now - 600, EndTime=now + 60, FilterExpression=f'annotation.tenant = "{tenant}"'
    )["TraceSummaries"]
    assert {s["Id"] for s in found} == {xray_id(h) for h in ids}


def test_the_sdks_http_exporter_with_random_and_xray_ids(
    otlp_server: tuple[ServerProcess, int, int],
) -> None:
    server, http, _ = otlp_server
    ids = run_client(
        SDK_CLIENT, grpc=False, endpoint=f"http://127.0.0.1:{http}/v1/traces", tenant="acme"
    )
    _check_sdk_traces(server, ids, "acme")


def test_the_sdks_grpc_exporter_with_random_and_xray_ids(
    otlp_server: tuple[ServerProcess, int, int],
) -> None:
    server, _, grpc = otlp_server
    ids = run_client(SDK_CLIENT, grpc=True, endpoint=f"http://127.0.0.1:{grpc}", tenant="globex")
    _check_sdk_traces(server, ids, "globex")


def test_the_main_port_serves_otlp_too(otlp_server: tuple[ServerProcess, int, int]) -> None:
    server, _, _ = otlp_server
    ids = run_client(SDK_CLIENT, grpc=False, endpoint=f"{server.url}/v1/traces", tenant="initech")
    _check_sdk_traces(server, ids, "initech")


INSTRUMENTED = """
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import boto3, requests
from moto.server import ThreadedMotoServer
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

class Inventory(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *args):
        pass

web = ThreadingHTTPServer(("127.0.0.1", 0), Inventory)
threading.Thread(target=web.serve_forever, daemon=True).start()
moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
moto.start()
aws = f"http://127.0.0.1:{moto._server.server_port}"
provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=VALUES["endpoint"])))
BotocoreInstrumentor().instrument(tracer_provider=provider)
RequestsInstrumentor().instrument(tracer_provider=provider)
dynamodb = boto3.client("dynamodb", endpoint_url=aws, region_name="us-east-1",
                        aws_access_key_id="x", aws_secret_access_key="x")
dynamodb.create_table(TableName="orders", BillingMode="PAY_PER_REQUEST",
    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
tracer = provider.get_tracer("tests")
with tracer.start_as_current_span("POST /orders", kind=SpanKind.SERVER) as root:
    dynamodb.put_item(TableName="orders", Item={"id": {"S": "o-1"}})
    requests.get(f"http://127.0.0.1:{web.server_port}/stock", timeout=5)
    trace_id = format(root.get_span_context().trace_id, "032x")
provider.shutdown()
moto.stop(); web.shutdown()
print(json.dumps(trace_id))
"""


def test_botocore_and_requests_instrumentation_show_an_inferred_dynamodb_node(
    otlp_server: tuple[ServerProcess, int, int],
) -> None:
    server, http, _ = otlp_server
    trace_id = run_client(INSTRUMENTED, endpoint=f"http://127.0.0.1:{http}/v1/traces")
    client = server.xray()

    def calls() -> list[dict[str, Any]] | None:
        docs = get_documents(client, trace_id)
        subs = [s for d in docs or [] for s in d.get("subsegments", [])]
        return subs if len(subs) >= 2 else None

    subsegments = wait_for(calls)
    dynamo = next(s for s in subsegments if s["name"] == "DynamoDB")
    assert dynamo["namespace"] == "aws" and dynamo["aws"]["table_name"] == "orders"
    assert dynamo["aws"]["operation"] == "PutItem"
    (http_call,) = [s for s in subsegments if s["name"] != "DynamoDB"]
    assert http_call["namespace"] == "remote" and http_call["http"]["response"]["status"] == 200
    assert http_call["http"]["request"]["url"].endswith("/stock")

    def edges() -> set[tuple[str, str]] | None:
        now = time.time()
        graph = client.get_trace_graph(TraceIds=[xray_id(trace_id)])["Services"]
        by_ref = {s["ReferenceId"]: (s["Name"], s.get("Type", "")) for s in graph}
        found = {
            (by_ref[s["ReferenceId"]][0], by_ref[e["ReferenceId"]][1])
            for s in graph
            for e in s.get("Edges", [])
        }
        del now
        return found if ("orders", "AWS::DynamoDB::Table") in found else None

    assert ("orders", "AWS::DynamoDB::Table") in wait_for(edges)
    now = time.time()
    services = client.get_service_graph(StartTime=now - 600, EndTime=now + 60)["Services"]
    assert ("orders", "AWS::DynamoDB::Table") in {(s["Name"], s.get("Type")) for s in services}


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _span(trace: str, span: str, **extra: Any) -> dict[str, Any]:
    now = time.time_ns()
    return {
        "traceId": trace, "spanId": span, "name": "op", "kind": 2,
        "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1_000_000), **extra,
    }  # fmt: skip


def _body(*spans: dict[str, Any]) -> bytes:
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": list(spans)}]}]}).encode()


PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def test_partial_success_and_the_specs_answers_to_bad_input(
    otlp_server: tuple[ServerProcess, int, int],
) -> None:
    server, http, _ = otlp_server
    url = f"http://127.0.0.1:{http}/v1/traces"
    trace = os.urandom(16).hex().upper()
    good = _span(trace, "00000000000000A1")
    bad = [
        _span("", "00000000000000a2"),
        _span(trace, "0000000000000000"),
        _span(trace, "00000000000000a3", endTimeUnixNano="1"),
        {"traceId": trace, "spanId": "zz"},
    ]
    status, headers, body = _post(url, _body(bad[0], good, *bad[1:]), JSON)
    assert status == 200 and headers["content-type"] == "application/json"
    partial = json.loads(body)["partialSuccess"]
    assert int(partial["rejectedSpans"]) == 4 and "rejected" in partial["errorMessage"]
    assert (
        wait_for(lambda: get_documents(server.xray(), trace.lower()))[0]["id"]
        == good["spanId"].lower()
    )

    # protobuf, gzip: partial success in an ExportTraceServiceResponse
    message = ExportTraceServiceRequest()
    spans = message.resource_spans.add().scope_spans.add().spans
    ok = spans.add(trace_id=os.urandom(16), span_id=os.urandom(8), name="ok", kind=2)
    ok.start_time_unix_nano = time.time_ns()
    ok.end_time_unix_nano = ok.start_time_unix_nano + 1000
    spans.add(trace_id=os.urandom(16), span_id=b"", name="no id")
    status, headers, body = _post(
        url, gzip.compress(message.SerializeToString()), {**PROTOBUF, "Content-Encoding": "gzip"}
    )
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    answer = ExportTraceServiceResponse.FromString(body)
    assert answer.partial_success.rejected_spans == 1
    assert get_documents(server.xray(), ok.trace_id.hex())  # stored before the answer

    empty = _post(url, b"", PROTOBUF)
    assert empty[0] == 200 and empty[2] == b""
    for payload, headers_, expected in [
        (b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF, 400),  # truncated protobuf
        (b"garbage that is no protobuf \xff", PROTOBUF, 400),
        (b'["not", "otlp"]', JSON, 400),
        (b"{not json", JSON, 400),
        (b"\x1f\x8b not gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, 400),
        (b"x", {**PROTOBUF, "Content-Encoding": "br"}, 400),
        (b"{}", {"Content-Type": "text/plain"}, 415),
    ]:
        status, headers, body = _post(url, payload, headers_)
        assert status == expected, (payload, status, body)
        assert "retry-after" not in {k.lower() for k in headers}  # not retryable
    huge = _post(url, b"", {**PROTOBUF, "Content-Length": str(65 * 1024 * 1024)})
    assert huge[0] == 413
    bomb = gzip.compress(b"\x00" * (65 * 1024 * 1024))
    assert _post(url, bomb, {**PROTOBUF, "Content-Encoding": "gzip"})[0] == 413


def test_ten_thousand_spans_in_one_request_are_all_stored(
    otlp_server: tuple[ServerProcess, int, int],
) -> None:
    server, http, _ = otlp_server
    before = server.counter("stored_documents")
    message = ExportTraceServiceRequest()
    spans = message.resource_spans.add().scope_spans.add().spans
    now = time.time_ns()
    traces = [os.urandom(16) for _ in range(100)]
    for n in range(10_000):
        span = spans.add(trace_id=traces[n % 100], span_id=os.urandom(8), name=f"s{n}", kind=1)
        span.start_time_unix_nano, span.end_time_unix_nano = now, now + 1000
    status, _, body = _post(
        f"http://127.0.0.1:{http}/v1/traces", message.SerializeToString(), PROTOBUF
    )
    assert status == 200 and body == b""
    assert server.counter("stored_documents") - before >= 10_000
    assert len(get_documents(server.xray(), traces[7].hex()) or []) == 100


def _encoded(trace_id: bytes, name: str) -> bytes:
    """An ExportTraceServiceRequest of one root span, as the OTel SDK's encoder makes it."""
    message = ExportTraceServiceRequest()
    span = message.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name, span.kind = trace_id, os.urandom(8), name, 2
    span.start_time_unix_nano = time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + 1000
    return bytes(message.SerializeToString())


UDP_CLIENT = """
from amazon.opentelemetry.distro.otlp_udp_exporter import OTLPUdpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
provider = TracerProvider(resource=Resource.create({"service.name": "lambda-fn"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPUdpSpanExporter(endpoint=VALUES["endpoint"])))
with provider.get_tracer("t").start_as_current_span("handler", kind=SpanKind.SERVER) as span:
    trace_id = format(span.get_span_context().trace_id, "032x")
provider.shutdown()
print(json.dumps(trace_id))
"""


def test_aws_udp_datagrams_and_t1s_documents_in_put_trace_segments(
    otlp_server: tuple[ServerProcess, int, int],
) -> None:
    server, _, _ = otlp_server
    client = server.xray()
    pytest.importorskip("amazon.opentelemetry.distro.otlp_udp_exporter")
    trace_id = run_client(UDP_CLIENT, endpoint=f"127.0.0.1:{server.port}")
    assert wait_for(lambda: get_documents(client, trace_id))[0]["name"] == "lambda-fn"

    # bad datagrams are counted and dropped; the good ones beside them are stored
    sampled = os.urandom(16)
    unsampled = os.urandom(16)
    server.send_udp(
        HEADER + b"T1X" + base64.b64encode(_encoded(os.urandom(16), "x")),
        HEADER + b"T1S%%% not base64 %%%",
        HEADER + b"T1S" + base64.b64encode(b"\xff\xff not protobuf"),
        HEADER + b"T1U" + base64.b64encode(_encoded(unsampled, "u")),
        HEADER + b"T1S" + base64.b64encode(_encoded(sampled, "s")),
    )
    assert wait_for(lambda: get_documents(client, sampled.hex()))[0]["name"] == "s"
    for name in ("unknown_prefix", "base64", "protobuf"):
        assert wait_for(lambda n=name: server.counter(f"udp_invalid_otlp_{n}") >= 1)  # type: ignore[misc]
    assert wait_for(lambda: server.counter("udp_otlp_unsampled") >= 1)
    assert get_documents(client, unsampled.hex()) is None

    # the CloudWatch agent's transit mode: T1S documents inside PutTraceSegments
    transit = os.urandom(16)
    answer = client.put_trace_segments(
        TraceSegmentDocuments=[
            "T1S" + base64.b64encode(_encoded(transit, "agent")).decode(),
            "T1Snot-base64!",
        ]
    )
    assert [u["ErrorCode"] for u in answer["UnprocessedTraceSegments"]] == ["InvalidDocument"]
    assert get_documents(client, transit.hex())[0]["name"] == "agent"  # type: ignore[index]


def test_zipkin_v2_spans(otlp_server: tuple[ServerProcess, int, int]) -> None:
    server, http, _ = otlp_server
    trace = os.urandom(8).hex()  # a 64-bit Zipkin trace id
    now = int(time.time() * 1_000_000)
    spans = [
        {"traceId": trace, "id": "a" * 16, "name": "get /api", "kind": "SERVER",
         "timestamp": now, "duration": 2000, "localEndpoint": {"serviceName": "frontend"},
         "tags": {"http.method": "GET", "http.status_code": "502", "error": "upstream"}},
        {"traceId": trace, "id": "b" * 16, "parentId": "a" * 16, "name": "get", "kind": "CLIENT",
         "timestamp": now + 10, "duration": 1000, "localEndpoint": {"serviceName": "frontend"},
         "remoteEndpoint": {"serviceName": "backend", "ipv4": "10.0.0.2", "port": 9000}},
        {"traceId": "nothex", "id": "c" * 16, "timestamp": now},
    ]  # fmt: skip
    status, _, body = _post(f"{server.url}/api/v2/spans", json.dumps(spans).encode(), JSON)
    assert status == 202 and json.loads(body)["rejected"] == 1
    docs = wait_for(lambda: get_documents(server.xray(), trace.rjust(32, "0")))
    (root,) = [d for d in docs if d["id"] == "a" * 16]  # beside it: backend, inferred
    assert root["name"] == "frontend" and root["fault"] is True
    assert root["http"]["response"]["status"] == 502
    (call,) = root["subsegments"]
    assert call["name"] == "backend" and call["namespace"] == "remote"
    assert _post(f"http://127.0.0.1:{http}/api/v2/spans", b"{}", JSON)[0] == 400


def test_ports_taken_default_is_skipped_explicit_is_an_error(tmp_path: Any) -> None:
    taken = free_port()
    holder = __import__("socket").socket()
    holder.bind(("127.0.0.1", taken))
    holder.listen()
    try:
        env = {**os.environ, "FLUOROSCOPE_OTLP_GRPC_LISTEN": "off"}
        env.pop("FLUOROSCOPE_OTLP_HTTP_LISTEN", None)
        failed = subprocess.run(
            [sys.executable, "-m", "fluoroscope", "server", "--listen",
             f"127.0.0.1:{free_port()}", "--data-dir", str(tmp_path / "a"),
             "--otlp-http-listen", f"127.0.0.1:{taken}"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert failed.returncode != 0
        assert f"127.0.0.1:{taken} (OTLP/HTTP)" in failed.stderr + failed.stdout
    finally:
        holder.close()


def test_a_taken_default_port_is_reported_and_access_control_applies(tmp_path: Any) -> None:
    holder = __import__("socket").socket()
    try:
        holder.bind(("127.0.0.1", 4318))
        holder.listen()
    except OSError:
        pass  # taken already, by another server or a Collector: just as good
    key = "otlp-test-api-key-0123456789"
    grpc_port = free_port()
    try:
        server = start_server(
            tmp_path,
            "--api-key",
            key,
            "--otlp-grpc-listen",
            f"127.0.0.1:{grpc_port}",
            api_key=key,
            env_changes={"FLUOROSCOPE_OTLP_HTTP_LISTEN": None},
        )
    finally:
        holder.close()
    try:
        body = _body(_span(os.urandom(16).hex(), os.urandom(8).hex()))
        assert _post(f"{server.url}/v1/traces", body, JSON)[0] == 403
        assert _post(f"{server.url}/api/v2/spans", b"[]", JSON)[0] == 403
        status, _, answer = _post(
            f"{server.url}/v1/traces", body, {**JSON, "Authorization": f"Bearer {key}"}
        )
        assert (status, json.loads(answer)) == (200, {})
        _grpc_auth(grpc_port, key)
    finally:
        output = server.stop()
    (line,) = [line for line in output.splitlines() if "127.0.0.1:4318" in line]
    assert "in use" in line and "main port" in line


def _grpc_auth(port: int, key: str) -> None:
    """OTLP/gRPC asks for the API key when credentials are configured."""
    import grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=ExportTraceServiceRequest.SerializeToString,
            response_deserializer=ExportTraceServiceResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as refused:
            export(ExportTraceServiceRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        answer = export(
            ExportTraceServiceRequest(), timeout=10, metadata=[("authorization", f"Bearer {key}")]
        )
        assert not answer.HasField("partial_success")
