"""The HTTP surface: X-Ray API operations at the URL root.

Routing and shapes only: handlers validate parameters, call ``ingest`` / ``query`` /
``store`` in worker threads (store calls block), and render the results.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fluoroscope.ingest.otlp import Translator
from fluoroscope.ingest.process import IngestProcess
from fluoroscope.model.documents import MAX_DOCUMENT_BYTES, refusal_reason, validate_document
from fluoroscope.model.errors import (
    FluoroscopeError,
    InvalidDocument,
    InvalidRequest,
    StoreUnwritable,
    Throttled,
)
from fluoroscope.model.ids import normalize_trace_id
from fluoroscope.query.compile import DEFAULT_SAMPLE_RATE, Condition, both, sample_condition
from fluoroscope.query.faultinsights import InsightEngine
from fluoroscope.query.filter.parser import parse_entity_selector
from fluoroscope.query.graph import filtered_graph, service_graph
from fluoroscope.query.groups import GroupService
from fluoroscope.query.groupstats import GroupStats, TrackedGroup
from fluoroscope.query.timeseries import time_series
from fluoroscope.query.tracegraph import trace_graph
from fluoroscope.query.traces import get_traces
from fluoroscope.server import admin, console_api, investigate
from fluoroscope.server.auth import AccessControl, AccessPolicy
from fluoroscope.server.console import console_routes
from fluoroscope.server.logs import logs_endpoint
from fluoroscope.server.logsops import LogsState, build_logs_state
from fluoroscope.server.metrics import ApiMetrics, metrics_endpoint
from fluoroscope.server.openapi import openapi_endpoint
from fluoroscope.server.otlp import OtlpLogSink, otlp_routes, transit_segments
from fluoroscope.server.resources import ApiSettings, check_tags
from fluoroscope.server.sampling import SamplingService
from fluoroscope.server.tracelogs import trace_logs_route
from fluoroscope.server.xray import (
    error_response,
    json_response,
    read_body,
    render_graph,
    render_group,
    render_summary,
    render_time_series,
    render_trace,
    require_time,
)
from fluoroscope.store.store import Store

__all__ = ["OPERATIONS", "ROUTES", "ServerState", "create_app"]

MAX_BODY_BYTES: Final = 16 * 1024 * 1024
MAX_DOCUMENTS_PER_CALL: Final = 1000
STORE_TIMEOUT: Final = 25.0
"""Longest a PutTraceSegments waits for its documents to be stored before it answers
with a retryable error (a retry is harmless: storing is idempotent per entity)."""
MAX_TRACE_IDS: Final = 100
TRACE_ID_LENGTH: Final = 35
TRACES_PER_PAGE: Final = 5
SUMMARIES_PER_PAGE: Final = 100


@dataclass(slots=True)
class ServerState:
    """What the handlers share; built by the composition root.

    PutTraceSegments counts its documents in ``pipeline.counters`` (``http_received``,
    ``http_invalid_<reason>``, ``http_dropped_<reason>``); ``access.failures`` counts
    requests refused by access control, by reason. ``GET /metrics`` reads both."""

    store: Store
    pipeline: IngestProcess
    retention_seconds: float
    clock: Callable[[], float] = time.time
    access: AccessPolicy = field(default_factory=AccessPolicy)  # .failures: refusals by reason
    otlp: Translator = field(default_factory=Translator)  # OTLP/Zipkin spans -> documents
    otlp_logs: OtlpLogSink | None = None  # OTLP log records -> the log store (None: no logs)
    groups: GroupService = field(init=False)
    group_stats: GroupStats = field(init=False)
    logs: LogsState = field(init=False)  # the CloudWatch Logs API's; close() it at the end
    sampling: SamplingService = field(init=False)
    settings: ApiSettings = field(init=False)  # tags, policies, encryption, indexing
    insights: InsightEngine = field(init=False)  # X-Ray Insights (evaluated by run.py)

    def __post_init__(self) -> None:
        self.groups = GroupService(self.store)
        self.group_stats = GroupStats(self.store, self.groups, clock=self.clock)
        self.logs = build_logs_state(
            self.store,
            retention_days=max(1, round(self.retention_seconds / 86_400)),
            clock=self.clock,
        )
        self.sampling = SamplingService(self.store, self.clock)
        self.settings = ApiSettings(self.store, self._taggable, self.clock)
        self.insights = InsightEngine(
            self.store,
            self.groups,
            self.group_stats,
            clock=self.clock,
            retention_seconds=self.retention_seconds,
        )

    def _taggable(self, arn: str) -> bool:
        """Whether a group or a sampling rule has the ARN ``arn`` (blocking)."""
        for lookup in (lambda: self.groups.get(arn=arn), lambda: self.sampling.get(arn=arn)):
            try:
                lookup()
                return True
            except InvalidRequest:
                continue
        return False


Handler = Callable[[Request, dict[str, Any], ServerState], Awaitable[dict[str, Any]]]


async def put_trace_segments(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    documents = body.get("TraceSegmentDocuments")
    if not isinstance(documents, list):
        raise InvalidRequest("TraceSegmentDocuments is required and must be a list of strings")
    if len(documents) > MAX_DOCUMENTS_PER_CALL:
        raise InvalidRequest(
            f"{len(documents)} documents in one call; the limit is {MAX_DOCUMENTS_PER_CALL}"
        )
    now = state.clock()
    refused: Counter[str] = Counter()
    unprocessed: list[dict[str, str]] = []
    valid: list[tuple[str, bytes]] = []
    size = 0
    for index, text in enumerate(documents):
        if isinstance(text, str) and text.startswith("T1"):  # OTLP spans (CloudWatch agent)
            spans, refusals = transit_segments(text, state, now)
            valid += spans
            size += sum(len(raw) for _, raw in spans)
            unprocessed += refusals
            continue
        try:
            if not isinstance(text, str):
                raise InvalidDocument(f"document {index} is not a string", code="InvalidDocument")
            raw = text.encode("utf-8", "surrogatepass")
            if len(raw) > MAX_DOCUMENT_BYTES:
                raise InvalidDocument(
                    f"document is {len(raw)} bytes; the limit is {MAX_DOCUMENT_BYTES}",
                    code="DocumentTooLarge",
                )
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise InvalidDocument(f"not valid JSON: {exc}", code="InvalidJson") from None
            validate_document(doc, now=now, max_age=state.retention_seconds, raw=raw)
        except InvalidDocument as exc:
            unprocessed.append(
                {"Id": exc.doc_id or _guess_id(text), "ErrorCode": exc.code, "Message": exc.message}
            )
            refused[f"http_invalid_{refusal_reason(exc.code)}"] += 1
            continue
        valid.append((doc["trace_id"], raw))
        size += len(raw)
    state.pipeline.count({"http_received": len(documents), **refused})
    if valid:
        try:
            submitted = state.pipeline.submit(valid, size)
        except (Throttled, StoreUnwritable) as exc:  # refused; the client may retry
            reason = "throttled" if isinstance(exc, Throttled) else "store_unwritable"
            state.pipeline.count({f"http_dropped_{reason}": len(valid)})
            raise
        stored = asyncio.wrap_future(submitted)
        try:
            await asyncio.wait_for(asyncio.shield(stored), STORE_TIMEOUT)
        except TimeoutError:
            raise Throttled(
                f"the documents were not stored within {STORE_TIMEOUT:.0f} s; retry later"
            ) from None
    return {"UnprocessedTraceSegments": unprocessed}


def _guess_id(text: object) -> str:
    """The ``id`` of a document that failed before its fields could be read, if visible."""
    if not isinstance(text, str):
        return ""
    marker = text.find('"id"')
    if marker < 0:
        return ""
    rest = text[marker + 4 :].lstrip(" \t\r\n:").lstrip()
    if rest.startswith('"'):
        end = rest.find('"', 1)
        if 0 < end <= 64:
            return rest[1:end]
    return ""


async def telemetry_records(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    records = body.get("TelemetryRecords", [])
    if not isinstance(records, list):
        raise InvalidRequest("TelemetryRecords must be a list")
    return {}


async def batch_get_traces(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    ids = body.get("TraceIds")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidRequest("TraceIds is required and must be a list of strings")
    if len(ids) > MAX_TRACE_IDS:
        raise InvalidRequest(f"at most {MAX_TRACE_IDS} TraceIds per call")
    if not all(1 <= len(i) <= TRACE_ID_LENGTH for i in ids):
        # as X-Ray: the ids not found are answered back, so they must be ids' shape
        raise InvalidRequest(f"each TraceId must be 1 to {TRACE_ID_LENGTH} characters")
    offset = 0
    token = body.get("NextToken")
    if token is not None:
        if not isinstance(token, str) or not token.isdigit():
            raise InvalidRequest("NextToken is not a token this server issued")
        offset = int(token)
    unique = list(dict.fromkeys(ids))
    page = unique[offset : offset + TRACES_PER_PAGE]
    # either form of an id (1-xxxxxxxx-..., or 32 hex as OpenTelemetry writes it)
    canonical = {i: normalize_trace_id(i) for i in page}
    wellformed = list(dict.fromkeys(c for c in canonical.values() if c is not None))
    traces, missing = await run_in_threadpool(get_traces, state.store, wellformed)
    lost = set(missing)
    unprocessed = [i for i, c in canonical.items() if c is None or c in lost]
    result: dict[str, Any] = {
        "Traces": [render_trace(t) for t in traces],
        "UnprocessedTraceIds": unprocessed,
    }
    if offset + TRACES_PER_PAGE < len(unique):
        result["NextToken"] = str(offset + TRACES_PER_PAGE)
    return result


def _sampling(body: dict[str, Any]) -> Condition | None:
    """GetTraceSummaries' ``Sampling``/``SamplingStrategy`` as a condition (or None)."""
    sampling = body.get("Sampling", False)
    if not isinstance(sampling, bool):
        raise InvalidRequest("Sampling must be a boolean")
    strategy = body.get("SamplingStrategy")
    if strategy is None:
        return sample_condition(DEFAULT_SAMPLE_RATE) if sampling else None
    if not isinstance(strategy, dict) or strategy.get("Name", "FixedRate") not in (
        "PartialScan",
        "FixedRate",
    ):
        raise InvalidRequest("SamplingStrategy must be {Name: PartialScan|FixedRate, Value}")
    value = strategy.get("Value", DEFAULT_SAMPLE_RATE)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidRequest("SamplingStrategy.Value must be a number")
    return sample_condition(float(value)) if sampling else None


