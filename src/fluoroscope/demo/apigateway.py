"""An API Gateway REST API stage on loopback, with Lambda proxy integrations.

:class:`ApiGatewayStage` is a real HTTP server. A request to ``/<stage>/<resource>``
is matched against the routes (``GET /orders/{id}``-style templates), turned into a
Lambda proxy event and sent to the Lambda service's Invoke API over HTTP; the proxy
result (``statusCode``, ``headers``, ``body``) becomes the response. As the real
service does: a function error answers 502 ``Internal server error``, a throttled
invocation 429 ``Too Many Requests``, an unknown route 403 ``Missing Authentication
Token``.

Every request is traced (the SDK decides only when the caller sent ``Sampled=0/1``)
with the segment API Gateway emits (xray-protocol §8.3): name ``<api>/<stage>``,
``origin`` ``AWS::ApiGateway::Stage``, ``resource_arn`` of the stage, ``http``
(``x_forwarded_for``: true), ``aws.api_gateway``, annotations ``aws:api_id`` and
``aws:api_stage``, ``metadata.default`` request ids; and one integration subsegment
``Lambda`` (namespace ``aws``, ``aws.operation`` ``Invoke``) whose id is the ``Parent``
in the ``X-Amzn-Trace-Id`` header sent to Lambda, so the ``AWS::Lambda`` segment hangs
under it. The response carries ``X-Amzn-Trace-Id: Root=…`` and ``x-amzn-RequestId``.

With ``logs`` (a :class:`~fluoroscope.demo.cwlogs.LogShipper`) the stage writes a JSON
access log line per request to ``/aws/apigateway/<api>/<stage>`` in the format public
SAM/CDK stacks use (reference logs.md §5.5): ``requestTime``, ``requestId``,
``httpMethod``, ``path``, ``resourcePath``, ``status``, ``responseLatency``,
``xrayTraceId`` (empty when the request was not traced). With ``tracing=False`` (the
stage's ``TracingEnabled: false``) no segment is sent and the caller's ``X-Amzn-Trace-Id``
(if any) is passed on to Lambda unchanged, ``integrationLatency``, ``ip``,
``userAgent``.

Threads: one per request (``ThreadingHTTPServer``); ``start``/``close`` from the owner.
"""

from __future__ import annotations

import http.client
import json
import random
import string
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fluoroscope.demo._stamp import stamp_annotation, stamp_resource_arn
from fluoroscope.demo.cwlogs import LogShipper
from fluoroscope.sdk import Entity, Tracer

__all__ = ["ApiGatewayStage", "Route"]


