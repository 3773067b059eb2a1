"""Fluoroscope's own endpoints for the console (``POST /api/console/...``, JSON in and out,
the X-Ray operations' error handling).

``/api/console/vocabulary`` ``{StartTime, EndTime}`` answers what the traces stored in
that window name, for the filter box's autocomplete::

    {"Services": ["orders-api/prod", ...],                      # most frequent first
     "Annotations": [{"Key": "customer", "Values": ["ada", ...], "More": false}, ...]}

``Values`` lists an annotation's values (as text) only when it has at most
:data:`MAX_VALUES` of them; otherwise it is empty and ``More`` is true. The window is at
most the retention period; the store answers from the summaries table (one statement).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.server.xray import require_time

if TYPE_CHECKING:
    from fluoroscope.server.app import ServerState

__all__ = ["API_ROUTES", "MAX_VALUES"]

MAX_VALUES: Final = 20

Handler = Callable[[Request, dict[str, Any], "ServerState"], Awaitable[dict[str, Any]]]


async def vocabulary(request: Request, body: dict[str, Any], state: ServerState) -> dict[str, Any]:
    """``{StartTime, EndTime}`` -> ``{Services, Annotations}`` (see the module docstring)."""
    start, end = require_time(body, "StartTime"), require_time(body, "EndTime")
    if end < start:
        raise InvalidRequest("EndTime must not precede StartTime")
    if end - start > state.retention_seconds:
        raise InvalidRequest("the window is longer than the retention period")
    rows = await run_in_threadpool(state.store.vocabulary, start, end)
    services = [str(r["key"]) for r in rows if r["kind"] == "service"]
    annotations = []
    for r in rows:
        if r["kind"] != "annotation":
            continue
        values = sorted(str(v) for v in r["vals"])
        few = int(r["n_values"]) <= MAX_VALUES and len(values) <= MAX_VALUES
        annotations.append({"Key": str(r["key"]), "Values": values if few else [], "More": not few})
    return {"Services": services, "Annotations": annotations}


API_ROUTES: Final[dict[str, Handler]] = {"/api/console/vocabulary": vocabulary}
"""The console's endpoints (POST)."""
