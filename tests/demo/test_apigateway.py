"""The API Gateway stand-in: routing, proxy integration, status mapping, its segments (§8.3).

A stub Lambda Invoke API (a real HTTP server on loopback) records the trace header it
receives and answers as told; the stage's documents go to a UDP listener.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from fluoroscope.demo.apigateway import ApiGatewayStage, Route
from fluoroscope.model.trace_header import parse_trace_header
from tests.sdk.conftest import UDPDaemon


class StubLambda:
    """Answers Invoke calls with ``reply`` = (status, headers, body); keeps what it got."""

    def __init__(self) -> None:
        self.reply: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")
        self.calls: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stub.calls.append((self.path, dict(self.headers.items()), json.loads(body)))
                status, headers, payload = stub.reply
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def daemon() -> Iterator[UDPDaemon]:
    d = UDPDaemon()
    yield d
    d.close()


@pytest.fixture
def stage(daemon: UDPDaemon) -> Iterator[tuple[ApiGatewayStage, StubLambda]]:
    stub = StubLambda()
    api = ApiGatewayStage(
        "shop",
        "dev",
        [Route("GET", "/items/{id}", "getItem"), Route("POST", "/items", "putItem")],
        lambda_url=stub.url,
        daemon_address=daemon.address,
    )
    api.start()
    yield api, stub
    api.close()
    stub.close()


def _request(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, data=b"{}" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read()


def test_a_proxy_request_and_its_segment(
    stage: tuple[ApiGatewayStage, StubLambda], daemon: UDPDaemon
) -> None:
    api, stub = stage
    stub.reply = (200, {}, json.dumps({"statusCode": 201, "body": "made"}).encode())
    status, headers, body = _request(f"{api.url}/items/42?x=1")
    assert (status, body) == (201, b"made")
    path, sent_headers, event = stub.calls[0]
    assert path == "/2015-03-31/functions/getItem/invocations"
    assert event["pathParameters"] == {"id": "42"} and event["queryStringParameters"] == {"x": "1"}
    assert event["requestContext"]["stage"] == "dev"

    (segment,) = daemon.documents(1, timeout=10)
    assert segment["name"] == "shop/dev" and segment["origin"] == "AWS::ApiGateway::Stage"
    assert (
        segment["resource_arn"]
        == f"arn:aws:apigateway:us-east-1::/restapis/{api.api_id}/stages/dev"
    )
    assert segment["annotations"] == {"aws:api_id": api.api_id, "aws:api_stage": "dev"}
    assert segment["aws"]["api_gateway"]["rest_api_id"] == api.api_id
    assert segment["http"]["request"]["x_forwarded_for"] is True
    assert segment["http"]["response"]["status"] == 201
    assert headers["X-Amzn-Trace-Id"] == f"Root={segment['trace_id']}"
    (call,) = segment["subsegments"]
    assert (call["name"], call["namespace"]) == ("Lambda", "aws")
    assert call["aws"]["operation"] == "Invoke" and call["aws"]["function_name"] == "getItem"
    # the integration subsegment is the parent the Lambda service's segment will name
    header = parse_trace_header(sent_headers["X-Amzn-Trace-Id"])
    assert header is not None
    assert (header.root, header.parent) == (segment["trace_id"], call["id"])


@pytest.mark.parametrize(
    ("reply", "status", "flag"),
    [
        ((429, {}, b'{"message":"Rate Exceeded."}'), 429, "throttle"),
        ((200, {"X-Amz-Function-Error": "Unhandled"}, b'{"errorType":"KeyError"}'), 502, "fault"),
        ((200, {}, b"not json"), 502, "fault"),
    ],
)
def test_lambda_trouble_maps_to_api_gateway_statuses(
    stage: tuple[ApiGatewayStage, StubLambda],
    daemon: UDPDaemon,
    reply: tuple[int, dict[str, str], bytes],
    status: int,
    flag: str,
) -> None:
    api, stub = stage
    stub.reply = reply
    assert _request(f"{api.url}/items", "POST")[0] == status
    (segment,) = daemon.documents(1, timeout=10)
    assert segment[flag] is True and segment["http"]["response"]["status"] == status


def test_unknown_routes_are_refused_like_api_gateway(
    stage: tuple[ApiGatewayStage, StubLambda],
) -> None:
    api, stub = stage
    for url in (f"{api.url}/nothing", f"{api.url}/items/1/deeper", api.url.replace("/dev", "/x")):
        status, _, body = _request(url)
        assert status == 403 and json.loads(body) == {"message": "Missing Authentication Token"}
    assert stub.calls == []
