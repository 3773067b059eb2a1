"""OpenTelemetry in: OTLP/HTTP, OTLP/gRPC and Zipkin v2 over HTTP.

Routes (:func:`otlp_routes`, on the main port and on OTLP's own HTTP listener):

* ``POST /v1/traces`` - an ``ExportTraceServiceRequest`` as protobuf
  (``application/x-protobuf``) or OTLP/JSON (``application/json``), optionally gzip- or
  deflate-compressed. Answered in the request's content type: ``200`` with an
  ``ExportTraceServiceResponse`` once its documents are stored, with
  ``partial_success {rejected_spans, error_message}`` when some spans were refused;
  ``400`` (a ``google.rpc.Status``) for a body that is not an OTLP request, ``413`` past
  the size limit, ``415`` for another content type - none of them retryable; ``429``
  (ingest buffer full) and ``503`` (store cannot take writes, or too slow) with
  ``Retry-After``, which OTLP clients retry.
* ``POST /v1/logs`` - an ``ExportLogsServiceRequest``, the same ways: its records become
  log lines in the log store (:mod:`fluoroscope.ingest.otlp.logs`), answered once
  durable, with ``partial_success {rejected_log_records, error_message}``; ``404`` when
  the server keeps no logs (``ServerState.otlp_logs`` unset).
* ``POST /api/v2/spans`` - Zipkin v2 JSON spans, answered ``202`` (OTLP-style reasons
  for refused spans in the body).

:class:`GrpcServer` serves ``opentelemetry.proto.collector.trace.v1.TraceService/Export``
and ``...logs.v1.LogsService/Export`` (grpcio, its own threads; ``UNIMPLEMENTED`` for logs
on a server that keeps none): ``INVALID_ARGUMENT`` for bad data, ``UNAVAILABLE`` (retried by
clients) when ingest is full or the store cannot take writes, ``UNAUTHENTICATED`` when
credentials are configured and the call carries no ``authorization: Bearer`` API key.

Either way, spans become segment documents (:mod:`fluoroscope.ingest.otlp`), translated
in the ingest workers (:meth:`~fluoroscope.ingest.process.IngestProcess.translate`: their
cores, not this process's; a protobuf body is not even parsed here), which hand them to
the workers owning their traces, as PutTraceSegments' documents are. This process does
no work per span.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fluoroscope.ingest.logwriter import LogWriter
from fluoroscope.ingest.otlp import Translation, transit_documents
from fluoroscope.ingest.otlp.decode import (
    OtlpDecodeError,
    decompress,
    parse_json_logs,
    parse_json_traces,
    parse_protobuf_logs,
    parse_protobuf_traces,
)
from fluoroscope.ingest.otlp.logs import LogBatch, log_batches
from fluoroscope.ingest.otlp.zipkin import zipkin_request
from fluoroscope.model.errors import FluoroscopeError, StoreUnwritable, Throttled
from fluoroscope.store.logs import LogGroupExists, LogStore, LogStreamExists

if TYPE_CHECKING:
    from fluoroscope.server.app import ServerState

__all__ = [
    "MAX_OTLP_BODY_BYTES",
    "GrpcServer",
    "OtlpLogSink",
    "create_otlp_app",
    "export_logs",
    "export_traces",
    "otlp_routes",
    "transit_segments",
]

log = logging.getLogger("fluoroscope.server")

MAX_OTLP_BODY_BYTES: Final = 64 * 1024 * 1024
"""Largest OTLP body accepted, compressed or once decompressed (OTLP's recommendation)."""
STORE_TIMEOUT: Final = 25.0
_PROTOBUF: Final = "application/x-protobuf"
_JSON: Final = "application/json"
_PROTOBUF_TYPES: Final = frozenset((_PROTOBUF, "application/protobuf"))


class _Refusal(Exception):
    """An export answered with an error (HTTP status, gRPC code name, retry)."""

    def __init__(self, status: int, grpc_code: str, message: str, retry: bool) -> None:
        super().__init__(message)
        self.status = status
        self.grpc_code = grpc_code
        self.retry = retry


async def export_traces(
    state: ServerState, request: Any, out: Translation, raw: bytes | None = None
) -> Translation:
    """Translate ``request`` (an ``ExportTraceServiceRequest``, or None when ``raw``
    holds its protobuf bytes) in an ingest worker and store its documents; returns
    ``out`` with the rejected spans and reasons added. Raises :class:`_Refusal` when
    nothing can be taken now, or when ``raw`` is no request."""
    data = raw if raw is not None else request.SerializeToString()
    try:
        pending = state.pipeline.translate(data)
    except Throttled as exc:
        state.pipeline.count({"otlp_refused_throttled": 1})
        raise _Refusal(429, "UNAVAILABLE", str(exc), True) from None
    except StoreUnwritable as exc:
        state.pipeline.count({"otlp_refused_store_unwritable": 1})
        raise _Refusal(503, "UNAVAILABLE", str(exc), True) from None
    try:
        translated = await asyncio.wrap_future(pending)
    except FluoroscopeError as exc:  # shutting down, or the worker stopped: retry
        raise _Refusal(503, "UNAVAILABLE", str(exc), True) from None
    if translated.not_otlp:
        state.pipeline.count({"otlp_invalid_request": 1})
        raise _Refusal(400, "INVALID_ARGUMENT", translated.reasons, False)
    if translated.rejected:
        reasons = translated.reasons.split("\n") if translated.reasons else []
        out.rejected += translated.rejected - len(reasons)
        for reason in reasons:
            out.reject(reason)
    state.pipeline.count(
        {"otlp_received": translated.documents + translated.rejected, "otlp_rejected": out.rejected}
    )
    if translated.stored is not None:
        await _stored(state, translated.stored, translated.documents)
    return out


class OtlpLogSink:
    """Where OTLP log records go: the log store's batching writer. A record's group and
    stream (:mod:`fluoroscope.ingest.otlp.logs`) are created on first use, as the
    CloudWatch agent would create them. Call :meth:`put` on the event loop."""

    def __init__(self, logs: LogStore, writer: LogWriter) -> None:
        self._logs = logs
        self._writer = writer
        self._made: set[tuple[str, str]] = set()

    def _ensure(self, group: str, stream: str) -> None:
        with contextlib.suppress(LogGroupExists):
            self._logs.create_group(group)
        with contextlib.suppress(LogStreamExists):
            self._logs.create_stream(group, stream)
        self._made.add((group, stream))

    async def put(self, batches: list[LogBatch]) -> None:
        """Store ``batches``; returns once durable. Raises Throttled, StoreUnwritable or
        StoreError as :class:`~fluoroscope.ingest.logwriter.LogWriter` does."""
        for batch in batches:
            if (batch.group, batch.stream) not in self._made:
                await run_in_threadpool(self._ensure, batch.group, batch.stream)
        await asyncio.gather(
            *(self._writer.put(b.group, b.stream, b.timestamps, b.messages) for b in batches)
        )


async def export_logs(state: ServerState, request: Any, out: Translation) -> Translation:
    """Store the records of ``request`` (an ``ExportLogsServiceRequest``) as log lines;
    returns the translation (rejected records and reasons). Raises :class:`_Refusal`
    when nothing can be taken now."""
    sink = state.otlp_logs
    if sink is None:
        raise _Refusal(404, "UNIMPLEMENTED", "this server keeps no logs", False)
    batches = await run_in_threadpool(log_batches, request, int(state.clock() * 1000), out)
    records = sum(len(b.messages) for b in batches)
    state.pipeline.count({"otlp_log_records": records, "otlp_log_rejected": out.rejected})
    try:
        await sink.put(batches)
    except Throttled as exc:
        raise _Refusal(429, "UNAVAILABLE", str(exc), True) from None
    except FluoroscopeError as exc:  # unwritable or failed: storing again is harmless
        raise _Refusal(
            503, "UNAVAILABLE", f"the log records could not be stored: {exc}", True
        ) from None
    return out


async def _stored(state: ServerState, stored: Future[None], documents: int) -> None:
    """Wait until ``stored`` (the future of ``documents`` submitted documents) is done."""
    try:
        await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(stored)), STORE_TIMEOUT)
    except TimeoutError:
        raise _Refusal(503, "UNAVAILABLE", "the spans were not stored in time", True) from None
    except Throttled as exc:  # a worker's buffer was full
        state.pipeline.count({"otlp_dropped_throttled": documents})
        raise _Refusal(429, "UNAVAILABLE", str(exc), True) from None
    except FluoroscopeError as exc:  # the store failed: storing again is harmless
        raise _Refusal(503, "UNAVAILABLE", f"the spans could not be stored: {exc}", True) from None