async def get_trace_summaries(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    start, end = _window(body, state)
    expression = body.get("FilterExpression")
    if expression is not None and not isinstance(expression, str):
        raise InvalidRequest("FilterExpression must be a string")
    condition = None
    if expression and expression.strip():
        condition = await run_in_threadpool(state.groups.condition, expression)
    range_type = body.get("TimeRangeType", "Event")
    if range_type not in ("Event", "TraceId", "Service"):
        raise InvalidRequest(
            f"TimeRangeType must be TraceId, Event or Service, got {range_type!r:.40}"
        )
    condition = both(condition, _sampling(body))
    token = body.get("NextToken")
    if token is not None and not isinstance(token, str):
        raise InvalidRequest("NextToken must be a string")
    page = await run_in_threadpool(
        lambda: state.store.summaries(
            start,
            end,
            by_trace_id=range_type == "TraceId",
            limit=SUMMARIES_PER_PAGE,
            token=token,
            where_clause=condition.sql if condition else None,
            where_params=condition.params if condition else None,
        )
    )
    result: dict[str, Any] = {
        "TraceSummaries": [render_summary(s) for s in page.summaries],
        "ApproximateTime": float(int(end)),
        "TracesProcessedCount": page.scanned,
    }
    if page.next_token:
        result["NextToken"] = page.next_token
    return result


async def get_service_graph(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    start, end = _window(body, state)
    selected = await _group_condition(body, state)
    if selected is None:
        graph = await run_in_threadpool(service_graph, state.store, start, end)
    else:
        graph = await run_in_threadpool(filtered_graph, state.store, start, end, *selected)
    return render_graph(graph)


async def get_trace_graph(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    ids = body.get("TraceIds")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        raise InvalidRequest("TraceIds is required and must be a non-empty list of strings")
    if len(ids) > MAX_TRACE_IDS:
        raise InvalidRequest(f"at most {MAX_TRACE_IDS} TraceIds per call")
    canonical = (normalize_trace_id(i) for i in ids)
    wellformed = list(dict.fromkeys(c for c in canonical if c is not None))
    graph = await run_in_threadpool(trace_graph, state.store, wellformed)
    rendered = render_graph(graph)
    return {"Services": rendered["Services"]}


async def get_time_series(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    start, end = _window(body, state)
    selected = await _group_condition(body, state)
    condition, tracked = selected if selected is not None else (None, None)
    period = body.get("Period", 60)
    if not isinstance(period, int) or isinstance(period, bool) or period < 60 or period % 60:
        raise InvalidRequest("Period must be a whole number of minutes in seconds (60, 300, ...)")
    if (end - start) / period > 10_000:
        raise InvalidRequest("the time range holds more than 10,000 periods; use a longer Period")
    text = body.get("EntitySelectorExpression")
    if text is not None and not isinstance(text, str):
        raise InvalidRequest("EntitySelectorExpression must be a string")
    selector = parse_entity_selector(text) if text and text.strip() else None
    points = await run_in_threadpool(
        time_series, state.store, start, end, period, selector, condition, tracked
    )
    return render_time_series(points)


async def _group_condition(
    body: dict[str, Any], state: ServerState
) -> tuple[Condition, TrackedGroup | None] | None:
    """The compiled filter of the group ``GroupName``/``GroupARN`` names - the traces a
    graph or time series is restricted to - and the group as tracked at ingest when its
    statistics are kept under that same filter. None (every trace) without a group, for
    the Default group and for a group without a filter; InvalidRequest for an unknown
    group."""
    name, arn = body.get("GroupName"), body.get("GroupARN")
    if name is None and arn is None:
        return None
    group = await run_in_threadpool(state.groups.get, name, arn)
    expression = group.filter_expression
    if not expression or not expression.strip():
        return None
    condition = await run_in_threadpool(state.groups.condition, expression)
    tracked = state.group_stats.tracked(group.name)
    if tracked is not None and tracked.condition != condition:
        tracked = None  # changed since it was tracked (a concurrent update): from spans
    return condition, tracked


def _flag(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidRequest(f"{key} must be a boolean")
    return value


def _filter_text(body: dict[str, Any]) -> str | None:
    text = body.get("FilterExpression")
    if text is not None and not isinstance(text, str):
        raise InvalidRequest("FilterExpression must be a string")
    return text


def _insights(body: dict[str, Any]) -> tuple[bool | None, bool | None]:
    config = body.get("InsightsConfiguration") or {}
    if not isinstance(config, dict):
        raise InvalidRequest("InsightsConfiguration must be an object")
    return _flag(config, "InsightsEnabled"), _flag(config, "NotificationsEnabled")


async def create_group(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    insights, notify = _insights(body)
    tags = check_tags(body.get("Tags"))
    group = await run_in_threadpool(
        state.groups.create, body.get("GroupName"), _filter_text(body), bool(insights), bool(notify)
    )
    await run_in_threadpool(state.settings.set_tags, group.arn, tags)
    await run_in_threadpool(state.group_stats.refresh)
    return {"Group": render_group(group)}


async def get_group(request: Request, body: dict[str, Any], state: ServerState) -> dict[str, Any]:
    group = await run_in_threadpool(state.groups.get, body.get("GroupName"), body.get("GroupARN"))
    return {"Group": render_group(group)}


async def get_groups(request: Request, body: dict[str, Any], state: ServerState) -> dict[str, Any]:
    groups = await run_in_threadpool(state.groups.all)
    return {"Groups": [render_group(g) for g in groups]}


async def update_group(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    insights, notify = _insights(body)
    group = await run_in_threadpool(
        state.groups.update,
        body.get("GroupName"),
        body.get("GroupARN"),
        _filter_text(body),
        insights,
        notify,
    )
    await run_in_threadpool(state.group_stats.refresh)
    return {"Group": render_group(group)}


async def delete_group(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    group = await run_in_threadpool(state.groups.get, body.get("GroupName"), body.get("GroupARN"))
    await run_in_threadpool(state.groups.delete, group.name)
    await run_in_threadpool(state.settings.set_tags, group.arn, {})
    await run_in_threadpool(state.group_stats.refresh)
    return {}


def _window(body: dict[str, Any], state: ServerState) -> tuple[float, float]:
    start = require_time(body, "StartTime")
    end = require_time(body, "EndTime")
    if end < start:
        raise InvalidRequest("EndTime must not precede StartTime")
    if end - start > state.retention_seconds:
        raise InvalidRequest(
            f"the time range is {end - start:.0f} s; at most {state.retention_seconds:.0f} s "
            "(the retention period) is allowed"
        )
    return start, end


ROUTES: Final[dict[str, Handler]] = {
    "/TraceSegments": put_trace_segments,
    "/TelemetryRecords": telemetry_records,
    "/Traces": batch_get_traces,
    "/TraceSummaries": get_trace_summaries,
    "/ServiceGraph": get_service_graph,
    "/TimeSeriesServiceStatistics": get_time_series,
    "/TraceGraph": get_trace_graph,
    "/CreateGroup": create_group,
    "/GetGroup": get_group,
    "/Groups": get_groups,
    "/UpdateGroup": update_group,
    "/DeleteGroup": delete_group,
    **admin.ROUTES,
}


OPERATIONS: Final[dict[str, str]] = {
    "/TraceSegments": "PutTraceSegments",
    "/TelemetryRecords": "PutTelemetryRecords",
    "/Traces": "BatchGetTraces",
    "/TraceSummaries": "GetTraceSummaries",
    "/ServiceGraph": "GetServiceGraph",
    "/TimeSeriesServiceStatistics": "GetTimeSeriesServiceStatistics",
    "/TraceGraph": "GetTraceGraph",
    "/CreateGroup": "CreateGroup",
    "/GetGroup": "GetGroup",
    "/Groups": "GetGroups",
    "/UpdateGroup": "UpdateGroup",
    "/DeleteGroup": "DeleteGroup",
    **admin.OPERATIONS,
}
"""The X-Ray operation name of each route (metrics labels, the OpenAPI description)."""


def _endpoint(
    handler: Handler, state: ServerState, operation: str, metrics: ApiMetrics
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await read_body(request, MAX_BODY_BYTES)
            response = json_response(await handler(request, body, state))
        except FluoroscopeError as exc:
            response = error_response(exc)
        except Exception:
            metrics.observe(operation, 500, time.perf_counter() - started)
            raise
        metrics.observe(operation, response.status_code, time.perf_counter() - started)
        return response

    return endpoint


async def _unknown_operation(request: Request, exc: Exception) -> Response:
    response = json_response(
        {"__type": "UnknownOperationException", "message": f"no operation at {request.url.path}"},
        404,
    )
    response.headers["x-amzn-ErrorType"] = "UnknownOperationException"
    return response


async def _wrong_method(request: Request, exc: Exception) -> Response:
    return error_response(InvalidRequest(f"{request.url.path} accepts POST only"))


def create_app(state: ServerState) -> Starlette:
    """The ASGI application serving the X-Ray API over ``state``, the CloudWatch Logs
    API (``POST /`` with ``X-Amz-Target: Logs_20140328.*``), ``GET /metrics``,
    ``GET /openapi.json`` (the X-Ray API's description) and the web console, behind
    :class:`AccessControl` applying ``state.access``."""
    metrics = ApiMetrics(state)
    routes: list[BaseRoute] = [
        Route(path, _endpoint(handler, state, OPERATIONS[path], metrics), methods=["POST"])
        for path, handler in ROUTES.items()
    ]
    routes.append(Route("/", logs_endpoint(state.logs, metrics, MAX_BODY_BYTES), methods=["POST"]))
    routes += [  # Fluoroscope's own endpoints beside the X-Ray operations
        Route(path, _endpoint(handler, state, path, metrics), methods=["POST"])
        for path, handler in {
            **admin.API_ROUTES,
            **console_api.API_ROUTES,
            **investigate.API_ROUTES,
        }.items()
    ]

    async def status(request: Request) -> Response:
        counters = state.pipeline.counters
        return json_response(
            {
                "counters": counters,
                "cached_traces": state.pipeline.cached_traces,
                "auth_failures": dict(state.access.failures),
                "sampling": state.sampling.status(),
                "log_writer": asdict(state.logs.writer.stats),
            }
        )

    routes.append(Route("/api/status", status, methods=["GET"]))
    routes.append(trace_logs_route(state.store, state.logs))
    routes.append(Route("/metrics", metrics_endpoint(metrics), methods=["GET"]))
    routes.append(Route("/openapi.json", openapi_endpoint(), methods=["GET"]))
    routes.extend(otlp_routes(state))
    routes.extend(console_routes())
    app = Starlette(
        routes=routes,
        exception_handlers={404: _unknown_operation, 405: _wrong_method},
        middleware=[Middleware(AccessControl, policy=state.access, max_body=MAX_BODY_BYTES)],
    )
    app.state.fluoroscope = state
    return app