@dataclass(frozen=True, slots=True)
class Route:
    """``method`` + resource template (``/orders/{id}``) → Lambda function name."""

    method: str
    resource: str
    function: str

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Path parameters when ``method path`` matches this route, else None."""
        if method != self.method:
            return None
        want = self.resource.strip("/").split("/")
        have = path.strip("/").split("/")
        if len(want) != len(have):
            return None
        params: dict[str, str] = {}
        for pattern, part in zip(want, have, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                if not part:
                    return None
                params[pattern[1:-1]] = part
            elif pattern != part:
                return None
        return params


class ApiGatewayStage:
    """Stage ``stage`` of REST API ``api_name`` on ``host:port`` (0: a free port)."""

    def __init__(
        self,
        api_name: str,
        stage: str,
        routes: Sequence[Route],
        *,
        lambda_url: str,
        daemon_address: str,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        logs: LogShipper | None = None,
        tracing: bool = True,
    ) -> None:
        self.api_name = api_name
        self.tracing = tracing  # the stage's TracingEnabled
        self.logs = logs
        self.access_log_group = f"/aws/apigateway/{api_name}/{stage}"
        self._access_stream = uuid.uuid4().hex
        self.stage = stage
        self.routes = tuple(routes)
        self.region = region
        self.account_id = account_id
        self.api_id = "".join(random.choices(string.ascii_lowercase + string.digits, k=10))
        self.lambda_url = lambda_url
        self.tracer = Tracer(
            f"{api_name}/{stage}",
            daemon_address=daemon_address,
            origin="AWS::ApiGateway::Stage",
            sampling=False,
            context_missing="ignore",
        )
        self._server = ThreadingHTTPServer((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The stage's base URL, e.g. ``http://127.0.0.1:PORT/prod``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{self.stage}"

    @property
    def stage_arn(self) -> str:
        """The stage's ARN, the segment's ``resource_arn``."""
        return f"arn:aws:apigateway:{self.region}::/restapis/{self.api_id}/stages/{self.stage}"

    def start(self) -> None:
        """Serve in a background daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-apigateway", daemon=True
        )
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving and flush the segments."""
        self._server.shutdown()
        self._server.server_close()
        self.tracer.flush(timeout)

    # -- one request -------------------------------------------------------------------

    def handle(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        client_ip: str,
    ) -> tuple[int, dict[str, str], bytes]:
        """Serve one request; returns (status, headers, body). Never raises."""
        parts = urlsplit(target)
        began = time.time()
        request_id = str(uuid.uuid4())
        segment = self.tracer.segment(
            trace_header=_header(headers, "x-amzn-trace-id"),
            start_time=None,
            sampled=None if self.tracing else False,
        )
        with segment:
            host = _header(headers, "host") or "localhost"
            segment.set_http_request(
                method=method,
                url=f"http://{host}{parts.path}",
                user_agent=_header(headers, "user-agent"),
                client_ip=client_ip,
                x_forwarded_for=True,
            )
            stamp_resource_arn(segment, self.stage_arn)
            stamp_annotation(segment, "aws:api_id", self.api_id)
            stamp_annotation(segment, "aws:api_stage", self.stage)
            segment.set_aws(
                api_gateway={
                    "account_id": self.account_id,
                    "rest_api_id": self.api_id,
                    "stage": self.stage,
                    "request_id": request_id,
                }
            )
            segment.put_metadata("request_id", request_id)
            segment.put_metadata("extended_request_id", uuid.uuid4().hex[:16] + "=")
            status, out_headers, payload = self._dispatch(
                method, parts.path, parts.query, headers, body, client_ip, request_id
            )
            segment.set_http_response(status=status, content_length=len(payload))
            out_headers["X-Amzn-Trace-Id"] = segment.response_header() if segment.sampled else ""
            out_headers["x-amzn-RequestId"] = request_id
        if self.logs is not None:
            access = {
                "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(began)),
                "requestId": request_id,
                "httpMethod": method,
                "path": parts.path,
                "resourcePath": self._resource(method, parts.path),
                "status": status,
                "responseLatency": round((time.time() - began) * 1000),
                "xrayTraceId": segment.trace_id if segment.sampled else "",
                "ip": client_ip,
                "userAgent": _header(headers, "user-agent") or "",
            }
            self.logs.put(
                self.access_log_group,
                self._access_stream,
                int(time.time() * 1000),
                json.dumps(access, separators=(",", ":")),
            )
        return status, out_headers, payload

    def _resource(self, method: str, path: str) -> str:
        prefix = f"/{self.stage}"
        resource = path[len(prefix) :] if path.startswith(prefix) else path
        for route in self.routes:
            if route.match(method, resource) is not None:
                return route.resource
        return "-"

    def _dispatch(
        self,
        method: str,
        path: str,
        query: str,
        headers: dict[str, str],
        body: bytes,
        client_ip: str,
        request_id: str,
    ) -> tuple[int, dict[str, str], bytes]:
        prefix = f"/{self.stage}"
        if not (path == prefix or path.startswith(prefix + "/")):
            return _json(403, {"message": "Missing Authentication Token"})
        resource_path = path[len(prefix) :] or "/"
        for route in self.routes:
            params = route.match(method, resource_path)
            if params is not None:
                break
        else:
            return _json(403, {"message": "Missing Authentication Token"})
        event = {
            "resource": route.resource,
            "path": resource_path,
            "httpMethod": method,
            "headers": headers,
            "queryStringParameters": dict(parse_qsl(query)) or None,
            "pathParameters": params or None,
            "requestContext": {
                "accountId": self.account_id,
                "apiId": self.api_id,
                "stage": self.stage,
                "requestId": request_id,
                "identity": {"sourceIp": client_ip},
            },
            "body": body.decode("utf-8", "replace") or None,
            "isBase64Encoded": False,
        }
        return self._integrate(route.function, event)

    def _integrate(self, function: str, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """The Lambda proxy integration, traced as the ``Lambda`` subsegment."""
        path = f"/2015-03-31/functions/{function}/invocations"
        with self.tracer.subsegment("Lambda", namespace="aws") as call:
            call.set_http_request(method="POST", url=f"{self.lambda_url}{path}")
            call.set_aws(
                operation="Invoke",
                region=self.region,
                function_name=function,
                resource_names=[function],
            )
            # tracing off: the caller's header (if any) goes on as it came
            forward = (
                call.trace_header()
                if self.tracing
                else _header(event["headers"], "x-amzn-trace-id")
            )
            status, reply_headers, reply = _post(self.lambda_url, path, event, call, forward)
            call.set_http_response(status=status, content_length=len(reply))
            if status == 429:
                return _json(429, {"message": "Too Many Requests"})
            if status != 200 or reply_headers.get("x-amz-function-error"):
                if status == 200:
                    call.mark_fault()
                return _json(502, {"message": "Internal server error"})
        try:
            result = json.loads(reply)
            code = int(result.get("statusCode", 200))
            out = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
            text = result.get("body") or ""
        except (ValueError, TypeError, AttributeError):
            return _json(502, {"message": "Malformed Lambda proxy response"})
        return code, out, str(text).encode()


def _post(
    base: str, path: str, event: dict[str, Any], call: Entity, trace_header: str | None
) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if trace_header:
        headers["X-Amzn-Trace-Id"] = trace_header
    try:
        conn.request("POST", path, body=json.dumps(event).encode(), headers=headers)
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    except OSError as exc:
        call.add_exception(exc)
        return 504, {}, b""
    finally:
        conn.close()


def _header(headers: dict[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _json(status: int, body: object) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _handler_class(stage: ApiGatewayStage) -> type[BaseHTTPRequestHandler]:
    class StageHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, payload = stage.handle(
                self.command, self.path, dict(self.headers.items()), body, self.client_address[0]
            )
            self.send_response(status)
            for key, value in headers.items():
                if value and key.lower() not in ("content-length", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return StageHandler
