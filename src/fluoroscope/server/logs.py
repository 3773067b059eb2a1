"""The CloudWatch Logs API on the server's HTTP port: the JSON 1.1 protocol.

Every operation is ``POST /`` with ``X-Amz-Target: Logs_20140328.<Operation>`` and a
JSON object as body (``{}`` when the input is empty), as boto3's ``logs`` client and the
AWS CLI send it; who may call is decided in front of this, by the same access control as
the X-Ray API (:mod:`fluoroscope.server.auth`: SigV4 for service ``logs`` or a bearer
token when credentials are configured). The answer is ``application/x-amz-json-1.1``
with ``x-amzn-RequestId``; an error is ``{"__type": CODE, "message": TEXT}`` (plus
``queryCompileError`` for a malformed query) with status 400 - 503 for
``ServiceUnavailableException``, the store being unable to answer now - and
``x-amzn-ErrorType``. A target that names no operation here is answered
``UnknownOperationException``.

Each request is bounded in time: its body is read with the same size limit as the
X-Ray API's, the store statements it runs carry the engine's own time limit, and past
:data:`REQUEST_SECONDS` it is answered ``ServiceUnavailableException`` (a retryable
error) whatever it waits for.

The operations themselves are in :mod:`fluoroscope.server.logsops` (groups, streams,
events, retention) and :mod:`fluoroscope.server.logsqueries` (Logs Insights queries).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from fluoroscope.model.errors import (
    InvalidRequest,
    ResourceNotFound,
    StoreError,
    StoreUnwritable,
    Throttled,
)
from fluoroscope.server.logsinput import LogsError, Members, invalid
from fluoroscope.server.logsops import OPERATIONS as EVENT_OPERATIONS
from fluoroscope.server.logsops import LogsState
from fluoroscope.server.logsqueries import OPERATIONS as QUERY_OPERATIONS
from fluoroscope.server.xray import read_bytes
from fluoroscope.store.logs import ResourceExists

if TYPE_CHECKING:
    from fluoroscope.server.metrics import ApiMetrics

__all__ = ["CONTENT_TYPE", "OPERATIONS", "REQUEST_SECONDS", "TARGET_PREFIX", "logs_endpoint"]

log = logging.getLogger("fluoroscope.server.logs")

TARGET_PREFIX: Final = "Logs_20140328."
CONTENT_TYPE: Final = "application/x-amz-json-1.1"
REQUEST_SECONDS: Final = 30.0
"""Longest a Logs API request is worked on before it is answered with a retryable
``ServiceUnavailableException``."""

LogsHandler = Callable[[Members, LogsState], Awaitable[dict[str, Any]]]

OPERATIONS: Final[dict[str, LogsHandler]] = {**EVENT_OPERATIONS, **QUERY_OPERATIONS}
"""Each operation this server answers, by its name in ``X-Amz-Target``."""


def logs_response(payload: Mapping[str, Any], status: int = 200) -> Response:
    """A JSON 1.1 answer with the headers the AWS SDKs read."""
    return Response(
        orjson.dumps(payload),
        status_code=status,
        media_type=CONTENT_TYPE,
        headers={"x-amzn-RequestId": str(uuid.uuid4())},
    )


def logs_error(exc: LogsError) -> Response:
    """``exc`` in the JSON 1.1 error shape."""
    response = logs_response({"__type": exc.code, "message": exc.message, **exc.extra}, exc.status)
    response.headers["x-amzn-ErrorType"] = exc.code
    if exc.status == 503:
        response.headers["Retry-After"] = "1"
    return response


def as_logs_error(exc: Exception) -> LogsError | None:
    """The CloudWatch Logs error a project exception is answered with (None: a bug)."""
    if isinstance(exc, LogsError):
        return exc
    if isinstance(exc, ResourceExists):
        return LogsError("ResourceAlreadyExistsException", str(exc))
    if isinstance(exc, ResourceNotFound):
        return LogsError("ResourceNotFoundException", str(exc))
    if isinstance(exc, InvalidRequest):
        return invalid(str(exc))
    if isinstance(exc, Throttled):
        return LogsError("ThrottlingException", str(exc))
    if isinstance(exc, StoreUnwritable):
        return LogsError(
            "ServiceUnavailableException",
            f"the store cannot take writes ({exc.reason}); retry later",
            503,
        )
    if isinstance(exc, StoreError):
        log.warning("a Logs API request failed in the store: %s", exc)
        return LogsError(
            "ServiceUnavailableException", "the store could not answer; retry later", 503
        )
    return None


def _parse(raw: bytes) -> dict[str, Any]:
    """The body's JSON object. Bytes that are not UTF-8 are read as U+FFFD, and
    escaped lone surrogates (which a client's encoder writes for a broken string) are
    kept for the operation to repair, so that one broken message costs nothing else."""
    if not raw.strip():
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(raw.decode("utf-8", "replace"))
        except (ValueError, RecursionError) as exc:
            raise LogsError(
                "SerializationException", f"the body is not valid JSON: {exc}"
            ) from None
    if not isinstance(value, dict):
        raise LogsError("SerializationException", "the body must be a JSON object")
    return value


def logs_endpoint(
    state: LogsState, metrics: ApiMetrics, max_body: int
) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint of ``POST /``: dispatches on ``X-Amz-Target`` to :data:`OPERATIONS`
    over ``state``, records each request in ``metrics`` under its operation's name."""

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        target = request.headers.get("x-amz-target", "")
        name = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        handler = OPERATIONS.get(name)
        label = name if handler is not None else "UnknownOperation"
        try:
            if handler is None:
                shown = target[:100] or "no X-Amz-Target header"
                raise LogsError("UnknownOperationException", f"unknown operation: {shown}")
            raw = await read_bytes(request, max_body)
            # a large body is parsed off the loop: it keeps serving meanwhile
            body = await run_in_threadpool(_parse, raw) if len(raw) > 1 << 18 else _parse(raw)
            result = await asyncio.wait_for(handler(Members(body), state), REQUEST_SECONDS)
            response = logs_response(result)
        except TimeoutError:
            response = logs_error(
                LogsError(
                    "ServiceUnavailableException",
                    f"the request was not answered within {REQUEST_SECONDS:.0f} s; retry later",
                    503,
                )
            )
        except Exception as exc:
            error = as_logs_error(exc)
            if error is None:
                metrics.observe(label, 500, time.perf_counter() - started)
                raise
            response = logs_error(error)
        metrics.observe(label, response.status_code, time.perf_counter() - started)
        return response

    return endpoint
