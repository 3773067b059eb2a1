"""LogsHandler against the real server, read back with boto3's ``logs`` client.

A traced Flask app logs through the handler while our SDK sends its segments over UDP;
each request's lines are then found by trace id (Logs Insights' ``@xrayTraceId``, and
FilterLogEvents with the id as a quoted term and as a JSON field) and every line's entity id is checked against
the segments the server stored for that trace. Then: batches past PutLogEvents' count
and size limits arrive whole, events the server refuses are counted by reason, a group
deleted meanwhile is created again, and a server that wants a token gets it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from flask import Flask

import fluoroscope.sdk
from fluoroscope.model.ids import new_trace_id
from fluoroscope.sdk import LogsHandler, Tracer, UDPEmitter, lambda_handler
from fluoroscope.sdk.middleware.flask import trace_flask
from tests.sdk.middleware.conftest import serve_wsgi
from tests.support import ServerProcess, get_documents, start_server, wait_for

pytestmark = pytest.mark.slow

TOKEN = "logs-handler-test-token"


def logs_client(server: ServerProcess) -> Any:
    return boto3.client(
        "logs",
        endpoint_url=server.url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def filter_all(client: Any, group: str, **params: Any) -> list[dict[str, Any]]:
    pages = client.get_paginator("filter_log_events").paginate(logGroupName=group, **params)
    return [event for page in pages for event in page["events"]]


def insights(client: Any, group: str, query: str) -> list[dict[str, str]]:
    """Rows of a Logs Insights query over the last ten minutes of ``group``, as dicts."""
    end = int(time.time()) + 5
    query_id = client.start_query(
        logGroupName=group, startTime=end - 600, endTime=end, queryString=query
    )["queryId"]

    def results() -> list[Any] | None:
        reply = client.get_query_results(queryId=query_id)
        assert reply["status"] in ("Scheduled", "Running", "Complete"), reply["status"]
        return reply["results"] if reply["status"] == "Complete" else None

    rows = wait_for(results, timeout=60)
    return [{cell["field"]: cell["value"] for cell in row} for row in rows]


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    log = logging.getLogger(f"tests.logs.server.{name}")
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


def _entity_ids(documents: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    stack = list(documents)
    while stack:
        doc = stack.pop()
        found.add(doc["id"])
        stack.extend(doc.get("subsegments") or [])
    return found


@pytest.fixture
def flask_app(server: ServerProcess) -> Iterator[tuple[str, Tracer, LogsHandler]]:
    tracer = Tracer(
        service="orders-web", emitter=UDPEmitter(f"127.0.0.1:{server.port}"), sampling=False
    )
    handler = LogsHandler(server.url, service="orders-web", log_stream="web-1", send_interval=0.1)
    log = _logger(handler, "flask")
    app = Flask("orders_web")

    @app.get("/orders/<int:order_id>")
    def get_order(order_id: int) -> dict[str, int]:
        log.info("loading order %d", order_id)
        with tracer.subsegment("load"):
            log.warning("order %d is slow to load", order_id)
        return {"id": order_id}

    @app.get("/fail")
    def fail() -> str:
        try:
            raise KeyError("out of stock")
        except KeyError:
            log.exception("cannot ship")
        raise RuntimeError("failed")

    trace_flask(app, tracer)
    with serve_wsgi(app) as url:
        yield url, tracer, handler
    tracer.close()
    handler.close()


def test_a_traced_flask_apps_lines_are_read_back_by_trace_id(
    server: ServerProcess, flask_app: tuple[str, Tracer, LogsHandler]
) -> None:
    base, tracer, handler = flask_app
    traces: dict[str, str] = {}
    for path in ("/orders/1", "/orders/2", "/fail"):
        trace_id = new_trace_id()
        response = requests.get(
            base + path, headers={"X-Amzn-Trace-Id": f"Root={trace_id};Sampled=1"}, timeout=10
        )
        assert response.status_code == (500 if path == "/fail" else 200)
        traces[path] = trace_id
    logging.getLogger("tests.logs.server.flask").info("outside any request")
    assert handler.flush(timeout=30) is True
    assert tracer.flush(5)
    client = logs_client(server)
    xray = server.xray()
    for path, trace_id in traces.items():
        rows = insights(
            client,
            "orders-web",
            f'fields @logStream, @xraySegmentId, @message | filter @xrayTraceId = "{trace_id}"'
            " | sort @timestamp asc",
        )
        lines = [json.loads(row["@message"]) for row in rows]
        assert {line["xray_trace_id"] for line in lines} == {trace_id}
        assert {row["@logStream"] for row in rows} == {"web-1"}
        # the server read the entity id out of each line too
        assert [row["@xraySegmentId"] for row in rows] == [
            line["xray_segment_id"] for line in lines
        ]
        # FilterLogEvents finds the same lines by the id as a term and as a JSON field
        for pattern in (f'"{trace_id}"', f'{{ $.xray_trace_id = "{trace_id}" }}'):
            events = filter_all(client, "orders-web", filterPattern=pattern)
            assert [e["message"] for e in events] == [row["@message"] for row in rows]
        # each line names an entity (segment or subsegment) the server stored for its trace
        named = {line["xray_segment_id"] for line in lines}

        def stored(t: str = trace_id, n: set[str] = named) -> bool:
            return n <= _entity_ids(get_documents(xray, t) or [])

        wait_for(stored)
        if path == "/fail":
            (line,) = lines
            assert line["level"] == "ERROR" and line["exception_name"] == "KeyError"
        else:
            assert [line["message"] for line in lines] == [
                f"loading order {path[-1]}",
                f"order {path[-1]} is slow to load",
            ]
            segment_line, load_line = lines
            assert segment_line["xray_segment_id"] != load_line["xray_segment_id"]
    everything = filter_all(client, "orders-web")
    assert len(everything) == 6  # 2 + 2 + 1, and the line outside any request
    (outside,) = [json.loads(e["message"]) for e in everything if "outside" in e["message"]]
    assert "xray_trace_id" not in outside
    assert handler.stats()["dropped"] == 0


def test_batches_past_the_count_and_size_limits_arrive_whole(server: ServerProcess) -> None:
    handler = LogsHandler(
        server.url,
        log_group="/tests/batching",
        log_stream="s",
        send_interval=0.2,
        max_queue=50_000,
        max_queue_bytes=64 << 20,
    )
    log = _logger(handler, "batching")
    for i in range(12_000):
        log.info("small %d", i)
    big = "b" * 300_000
    for i in range(8):  # 2.4 MB: three batches at least by bytes alone
        log.info("big %d %s", i, big)
    assert handler.flush(timeout=120) is True
    stats = handler.stats()
    assert stats["sent"] == 12_008 and stats["dropped"] == 0
    assert stats["batches"] >= 4  # 10,000 events at most per batch, 1 MiB at most
    client = logs_client(server)
    events = filter_all(client, "/tests/batching")
    assert len(events) == 12_008
    bigs = [json.loads(e["message"])["message"] for e in events if '"big ' in e["message"]]
    assert sorted(bigs) == [f"big {i} {big}" for i in range(8)]
    streams = client.describe_log_streams(logGroupName="/tests/batching")["logStreams"]
    assert [stream["logStreamName"] for stream in streams] == ["s"]
    handler.close()


def test_events_the_server_refuses_are_counted_and_a_deleted_group_comes_back(
    server: ServerProcess,
) -> None:
    handler = LogsHandler(server.url, log_group="/tests/refused", log_stream="s", send_interval=0.1)
    now = time.time()
    for created, text in ((now - 15 * 86400, "too old"), (now, "fine"), (now + 3 * 3600, "new")):
        record = logging.LogRecord("x", logging.INFO, __file__, 1, text, None, None)
        record.created = created
        handler.handle(record)
    assert handler.flush(timeout=30) is False  # two of three were not accepted
    stats = handler.stats()
    assert (stats["sent"], stats["dropped_too_old"], stats["dropped_too_new"]) == (1, 1, 1)
    client = logs_client(server)
    assert [json.loads(e["message"])["message"] for e in filter_all(client, "/tests/refused")] == [
        "fine"
    ]
    client.delete_log_group(logGroupName="/tests/refused")
    log = _logger(handler, "refused")
    log.info("after the group was deleted")
    assert handler.flush(timeout=30) is True
    messages = [json.loads(e["message"])["message"] for e in filter_all(client, "/tests/refused")]
    assert messages == ["after the group was deleted"]
    handler.close()


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(Path(tmp_path_factory.mktemp("locked")), "--api-key", TOKEN, api_key=TOKEN)
    yield proc
    proc.stop()


def test_a_token_is_sent_as_a_bearer_credential(locked_server: ServerProcess) -> None:
    with_token = LogsHandler(
        locked_server.url, log_group="/tests/auth", token=TOKEN, send_interval=0.1
    )
    without = LogsHandler(locked_server.url, log_group="/tests/auth-none", send_interval=0.1)
    for handler in (with_token, without):
        _logger(handler, f"auth{id(handler)}").info("hello")
    assert with_token.flush(timeout=30) is True
    assert without.flush(timeout=30) is False
    assert with_token.stats()["sent"] == 1
    assert without.stats()["dropped_rejected"] == 1 and without.stats()["sent"] == 0
    with_token.close()
    without.close()


KEY_ID, SECRET = "AKIDFLUOROSCOPESDKLOGS", "sdk/logs+s3cr3t0123456789abcdef"


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server that takes SigV4 with one access key (the API key is the test's own, to
    read the server's status; the handlers under test never send it)."""
    proc = start_server(
        Path(tmp_path_factory.mktemp("signed")), "--access-key", f"{KEY_ID}:{SECRET}",
        "--api-key", TOKEN, api_key=TOKEN,
    )  # fmt: skip
    yield proc
    proc.stop()


