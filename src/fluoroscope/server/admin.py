"""X-Ray operations for sampling rules, tags, policies, settings and Insights.

Routing and shapes only: each handler checks its parameters' types, calls
:class:`~fluoroscope.server.sampling.SamplingService` or
:class:`~fluoroscope.server.resources.ApiSettings` in a worker thread, and renders the
answer. :data:`ROUTES` and :data:`OPERATIONS` are merged into the app's tables.

:data:`API_ROUTES` are Fluoroscope's own (``POST /api/sampling/...``, JSON in and out,
the same errors): the live sampling statistics per rule and client, and the what-if
replay of a proposed rule set over a window of stored traffic.

The Insights operations are :mod:`fluoroscope.server.insights`'s. Transaction Search's
trace retrieval answers ``InvalidRequestException`` naming the operation and saying it
is not available here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.model.sampling import proposed_rules
from fluoroscope.query.whatif import what_if
from fluoroscope.server import insights
from fluoroscope.server.resources import check_tags
from fluoroscope.server.xray import require_time

if TYPE_CHECKING:
    from fluoroscope.server.app import ServerState

__all__ = ["API_ROUTES", "OPERATIONS", "ROUTES"]

Handler = Callable[[Request, dict[str, Any], "ServerState"], Awaitable[dict[str, Any]]]


async def sampling_rules(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    return await run_in_threadpool(state.sampling.rules, body.get("NextToken"))


async def sampling_targets(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    return await run_in_threadpool(state.sampling.targets, body)


async def statistic_summaries(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    return await run_in_threadpool(state.sampling.statistic_summaries, body.get("NextToken"))


async def create_rule(request: Request, body: dict[str, Any], state: ServerState) -> dict[str, Any]:
    tags = check_tags(body.get("Tags"))
    rule = await run_in_threadpool(state.sampling.create, body.get("SamplingRule"))
    await run_in_threadpool(state.settings.set_tags, rule.arn, tags)
    return {"SamplingRuleRecord": rule.record()}


async def update_rule(request: Request, body: dict[str, Any], state: ServerState) -> dict[str, Any]:
    rule = await run_in_threadpool(state.sampling.update, body.get("SamplingRuleUpdate"))
    return {"SamplingRuleRecord": rule.record()}


async def delete_rule(request: Request, body: dict[str, Any], state: ServerState) -> dict[str, Any]:
    rule = await run_in_threadpool(state.sampling.delete, body.get("RuleName"), body.get("RuleARN"))
    await run_in_threadpool(state.settings.set_tags, rule.arn, {})
    return {"SamplingRuleRecord": rule.record()}


async def tag_resource(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    await run_in_threadpool(state.settings.tag, body.get("ResourceARN"), body.get("Tags"))
    return {}


async def untag_resource(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    await run_in_threadpool(state.settings.untag, body.get("ResourceARN"), body.get("TagKeys"))
    return {}


async def list_tags(request: Request, body: dict[str, Any], state: ServerState) -> dict[str, Any]:
    tags = await run_in_threadpool(state.settings.tags, body.get("ResourceARN"))
    return {"Tags": tags}  # at most 200: always one page


async def get_encryption(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    return {"EncryptionConfig": state.settings.encryption()}


async def put_encryption(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    return {"EncryptionConfig": await run_in_threadpool(state.settings.put_encryption, body)}


async def put_policy(request: Request, body: dict[str, Any], state: ServerState) -> dict[str, Any]:
    return {"ResourcePolicy": await run_in_threadpool(state.settings.put_policy, body)}


async def list_policies(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    token = body.get("NextToken")
    if token is not None:
        raise InvalidRequest("NextToken is not a token this server issued")
    return {"ResourcePolicies": await run_in_threadpool(state.settings.policies)}


async def delete_policy(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    await run_in_threadpool(
        state.settings.delete_policy, body.get("PolicyName"), body.get("PolicyRevisionId")
    )
    return {}


async def indexing_rules(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    if body.get("NextToken") is not None:
        raise InvalidRequest("NextToken is not a token this server issued")
    return {"IndexingRules": await run_in_threadpool(state.settings.indexing_rules)}


async def update_indexing_rule(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    return {"IndexingRule": await run_in_threadpool(state.settings.update_indexing_rule, body)}


async def get_destination(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    return state.settings.destination()


async def update_destination(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    return await run_in_threadpool(state.settings.update_destination, body)


def _not_here(operation: str, feature: str) -> Handler:
    async def refuse(request: Request, body: dict[str, Any], state: ServerState) -> dict[str, Any]:
        raise InvalidRequest(f"{operation}: {feature} is not available in this Fluoroscope")

    return refuse


_RETRIEVAL: Final = "Transaction Search trace retrieval"

_TABLE: Final[tuple[tuple[str, str, Handler], ...]] = (
    ("/GetSamplingRules", "GetSamplingRules", sampling_rules),
    ("/SamplingTargets", "GetSamplingTargets", sampling_targets),
    ("/SamplingStatisticSummaries", "GetSamplingStatisticSummaries", statistic_summaries),
    ("/CreateSamplingRule", "CreateSamplingRule", create_rule),
    ("/UpdateSamplingRule", "UpdateSamplingRule", update_rule),
    ("/DeleteSamplingRule", "DeleteSamplingRule", delete_rule),
    ("/TagResource", "TagResource", tag_resource),
    ("/UntagResource", "UntagResource", untag_resource),
    ("/ListTagsForResource", "ListTagsForResource", list_tags),
    ("/EncryptionConfig", "GetEncryptionConfig", get_encryption),
    ("/PutEncryptionConfig", "PutEncryptionConfig", put_encryption),
    ("/PutResourcePolicy", "PutResourcePolicy", put_policy),
    ("/ListResourcePolicies", "ListResourcePolicies", list_policies),
    ("/DeleteResourcePolicy", "DeleteResourcePolicy", delete_policy),
    ("/GetIndexingRules", "GetIndexingRules", indexing_rules),
    ("/UpdateIndexingRule", "UpdateIndexingRule", update_indexing_rule),
    ("/GetTraceSegmentDestination", "GetTraceSegmentDestination", get_destination),
    ("/UpdateTraceSegmentDestination", "UpdateTraceSegmentDestination", update_destination),
    *insights.ROUTES,
    (
        "/StartTraceRetrieval",
        "StartTraceRetrieval",
        _not_here("StartTraceRetrieval", _RETRIEVAL),
    ),
    (
        "/ListRetrievedTraces",
        "ListRetrievedTraces",
        _not_here("ListRetrievedTraces", _RETRIEVAL),
    ),
    (
        "/CancelTraceRetrieval",
        "CancelTraceRetrieval",
        _not_here("CancelTraceRetrieval", _RETRIEVAL),
    ),
    (
        "/GetRetrievedTracesGraph",
        "GetRetrievedTracesGraph",
        _not_here("GetRetrievedTracesGraph", _RETRIEVAL),
    ),
)

ROUTES: Final[dict[str, Handler]] = {path: handler for path, _, handler in _TABLE}
OPERATIONS: Final[dict[str, str]] = {path: name for path, name, _ in _TABLE}


async def sampling_live(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    return await run_in_threadpool(state.sampling.live)


async def sampling_what_if(
    request: Request, body: dict[str, Any], state: ServerState
) -> dict[str, Any]:
    """``{StartTime, EndTime, Rules: [SamplingRule...], Period?}`` -> the replay."""
    start, end = require_time(body, "StartTime"), require_time(body, "EndTime")
    if end - start > state.retention_seconds:
        raise InvalidRequest("the window is longer than the retention period")
    period = body.get("Period")
    if period is not None and (not isinstance(period, int) or isinstance(period, bool)):
        raise InvalidRequest("Period must be a whole number of seconds")
    current = await run_in_threadpool(state.sampling.all_rules)
    proposed = proposed_rules(body.get("Rules"), current[-1], state.clock())
    return await run_in_threadpool(what_if, state.store, current, proposed, start, end, period)


API_ROUTES: Final[dict[str, Handler]] = {
    "/api/sampling/live": sampling_live,
    "/api/sampling/whatif": sampling_what_if,
    **insights.API_ROUTES,
}
"""Fluoroscope's own sampling endpoints (POST), served with the X-Ray operations'
error handling."""
