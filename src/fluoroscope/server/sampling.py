"""Centralized sampling with the Default rule (reference §4.6, §7.3-7.5).

``GetSamplingRules`` returns the Default rule (reservoir 1/s, then 5 %) with every
classic field and nothing else, because the official SDKs and the OpenTelemetry
samplers read rules by fixed key lists. ``GetSamplingTargets`` splits each rule's
reservoir among the clients that reported in the last interval, in proportion to their
request counts, and always answers ``LastRuleModification``. Accepts the OTel
sampler's ``SampleCount`` spelling. Thread-safe (one lock).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from fluoroscope.model.errors import InvalidRequest

__all__ = ["DEFAULT_RULE", "SamplingService"]

_INTERVAL: Final = 10
_QUOTA_TTL: Final = 60.0
_MAX_DOCUMENTS: Final = 25


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    priority: int
    fixed_rate: float
    reservoir_size: int

    def record(self, arn_prefix: str, created_at: float) -> dict[str, Any]:
        return {
            "SamplingRule": {
                "RuleName": self.name,
                "RuleARN": f"{arn_prefix}{self.name}",
                "ResourceARN": "*",
                "Priority": self.priority,
                "FixedRate": self.fixed_rate,
                "ReservoirSize": self.reservoir_size,
                "ServiceName": "*",
                "ServiceType": "*",
                "Host": "*",
                "HTTPMethod": "*",
                "URLPath": "*",
                "Version": 1,
                "Attributes": {},
            },
            "CreatedAt": created_at,
            "ModifiedAt": created_at,
        }


DEFAULT_RULE: Final = Rule("Default", 10000, 0.05, 1)
_ARN_PREFIX: Final = "arn:aws:xray:us-east-1:000000000000:sampling-rule/"


class SamplingService:
    """Answers GetSamplingRules and GetSamplingTargets."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._created = float(int(clock()))
        self._rules = {DEFAULT_RULE.name: DEFAULT_RULE}
        self._lock = threading.Lock()
        self._demand: dict[
            str, dict[str, tuple[float, int]]
        ] = {}  # rule -> client -> (when, count)

    def rules(self) -> dict[str, Any]:
        """The GetSamplingRules response body."""
        return {
            "SamplingRuleRecords": [
                rule.record(_ARN_PREFIX, self._created)
                for rule in sorted(self._rules.values(), key=lambda r: (r.priority, r.name))
            ]
        }

    def targets(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The GetSamplingTargets response body for a request body."""
        documents = body.get("SamplingStatisticsDocuments")
        if not isinstance(documents, list):
            raise InvalidRequest("SamplingStatisticsDocuments is required and must be a list")
        if len(documents) > _MAX_DOCUMENTS:
            raise InvalidRequest(f"at most {_MAX_DOCUMENTS} SamplingStatisticsDocuments per call")
        now = self._clock()
        targets: list[dict[str, Any]] = []
        unprocessed: list[dict[str, Any]] = []
        with self._lock:
            reported: list[tuple[Rule, str]] = []
            for doc in documents:
                if not isinstance(doc, Mapping):
                    raise InvalidRequest("each SamplingStatisticsDocument must be an object")
                name = doc.get("RuleName")
                client = doc.get("ClientID")
                requests = doc.get("RequestCount")
                sampled = doc.get("SampledCount", doc.get("SampleCount"))
                if not isinstance(name, str) or not isinstance(client, str):
                    raise InvalidRequest("RuleName and ClientID are required strings")
                if not isinstance(requests, int) or not isinstance(sampled, int):
                    raise InvalidRequest("RequestCount and SampledCount are required integers")
                rule = self._rules.get(name)
                if rule is None:
                    unprocessed.append(
                        {
                            "RuleName": name,
                            "ErrorCode": "404",
                            "Message": f"no sampling rule named {name!r}",
                        }
                    )
                    continue
                self._demand.setdefault(name, {})[client] = (now, max(requests, 0))
                reported.append((rule, client))
            for rule, client in reported:
                targets.append(
                    {
                        "RuleName": rule.name,
                        "FixedRate": rule.fixed_rate,
                        "ReservoirQuota": self._quota(rule, client, now),
                        "ReservoirQuotaTTL": float(int(now + _QUOTA_TTL)),
                        "Interval": _INTERVAL,
                    }
                )
        return {
            "SamplingTargetDocuments": targets,
            "LastRuleModification": self._created,
            "UnprocessedStatistics": unprocessed,
        }

    def _quota(self, rule: Rule, client: str, now: float) -> int:
        """This client's share of the rule's per-second reservoir (largest remainders)."""
        demand = self._demand[rule.name]
        for other, (when, _) in list(demand.items()):
            if now - when > 3 * _INTERVAL:
                del demand[other]
        total = sum(count for _, count in demand.values()) or len(demand)
        shares = {
            c: rule.reservoir_size * ((count or 1) if total == len(demand) else count) / total
            for c, (_, count) in demand.items()
        }
        quotas = {c: int(share) for c, share in shares.items()}
        left = rule.reservoir_size - sum(quotas.values())
        for c in sorted(shares, key=lambda c: (quotas[c] - shares[c], c))[: max(left, 0)]:
            quotas[c] += 1
        return quotas.get(client, 0)
