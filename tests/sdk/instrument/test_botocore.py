"""botocore/boto3 instrumentation against moto in server mode on loopback.

moto's WSGI app runs behind a small recorder, so each test checks the
``X-Amzn-Trace-Id`` header the real HTTP request carried when it reached the
"AWS" endpoint. Error shapes moto does not produce on demand (throttling, 5xx)
come from a stub endpoint on loopback that answers with a chosen status and body.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

from fluoroscope.model.trace_header import parse_trace_header
from fluoroscope.sdk import ConstantSampler, Tracer, lambda_handler
from fluoroscope.sdk.instrument import get_instrumentor
from fluoroscope.sdk.instrument.botocore import BotocoreInstrumentor, aws_fields, snake_case
from tests.sdk.conftest import UDPDaemon, flatten

REGION = "us-east-1"


class Moto:
    """moto's server on 127.0.0.1 behind a WSGI recorder of (target, trace header)."""

    def __init__(self) -> None:
        self.app = DomainDispatcherApplication(create_backend_app)
        self.received: list[tuple[str, str | None]] = []
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, self._record, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))
        self._thread.start()

    def _record(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        target = (
            environ.get("HTTP_X_AMZ_TARGET")
            or f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}"
        )
        self.received.append((target, environ.get("HTTP_X_AMZN_TRACE_ID")))
        result: Iterable[bytes] = self.app(environ, start_response)
        return result

    def headers_for(self, target: str) -> list[str | None]:
        return [header for got, header in self.received if got == target]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[Moto]:
    server = Moto()
    yield server
    server.close()


@pytest.fixture
def moto(moto_server: Moto) -> Moto:
    moto_server.received.clear()
    return moto_server