def transit_segments(
    text: str, state: ServerState, now: float
) -> tuple[list[tuple[str, bytes]], list[dict[str, str]]]:
    """A ``T1S``/``T1U`` document of PutTraceSegments (the CloudWatch agent's OTLP
    transit form): its spans' valid documents as ``(trace id, JSON)``, and
    ``UnprocessedTraceSegments`` entries for what was refused. ``T1U`` (unsampled) spans
    are taken and not stored."""
    docs, out, outcome = transit_documents(
        text.encode("utf-8", "surrogatepass"),
        state.otlp,
        now=now,
        max_age=state.retention_seconds,
    )
    refusals: list[dict[str, str]] = []
    if outcome not in ("sampled", "unsampled"):
        reason = {
            "unknown_prefix": "an unknown T1 prefix (T1S and T1U are known)",
            "base64": "T1S text that is not base64",
            "protobuf": "T1S data that is not an OTLP ExportTraceServiceRequest",
        }[outcome]
        refusals.append({"Id": "", "ErrorCode": "InvalidDocument", "Message": reason})
    elif out.rejected:
        refusals.append({"Id": "", "ErrorCode": "InvalidSpans", "Message": out.message})
    state.pipeline.count({f"http_otlp_{outcome}": 1, "http_otlp_rejected": out.rejected})
    return [(doc["trace_id"], raw) for doc, raw in docs], refusals