def test_an_access_key_signs_every_request(
    signed_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given explicitly or found where AWS SDKs look, the key signs the handler's calls
    (SigV4, checked by the server with botocore); a wrong secret or none is refused and
    the records are counted as rejected."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("FLUOROSCOPE_LOGS_TOKEN", raising=False)
    url = signed_server.url
    explicit = LogsHandler(url, log_group="/tests/signed", log_stream="explicit",
                           credentials=(KEY_ID, SECRET), region="eu-west-1", send_interval=0.1)  # fmt: skip
    wrong = LogsHandler(url, log_group="/tests/signed", log_stream="wrong",
                        credentials=(KEY_ID, SECRET + "x"), send_interval=0.1)  # fmt: skip
    unsigned = LogsHandler(url, log_group="/tests/signed", log_stream="none", send_interval=0.1)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    from_env = LogsHandler(url, log_group="/tests/signed", log_stream="env", send_interval=0.1)
    handlers = {"explicit": explicit, "wrong": wrong, "none": unsigned, "env": from_env}
    try:
        for stream, handler in handlers.items():
            log = _logger(handler, f"signed-{stream}")
            for n in range(3):
                log.info("line %d from %s", n, stream)
        assert explicit.flush(timeout=30) is True
        assert from_env.flush(timeout=30) is True
        assert wrong.flush(timeout=30) is False
        assert unsigned.flush(timeout=30) is False
        for handler in (explicit, from_env):
            assert handler.stats()["sent"] == 3 and handler.stats()["dropped"] == 0
        for handler in (wrong, unsigned):
            assert handler.stats()["sent"] == 0 and handler.stats()["dropped_rejected"] == 3
    finally:
        for handler in handlers.values():
            handler.close()
    client = boto3.client(
        "logs", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET,
    )  # fmt: skip
    streams = {
        s["logStreamName"]
        for s in client.describe_log_streams(logGroupName="/tests/signed")["logStreams"]
    }
    assert streams == {"explicit", "env"}
    lines = [json.loads(e["message"])["message"] for e in filter_all(client, "/tests/signed")]
    assert sorted(lines) == sorted(
        f"line {n} from {s}" for n in range(3) for s in ("explicit", "env")
    )
    failures = signed_server.status()["auth_failures"]
    assert failures.get("bad_signature", 0) >= 1 and failures.get("missing", 0) >= 1


def test_records_logged_while_the_server_is_down_are_dropped_then_sending_resumes(
    tmp_path: Path,
) -> None:
    first = start_server(tmp_path / "data")
    port = first.port
    handler = LogsHandler(
        first.url, log_group="/tests/restart", log_stream="s", send_interval=0.05, retries=1
    )
    log = _logger(handler, "restart")
    try:
        log.info("before the stop")
        assert handler.flush(timeout=30) is True
        first.stop()
        log.info("while the server is down")
        began = time.monotonic()
        assert handler.flush(timeout=30) is False
        assert time.monotonic() - began < 10  # refused at once, one retry after 0.2 s
        assert handler.stats()["dropped_unreachable"] == 1
        second = start_server(tmp_path / "data", port=port)
    except BaseException:
        first.stop()
        raise
    try:
        log.info("after the restart")  # over a new connection: the old one died
        assert handler.flush(timeout=30) is True
        client = logs_client(second)
        messages = [
            json.loads(e["message"])["message"] for e in filter_all(client, "/tests/restart")
        ]
        assert messages == ["before the stop", "after the restart"]
        assert handler.stats()["sent"] == 2
    finally:
        handler.close()
        second.stop()


def test_the_lambda_decorator_and_the_sdks_flush_send_what_handlers_hold(
    server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    handler = LogsHandler(
        server.url, log_group="/tests/lambda", log_stream="s", send_interval=3600
    )  # the sender would not wake by itself for an hour
    log = _logger(handler, "lambda")
    tracer = Tracer(service="fn", emitter=UDPEmitter(f"127.0.0.1:{server.port}"), sampling=False)

    @lambda_handler(tracer=tracer)
    def handle(event: dict[str, int], context: object) -> int:
        log.info("handled %d", event["n"])
        return event["n"]

    try:
        assert handle({"n": 7}, None) == 7
        assert handler.stats()["sent"] == 1  # flushed before the handler returned
        log.info("then flushed by the SDK")
        assert fluoroscope.sdk.flush(10) is True
        assert handler.stats()["sent"] == 2
        lines = [json.loads(e["message"]) for e in filter_all(logs_client(server), "/tests/lambda")]
        assert [line["message"] for line in lines] == ["handled 7", "then flushed by the SDK"]
        assert "xray_trace_id" in lines[0] and "xray_trace_id" not in lines[1]
    finally:
        handler.close()
        tracer.close()


def test_a_formatters_text_lines_carry_ids_the_server_reads(server: ServerProcess) -> None:
    handler = LogsHandler(server.url, log_group="/tests/text", log_stream="s", send_interval=0.1)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    log = _logger(handler, "text")
    tracer = Tracer(service="text", emitter=UDPEmitter(f"127.0.0.1:{server.port}"), sampling=False)
    try:
        with tracer.segment("text") as seg, tracer.subsegment("work") as sub:
            log.warning("disk %d%% full", 93)
        assert handler.flush(timeout=30) is True
        rows = insights(
            logs_client(server),
            "/tests/text",
            f'fields @message, @xraySegmentId | filter @xrayTraceId = "{seg.trace_id}"',
        )
        assert rows == [
            {
                "@message": "WARNING tests.logs.server.text disk 93% full "
                f"AWS-XRAY-TRACE-ID: {seg.trace_id}@{sub.id}",
                "@xraySegmentId": sub.id,
                "@ptr": rows[0]["@ptr"],
            }
        ]
    finally:
        handler.close()
        tracer.close()