@pytest.fixture(autouse=True)
def _hermetic_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """No AWS config, credentials files or instance metadata from the machine."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def instrumented() -> Iterator[BotocoreInstrumentor]:
    inst = get_instrumentor("botocore")
    assert isinstance(inst, BotocoreInstrumentor)
    assert inst.instrument()
    yield inst
    inst.uninstrument()
    assert not inst.instrumented


def client(service: str, url: str, **config: Any) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return session.client(
        service,
        endpoint_url=url,
        config=Config(s3={"addressing_style": "path"}, **config),
    )


def calls(daemon: UDPDaemon) -> list[dict[str, Any]]:
    """The aws subsegments of the one segment sent."""
    (doc,) = daemon.documents(1)
    return [e for e in flatten([doc]).values() if e.get("namespace") == "aws"]


def header_parent(header: str | None, trace_id: str) -> str | None:
    parsed = parse_trace_header(header)
    assert parsed is not None, header
    assert parsed.root == trace_id
    assert parsed.sampled == "1"
    return parsed.parent


@pytest.mark.usefixtures("instrumented")
def test_dynamodb_calls_fields_header_and_conditional_failure(
    tracer: Tracer, daemon: UDPDaemon, moto: Moto
) -> None:
    ddb = client("dynamodb", moto.url)
    ddb.create_table(
        TableName="orders",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )  # outside any segment: logged once, not traced
    with tracer.segment("orders-api") as seg:
        ddb.put_item(TableName="orders", Item={"id": {"S": "1"}, "n": {"N": "5"}})
        item = ddb.get_item(TableName="orders", Key={"id": {"S": "1"}})["Item"]
        with pytest.raises(ClientError) as failed:
            ddb.put_item(
                TableName="orders",
                Item={"id": {"S": "1"}},
                ConditionExpression="attribute_not_exists(id)",
            )
        ddb.batch_get_item(RequestItems={"orders": {"Keys": [{"id": {"S": "1"}}]}})
    assert item["n"] == {"N": "5"}
    assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    tracer.flush()
    subs = calls(daemon)
    assert [s["aws"]["operation"] for s in subs] == [
        "PutItem",
        "GetItem",
        "PutItem",
        "BatchGetItem",
    ]
    put, get, conflict, batch = subs
    for sub in subs:
        assert sub["name"] == "DynamoDB"
        assert sub["aws"]["region"] == REGION
        assert sub["aws"]["request_id"]
        assert sub["aws"]["retries"] == 0
    assert put["aws"]["table_name"] == "orders"
    assert get["aws"]["table_name"] == "orders"
    assert put["http"]["response"]["status"] == 200
    assert isinstance(put["http"]["response"]["content_length"], int)
    assert not any(put.get(flag) for flag in ("error", "throttle", "fault"))
    assert batch["aws"]["table_names"] == ["orders"]
    assert "table_name" not in batch["aws"]
    assert conflict["http"]["response"]["status"] == 400
    assert conflict["error"] is True
    assert "fault" not in conflict
    assert "throttle" not in conflict
    (exc,) = conflict["cause"]["exceptions"][:1]
    assert exc["type"] == "ConditionalCheckFailedException"
    assert exc["remote"] is True
    parents = {
        op: [header_parent(h, seg.trace_id) for h in moto.headers_for(f"DynamoDB_20120810.{op}")]
        for op in ("PutItem", "GetItem", "BatchGetItem")
    }
    assert parents == {
        "PutItem": [put["id"], conflict["id"]],
        "GetItem": [get["id"]],
        "BatchGetItem": [batch["id"]],
    }
    assert moto.headers_for("DynamoDB_20120810.CreateTable") == [None]


@pytest.mark.usefixtures("instrumented")
def test_s3_sqs_sns_resource_fields(tracer: Tracer, daemon: UDPDaemon, moto: Moto) -> None:
    s3 = client("s3", moto.url)
    sqs = client("sqs", moto.url)
    sns = client("sns", moto.url)
    with tracer.segment("resources") as seg:
        s3.create_bucket(Bucket="reports")
        s3.put_object(Bucket="reports", Key="2026/11/a.txt", Body=b"abc")
        body = s3.get_object(Bucket="reports", Key="2026/11/a.txt")["Body"].read()
        queue_url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        message_id = sqs.send_message(QueueUrl=queue_url, MessageBody="hi")["MessageId"]
        sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1)
        topic_arn = sns.create_topic(Name="events")["TopicArn"]
        published = sns.publish(TopicArn=topic_arn, Message="m")["MessageId"]
    assert body == b"abc"
    tracer.flush()
    subs = {(s["name"], s["aws"]["operation"]): s for s in calls(daemon)}
    assert len(subs) == 8
    put = subs[("S3", "PutObject")]
    assert put["aws"]["bucket_name"] == "reports"
    assert put["aws"]["key"] == "2026/11/a.txt"
    assert put["aws"]["request_id"]
    get = subs[("S3", "GetObject")]
    assert get["http"]["response"] == {"status": 200, "content_length": 3}
    assert subs[("S3", "CreateBucket")]["aws"]["bucket_name"] == "reports"
    assert subs[("SQS", "CreateQueue")]["aws"]["queue_name"] == "jobs"
    assert subs[("SQS", "CreateQueue")]["aws"]["queue_url"] == queue_url
    send = subs[("SQS", "SendMessage")]
    assert send["aws"]["queue_url"] == queue_url
    assert send["aws"]["message_id"] == message_id
    assert subs[("SQS", "ReceiveMessage")]["aws"]["message_count"] == 1
    publish = subs[("SNS", "Publish")]
    assert publish["aws"]["topic_arn"] == topic_arn
    assert publish["aws"]["message_id"] == published
    for sub in subs.values():
        assert sub["aws"]["region"] == REGION
    put_headers = [h for target, h in moto.received if target == "PUT /reports/2026/11/a.txt"]
    assert [header_parent(h, seg.trace_id) for h in put_headers] == [put["id"]]
    assert all(h is not None for _, h in moto.received)


def test_clients_made_before_instrument_are_traced_and_uninstrument_reverses(
    tracer: Tracer, daemon: UDPDaemon, moto: Moto
) -> None:
    sqs = client("sqs", moto.url)  # created before instrument()
    inst = get_instrumentor("botocore")
    assert inst is not None
    try:
        assert inst.instrument()
        assert inst.instrument()  # twice: still one subsegment per call
        with tracer.segment("before"):
            sqs.list_queues()
        later = client("sqs", moto.url)
        with tracer.segment("after-instrument"):
            later.list_queues()
    finally:
        inst.uninstrument()
        inst.uninstrument()
    with tracer.segment("uninstrumented"):
        sqs.list_queues()
        client("sqs", moto.url).list_queues()
    tracer.flush()
    docs = {d["name"]: d for d in daemon.documents(3)}
    for name in ("before", "after-instrument"):
        (sub,) = docs[name]["subsegments"]
        assert (sub["name"], sub["aws"]["operation"]) == ("SQS", "ListQueues")
    assert "subsegments" not in docs["uninstrumented"]
    headers = [h for _, h in moto.received]
    assert len(headers) == 4
    assert headers[0] is not None
    assert headers[1] is not None
    assert headers[2:] == [None, None]


def test_unsampled_calls_send_sampled_0_and_emit_nothing(
    instrumented: BotocoreInstrumentor, daemon: UDPDaemon, moto: Moto
) -> None:
    tracer = Tracer(service="quiet", daemon_address=daemon.address, sampler=ConstantSampler(False))
    try:
        with tracer.segment() as seg:
            client("sqs", moto.url).list_queues()
        tracer.flush()
    finally:
        tracer.close()
    assert daemon.quiet(0.2) == []
    ((_, header),) = moto.received
    parsed = parse_trace_header(header)
    assert parsed is not None
    assert (parsed.root, parsed.sampled) == (seg.trace_id, "0")


class Stub:
    """A stand-in AWS endpoint on loopback: answers every request with ``reply``."""

    def __init__(self) -> None:
        self.reply: tuple[int, dict[str, Any]] = (200, {})
        self.received: list[tuple[str, str | None]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                stub.received.append((self.path, self.headers.get("X-Amzn-Trace-Id")))
                status, body = stub.reply
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.0")
                self.send_header("x-amzn-RequestId", "stub-request-id")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,))
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


@pytest.mark.usefixtures("instrumented")
@pytest.mark.parametrize(
    ("status", "code", "flags", "retries"),
    [
        (400, "ProvisionedThroughputExceededException", {"throttle", "error"}, 1),
        (400, "ThrottlingException", {"throttle", "error"}, 1),
        (429, "TooManyRequestsException", {"throttle", "error"}, 1),
        (400, "ValidationException", {"error"}, 0),
        (500, "InternalServerError", {"fault"}, 1),
    ],
)
def test_error_flags_retries_and_remote_cause(
    status: int,
    code: str,
    flags: set[str],
    retries: int,
    tracer: Tracer,
    daemon: UDPDaemon,
    stub: Stub,
) -> None:
    stub.reply = (status, {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": "no"})
    ddb = client("dynamodb", stub.url, retries={"mode": "legacy", "total_max_attempts": 2})
    with tracer.segment("errors") as seg, pytest.raises(ClientError):
        ddb.get_item(TableName="t", Key={"id": {"S": "1"}})
    tracer.flush()
    (sub,) = calls(daemon)
    assert {f for f in ("error", "throttle", "fault") if sub.get(f)} == flags
    assert sub["aws"]["retries"] == retries
    assert sub["aws"]["request_id"] == "stub-request-id"
    assert sub["aws"]["table_name"] == "t"
    assert sub["http"]["response"]["status"] == status
    (exc,) = sub["cause"]["exceptions"][:1]
    assert exc["remote"] is True
    assert exc["type"] in (code, "ClientError")  # unmodelled codes raise a plain ClientError
    assert code in exc["message"]
    assert len(stub.received) == retries + 1
    for _, header in stub.received:  # every attempt carries the header
        assert header_parent(header, seg.trace_id) == sub["id"]


@pytest.mark.usefixtures("instrumented", "all_http")
def test_xray_own_calls_are_never_traced(tracer: Tracer, daemon: UDPDaemon, stub: Stub) -> None:
    stub.reply = (200, {"SamplingRuleRecords": []})
    xray = client("xray", stub.url)
    with tracer.segment("sdk-io"):
        xray.get_sampling_rules()
        xray.put_trace_segments(TraceSegmentDocuments=["{}"])
    tracer.flush()
    (doc,) = daemon.documents(1)
    assert "subsegments" not in doc  # not by botocore, and not by urllib3 underneath
    assert [h for _, h in stub.received] == [None, None]


@pytest.mark.usefixtures("instrumented")
def test_connection_failure_is_a_fault_with_a_local_cause(
    tracer: Tracer, daemon: UDPDaemon, refused_url: str
) -> None:
    lam = client("lambda", refused_url, retries={"total_max_attempts": 1})
    with tracer.segment("down"), pytest.raises(EndpointConnectionError):
        lam.invoke(FunctionName="resize", InvocationType="Event", Payload=b"{}")
    tracer.flush()
    (sub,) = calls(daemon)
    assert sub["name"] == "Lambda"
    assert sub["fault"] is True
    assert sub["aws"]["operation"] == "Invoke"
    assert sub["aws"]["function_name"] == "resize"
    assert sub["aws"]["invocation_type"] == "Event"
    (exc,) = sub["cause"]["exceptions"][:1]
    assert exc["remote"] is False


def test_aws_fields_per_service() -> None:
    assert snake_case("StreamARN") == "stream_arn"
    assert snake_case("stateMachineArn") == "state_machine_arn"
    assert aws_fields("kinesis", "PutRecord", {"StreamName": "clicks"}, {"ShardId": "s-1"}) == {
        "stream_name": "clicks",
        "shard_id": "s-1",
    }
    transact = {
        "TransactItems": [
            {"Put": {"TableName": "b", "Item": {}}},
            {"Update": {"TableName": "a", "Key": {}}},
            {"ConditionCheck": {"TableName": "b"}},
        ]
    }
    assert aws_fields("dynamodb", "TransactWriteItems", transact, None) == {
        "table_names": ["a", "b"]
    }
    assert aws_fields("dynamodb", "ListTables", {}, {"TableNames": ["x", "y"]}) == {
        "table_count": 2
    }
    assert aws_fields("lambda", "Invoke", {"FunctionName": "f"}, {"StatusCode": 202}) == {
        "function_name": "f",
        "status_code": 202,
    }
    assert aws_fields("dynamodb", "GetItem", {"TableName": ["odd"]}, None) == {}
    assert aws_fields("unknown", "Op", {"Anything": "x"}, {"Else": 1}) == {}


@pytest.mark.usefixtures("instrumented", "all_http")
def test_inside_a_lambda_handler_calls_hang_off_the_invocation(
    monkeypatch: pytest.MonkeyPatch, daemon: UDPDaemon, moto: Moto
) -> None:
    root, parent = "1-5759e988-bd862e3fe1be46a994272793", "557abcec3ee5a047"
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "resize-fn")
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={root};Parent={parent};Sampled=1")
    tracer = Tracer(daemon_address=daemon.address, sampling=False)
    sqs = client("sqs", moto.url)

    @lambda_handler(tracer=tracer)
    def handler(event: dict[str, Any], context: Any) -> int:
        return len(sqs.list_queues().get("QueueUrls", []))

    try:
        handler({}, None)
    finally:
        tracer.close()
    docs = daemon.documents(1)
    entities = flatten(docs)
    (invocation,) = [e for e in entities.values() if e["name"] == "resize-fn"]
    (call,) = [e for e in entities.values() if e.get("namespace") == "aws"]
    assert (invocation["trace_id"], invocation["parent_id"]) == (root, parent)
    assert call["_parent"] == invocation["id"]
    ((_, header),) = moto.received
    assert header == f"Root={root};Parent={call['id']};Sampled=1"
