"""``GET /api/traces/{trace_id}/logs``: one trace's log lines, for the console's Logs pane
and the terminal.

Answers :meth:`fluoroscope.query.tracelogs.TraceLogs.as_dict` as JSON: ``traceId``,
``lines`` (time order; each with ``timestamp``, ``logGroup``, ``logStream``,
``message``, ``level``, ``type``, ``requestId``, ``json``, and the trace part it belongs
to: ``entityId``, ``segmentId``, ``service``, ``origin``), ``truncated``,
``logGroups`` (the groups searched) and the window ``startTime``/``endTime`` (epoch
ms). ``?limit=N`` (1..10000, default 10000) caps the lines. A malformed trace id is a
400 ``InvalidRequestException``; a trace that is not stored answers the lines that
carry its id (often none). The work runs in a worker thread; access control applies
as to every route.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.query.tracelogs import MAX_LINES, trace_logs
from fluoroscope.server.logsops import LogsState
from fluoroscope.server.xray import error_response, json_response
from fluoroscope.store.store import Store

__all__ = ["trace_logs_route"]


def _limit(text: str | None) -> int:
    if text is None:
        return MAX_LINES
    try:
        value = int(text)
    except ValueError:
        raise InvalidRequest(f"limit must be a whole number: {text!r}") from None
    if not 1 <= value <= MAX_LINES:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LINES}")
    return value


def trace_logs_route(store: Store, logs: LogsState) -> Route:
    """The route, reading traces from ``store`` and lines from ``logs.store``."""

    async def endpoint(request: Request) -> Response:
        try:
            limit = _limit(request.query_params.get("limit"))
            found = await run_in_threadpool(
                trace_logs, store, logs.store, request.path_params["trace_id"], limit=limit
            )
        except Exception as exc:  # mapped to the API's error shapes
            return error_response(exc)
        return json_response(found.as_dict())

    return Route("/api/traces/{trace_id}/logs", endpoint, methods=["GET"])