# -- HTTP ----------------------------------------------------------------------------


def _status_bytes(code: int, message: str) -> bytes:
    """A ``google.rpc.Status{code, message}`` in protobuf (two fields, by hand)."""
    text = message.encode()
    out = bytearray()
    if code:
        out += b"\x08" + _varint(code)
    out += b"\x12" + _varint(len(text)) + text
    return bytes(out)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


_GRPC_NUMBERS: Final = {
    "INVALID_ARGUMENT": 3, "UNIMPLEMENTED": 12, "UNAVAILABLE": 14, "UNAUTHENTICATED": 16,
}  # fmt: skip


def _error(refusal: _Refusal, json: bool) -> Response:
    code = _GRPC_NUMBERS.get(refusal.grpc_code, 2)
    message = str(refusal)
    if json:
        body = orjson.dumps({"code": code, "message": message})
    else:
        body = _status_bytes(code, message)
    headers = {"Retry-After": "1"} if refusal.retry else {}
    return Response(body, refusal.status, headers, _JSON if json else _PROTOBUF)


def _success(out: Translation, json: bool, logs: bool = False) -> Response:
    if json:
        payload: dict[str, Any] = {}
        if out.rejected:
            key = "rejectedLogRecords" if logs else "rejectedSpans"
            payload["partialSuccess"] = {key: str(out.rejected), "errorMessage": out.message}
        return Response(orjson.dumps(payload), 200, media_type=_JSON)
    response: Any = ExportLogsServiceResponse() if logs else ExportTraceServiceResponse()
    if out.rejected:
        partial = response.partial_success
        if logs:
            partial.rejected_log_records = out.rejected
        else:
            partial.rejected_spans = out.rejected
        partial.error_message = out.message
    return Response(response.SerializeToString(), 200, media_type=_PROTOBUF)


