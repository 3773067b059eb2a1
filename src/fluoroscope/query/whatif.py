"""What-if for sampling rules: what a proposed rule set would have kept of the stored
traffic of a window, per rule and over time, beside what the current rules would keep.

The replay runs in the engine over trace summaries (:meth:`Store.replay_sampling`);
this module shapes its rows. Stored traces stand for the requests: where the SDKs
sampled before storing, they are what the current rules kept, and ``stored`` (the
traces per bucket) says so. Blocking (one store query per rule set).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.model.sampling import SamplingRule
from fluoroscope.store.store import Store

__all__ = ["MAX_BUCKETS", "what_if"]

MAX_BUCKETS: Final = 720


def _replay(
    store: Store, rules: Sequence[SamplingRule], start: float, end: float, period: int
) -> list[dict[str, Any]]:
    rows = store.replay_sampling(rules, start, end, period)
    result: list[dict[str, Any]] = [
        {"rule": rule.name, "matched": 0, "kept": 0.0, "series": []} for rule in rules
    ]
    for index, bucket, matched, kept in rows:
        item = result[index]
        item["matched"] += matched
        item["kept"] += kept
        item["series"].append([bucket, matched, round(kept, 3)])
    for item in result:
        item["kept"] = round(item["kept"], 3)
    return result


def what_if(
    store: Store,
    current: Sequence[SamplingRule],
    proposed: Sequence[SamplingRule],
    start: float,
    end: float,
    period: int | None = None,
) -> dict[str, Any]:
    """Both rule sets replayed over ``[start, end)``; ``period`` seconds per bucket
    (chosen for at most 120 buckets when None)."""
    if end <= start:
        raise InvalidRequest("EndTime must follow StartTime")
    if period is None:
        period = max(1, math.ceil((end - start) / 120))
    if period < 1 or (end - start) / period > MAX_BUCKETS:
        raise InvalidRequest(f"Period must be at least 1 s and give at most {MAX_BUCKETS} buckets")
    proposed_result = _replay(store, proposed, start, end, period)
    current_result = _replay(store, current, start, end, period)
    stored: dict[float, int] = {}
    for item in current_result:
        for bucket, matched, _ in item["series"]:
            stored[bucket] = stored.get(bucket, 0) + matched
    return {
        "start": start,
        "end": end,
        "period": period,
        "traces": sum(stored.values()),
        "stored": sorted([b, n] for b, n in stored.items()),
        "proposed": proposed_result,
        "current": current_result,
    }