async def _read(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _Refusal(413, "INVALID_ARGUMENT", f"the body exceeds {limit} bytes", False)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refusal(413, "INVALID_ARGUMENT", f"the body exceeds {limit} bytes", False)
        chunks.append(chunk)
    return b"".join(chunks)


def _decoded(body: bytes, request: Request) -> bytes:
    try:
        return decompress(body, request.headers.get("content-encoding", ""), MAX_OTLP_BODY_BYTES)
    except OtlpDecodeError as exc:
        status = 413 if "exceeds" in str(exc) else 400
        raise _Refusal(status, "INVALID_ARGUMENT", str(exc), False) from None


def _export_endpoint(state: ServerState, logs: bool) -> Callable[[Request], Awaitable[Response]]:
    """``POST /v1/traces`` (or, ``logs``, ``POST /v1/logs``)."""
    parse_json = parse_json_logs if logs else parse_json_traces
    parse_protobuf = parse_protobuf_logs if logs else parse_protobuf_traces

    async def export(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        json = kind == _JSON
        try:
            if not json and kind not in _PROTOBUF_TYPES:
                raise _Refusal(
                    415,
                    "INVALID_ARGUMENT",
                    f"Content-Type must be {_PROTOBUF} or {_JSON}, got {kind!r:.60}",
                    False,
                )
            if logs and state.otlp_logs is None:
                raise _Refusal(404, "UNIMPLEMENTED", "this server keeps no logs", False)
            data = _decoded(await _read(request, MAX_OTLP_BODY_BYTES), request)
            out = Translation(what="log record" if logs else "span")
            if not logs and not json:  # parsed by the worker that translates it
                out = await export_traces(state, None, out, raw=data)
                return _success(out, json, logs)
            try:
                if json:
                    message = await run_in_threadpool(parse_json, data, out)
                else:
                    message = parse_protobuf(data)
            except OtlpDecodeError as exc:
                state.pipeline.count({"otlp_invalid_request": 1})
                raise _Refusal(400, "INVALID_ARGUMENT", str(exc), False) from None
            if logs:
                out = await export_logs(state, message, out)
            else:
                out = await export_traces(state, message, out)
        except _Refusal as refusal:
            return _error(refusal, json)
        return _success(out, json, logs)

    return export


def _zipkin_endpoint(state: ServerState) -> Callable[[Request], Awaitable[Response]]:
    async def spans(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if kind != _JSON:
                raise _Refusal(
                    415, "INVALID_ARGUMENT", "Content-Type must be application/json", False
                )
            data = _decoded(await _read(request, MAX_OTLP_BODY_BYTES), request)
            out = Translation()
            try:
                message = await run_in_threadpool(zipkin_request, data, out)
            except OtlpDecodeError as exc:
                raise _Refusal(400, "INVALID_ARGUMENT", str(exc), False) from None
            out = await export_traces(state, message, out)
        except _Refusal as refusal:
            return _error(refusal, True)
        body = {"rejected": out.rejected, "message": out.message} if out.rejected else {}
        return Response(orjson.dumps(body), 202, media_type=_JSON)

    return spans


def otlp_routes(state: ServerState) -> list[BaseRoute]:
    """``POST /v1/traces``, ``POST /v1/logs`` and ``POST /api/v2/spans`` over ``state``."""
    return [
        Route("/v1/traces", _export_endpoint(state, logs=False), methods=["POST"]),
        Route("/v1/logs", _export_endpoint(state, logs=True), methods=["POST"]),
        Route("/api/v2/spans", _zipkin_endpoint(state), methods=["POST"]),
    ]


# -- gRPC ----------------------------------------------------------------------------


class GrpcServer:
    """OTLP/gRPC's trace service on ``address`` (``HOST:PORT``), answering from its own
    threads; exports are handed to ``loop`` (the server's event loop) to be stored.
    :meth:`start` raises OSError when the address cannot be bound; :meth:`stop` waits
    up to ``grace`` seconds for calls in progress."""

    def __init__(self, state: ServerState, address: str, loop: asyncio.AbstractEventLoop) -> None:
        import grpc
        from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        self._state = state
        self._loop = loop
        self._grpc = grpc
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=4, thread_name_prefix="fluoroscope-grpc"),
            options=[
                ("grpc.so_reuseport", 0),  # a second server must fail to bind, not share
                ("grpc.max_receive_message_length", MAX_OTLP_BODY_BYTES),
            ],
        )
        servicer = type(
            "TraceService",
            (trace_service_pb2_grpc.TraceServiceServicer,),
            {"Export": lambda _self, request, context: self._export(request, context)},
        )()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, self._server)  # type: ignore[no-untyped-call]
        logs_servicer = type(
            "LogsService",
            (logs_service_pb2_grpc.LogsServiceServicer,),
            {"Export": lambda _self, request, context: self._export(request, context, logs=True)},
        )()
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(logs_servicer, self._server)  # type: ignore[no-untyped-call]
        try:
            self.port = self._server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(f"cannot bind {address}: {exc}") from None
        if not self.port:
            raise OSError(f"cannot bind {address}: address in use or not available")

    def start(self) -> None:
        self._server.start()

    def stop(self, grace: float = 5.0) -> None:
        self._server.stop(grace).wait(grace + 1)

    def _authorized(self, context: Any) -> bool:
        access = self._state.access
        if not access.requires_credentials:
            return True
        metadata = dict(context.invocation_metadata() or ())
        token = str(metadata.get("authorization", "")).removeprefix("Bearer ").strip()
        return any(hmac.compare_digest(token, key) for key in access.api_keys)

    def _export(self, request: Any, context: Any, logs: bool = False) -> Any:
        codes = self._grpc.StatusCode
        if not self._authorized(context):
            self._state.access.failures["grpc_unauthenticated"] += 1
            context.abort(codes.UNAUTHENTICATED, "an 'authorization: Bearer API_KEY' is required")
        out = Translation(what="log record" if logs else "span")
        export = export_logs if logs else export_traces
        future = asyncio.run_coroutine_threadsafe(export(self._state, request, out), self._loop)
        try:
            out = future.result(STORE_TIMEOUT + 5)
        except _Refusal as refusal:
            context.abort(getattr(codes, refusal.grpc_code), str(refusal))
        except TimeoutError:
            future.cancel()
            context.abort(codes.UNAVAILABLE, "the export was not stored in time")
        response: Any = ExportLogsServiceResponse() if logs else ExportTraceServiceResponse()
        if out.rejected:
            if logs:
                response.partial_success.rejected_log_records = out.rejected
            else:
                response.partial_success.rejected_spans = out.rejected
            response.partial_success.error_message = out.message
        return response


def create_otlp_app(state: ServerState, max_body: int) -> Any:
    """The ASGI application of OTLP's own HTTP listener: :func:`otlp_routes` only,
    behind the same access control as the main port."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware

    from fluoroscope.server.auth import AccessControl

    return Starlette(
        routes=otlp_routes(state),
        middleware=[Middleware(AccessControl, policy=state.access, max_body=max_body)],
    )
