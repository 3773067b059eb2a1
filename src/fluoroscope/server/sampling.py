"""Centralized sampling: the rules, the targets, the statistics (reference §4, §7).

:class:`SamplingService` answers CreateSamplingRule, UpdateSamplingRule,
DeleteSamplingRule, GetSamplingRules, GetSamplingTargets and
GetSamplingStatisticSummaries. Rules are persisted in the store and kept in memory, so
the SDKs' polling never reaches the engine; the ``Default`` rule always exists
(editable, never deletable). Rule records carry every classic field and nothing else,
because the official SDKs and the OpenTelemetry samplers read them by fixed key lists.
GetSamplingTargets always answers ``LastRuleModification`` (the latest change,
deletions included, so the SDKs fetch rules again), accepts the OTel sampler's
``SampleCount`` spelling, and splits reservoirs with a
:class:`~fluoroscope.server.quotas.QuotaBook`. A statistics document it cannot take (a
rule that does not exist, counts that are negative or inconsistent, a report older than
the client's previous one) goes into ``UnprocessedStatistics`` and the others are still
answered.

Contract: thread-safe: changes are made one at a time, and the in-memory state has a
lock of its own that is never held while the store is written, so polling and the
counters never wait for a write. Methods that read or write the store block, so the
server calls them from worker threads. Counters of the calls (per rule and per client)
are read by ``/api/status`` and ``/metrics`` without blocking.
"""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Final

from fluoroscope.model.errors import ApiError, InvalidRequest
from fluoroscope.model.sampling import (
    DEFAULT_RULE,
    DEFAULT_RULE_NAME,
    SamplingRule,
    apply_update,
    check_rule_name,
    name_from_rule_arn,
    rule_from_api,
    rule_order,
)
from fluoroscope.server.quotas import INTERVAL, QUOTA_TTL, QuotaBook
from fluoroscope.store.store import Store

__all__ = ["MAX_RULES", "SamplingService", "page", "page_token"]

MAX_RULES: Final = 25
"""Sampling rules per server, the Default rule included (X-Ray's quota per region)."""
MAX_DOCUMENTS: Final = 25
CLIENT_ID_LENGTH: Final = 24
RULES_PER_PAGE: Final = 100
SUMMARIES_PER_PAGE: Final = 100
MAX_COUNT: Final = 2**31 - 1


def page_token(offset: int) -> str:
    """An opaque token for continuing a listing at ``offset``."""
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode()


def page(items: list[Any], token: object, size: int) -> tuple[list[Any], str | None]:
    """The page of ``items`` that ``token`` (None: the first) points at, and the token
    of the next page (None: the last)."""
    offset = 0
    if token is not None:
        try:
            text = base64.urlsafe_b64decode(str(token).encode()).decode()
            if not isinstance(token, str) or not text.startswith("o"):
                raise ValueError
            offset = int(text[1:])
        except ValueError:
            raise InvalidRequest("NextToken is not a token this server issued") from None
    chunk = items[offset : offset + size]
    more = offset + size < len(items)
    return chunk, page_token(offset + size) if more else None


class SamplingService:
    """Sampling rules, targets and statistics (module docstring)."""

    def __init__(
        self,
        store: Store | None = None,
        clock: Callable[[], float] = time.time,
        *,
        rules_per_page: int = RULES_PER_PAGE,
        max_clients: int = 50_000,
    ) -> None:
        self._store = store
        self._clock = clock
        self._rules_per_page = rules_per_page
        self._lock = threading.RLock()  # the in-memory state; never held over a store write
        self._writing = threading.Lock()  # one change at a time, store write included
        self._rules: dict[str, SamplingRule] | None = None
        self._started = float(int(clock()))
        self._modified = self._started
        self._book = QuotaBook(max_clients)
        self.calls: Counter[str] = Counter()  # operation -> calls
        self.rule_reports: Counter[str] = Counter()  # rule -> statistics documents taken
        self.client_polls: Counter[str] = Counter()  # client -> GetSamplingTargets calls
        self.refused: Counter[str] = Counter()  # reason -> documents refused
        self._max_polls = max_clients

    # -- rules -----------------------------------------------------------------------

    def _loaded(self) -> dict[str, SamplingRule]:
        """The rules by name, read from the store on first use (call under the lock)."""
        if self._rules is None:
            rules = {DEFAULT_RULE_NAME: replace(DEFAULT_RULE, created_at=self._started,
                                                modified_at=self._started)}  # fmt: skip
            if self._store is not None:
                for rule in self._store.sampling_rules.all():
                    rules[rule.name] = rule
                self._modified = max(self._started, self._store.sampling_rules.last_change())
            self._rules = rules
        return self._rules

    def all_rules(self) -> list[SamplingRule]:
        """Every rule in the order the SDKs try them."""
        with self._lock:
            return sorted(self._loaded().values(), key=rule_order)

    def last_modification(self) -> float:
        with self._lock:
            self._loaded()
            return self._modified

    def _name(self, name: object, arn: object) -> str:
        if (
            name is not None
            and arn is not None
            and name_from_rule_arn(arn) != check_rule_name(name)
        ):
            raise InvalidRequest("RuleName and RuleARN name different rules")
        if name is not None:
            return check_rule_name(name)
        if arn is not None:
            return name_from_rule_arn(arn)
        raise InvalidRequest("RuleName or RuleARN is required")

    def get(self, name: object = None, arn: object = None) -> SamplingRule:
        with self._lock:
            checked = self._name(name, arn)
            rule = self._loaded().get(checked)
            if rule is None:
                raise InvalidRequest(f"sampling rule {checked!r} does not exist")
            return rule

    def _touch(self, now: float) -> None:
        self._modified = max(now, self._modified + 1e-6)

    def create(self, body: object) -> SamplingRule:
        """CreateSamplingRule's ``SamplingRule``, checked and stored."""
        with self._writing:
            now = self._clock()
            rule = rule_from_api(body, round(now, 3))
            with self._lock:
                rules = self._loaded()
                if rule.name in rules:
                    raise InvalidRequest(
                        f"RuleName: a sampling rule named {rule.name!r} already exists"
                    )
                if len(rules) >= MAX_RULES:
                    raise ApiError(
                        f"at most {MAX_RULES} sampling rules can exist (the Default rule included)",
                        code="RuleLimitExceededException",
                    )
            self._store_put(rule)
            with self._lock:
                self._loaded()[rule.name] = rule
                self._touch(now)
            return rule

    def update(self, update: object) -> SamplingRule:
        """UpdateSamplingRule's ``SamplingRuleUpdate``, checked and stored."""
        if not isinstance(update, Mapping):
            raise InvalidRequest("SamplingRuleUpdate is required and must be an object")
        with self._writing:
            current = self.get(update.get("RuleName"), update.get("RuleARN"))
            now = self._clock()
            rule = apply_update(current, update, round(now, 3))
            self._store_put(rule)
            with self._lock:
                self._loaded()[rule.name] = rule
                self._touch(now)
            return rule

    def delete(self, name: object = None, arn: object = None) -> SamplingRule:
        """Delete a rule (never the Default rule); returns it."""
        with self._writing:
            rule = self.get(name, arn)
            if rule.is_default:
                raise InvalidRequest("the Default rule cannot be deleted")
            if self._store is not None:
                self._store.sampling_rules.delete(rule.name)
            with self._lock:
                del self._loaded()[rule.name]
                self._book.forget_rule(rule.name)
                self._touch(self._clock())
            return rule

    def _store_put(self, rule: SamplingRule) -> None:
        if self._store is not None:
            self._store.sampling_rules.put(rule)

    def rules(self, token: object = None) -> dict[str, Any]:
        """The GetSamplingRules response body."""
        self.calls["GetSamplingRules"] += 1
        records = [rule.record() for rule in self.all_rules()]
        chunk, following = page(records, token, self._rules_per_page)
        result: dict[str, Any] = {"SamplingRuleRecords": chunk}
        if following:
            result["NextToken"] = following
        return result

    # -- targets ---------------------------------------------------------------------

    def targets(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """The GetSamplingTargets response body for a request body."""
        documents = body.get("SamplingStatisticsDocuments")
        if not isinstance(documents, list):
            raise InvalidRequest("SamplingStatisticsDocuments is required and must be a list")
        if len(documents) > MAX_DOCUMENTS:
            raise InvalidRequest(f"at most {MAX_DOCUMENTS} SamplingStatisticsDocuments per call")
        boosts = body.get("SamplingBoostStatisticsDocuments")
        targets: list[dict[str, Any]] = []
        unprocessed: list[dict[str, Any]] = []
        with self._lock:
            self.calls["GetSamplingTargets"] += 1
            rules = self._loaded()
            now = self._clock()
            polled: set[str] = set()
            for doc in documents:
                refusal = self._take(doc, rules, now, targets)
                if refusal is not None:
                    unprocessed.append(refusal)
                    self.refused[refusal["ErrorCode"]] += 1
                elif isinstance(doc, Mapping):
                    polled.add(str(doc["ClientID"]))
            for client in polled:
                self._poll(client)
            result: dict[str, Any] = {
                "SamplingTargetDocuments": targets,
                "LastRuleModification": self._modified,
                "UnprocessedStatistics": unprocessed,
            }
        if boosts is not None:
            result["UnprocessedBoostStatistics"] = []  # no rule has a boost here
        return result

    def _poll(self, client: str) -> None:
        self.client_polls[client] += 1
        if len(self.client_polls) > self._max_polls:  # keep the busiest clients
            for name, _ in self.client_polls.most_common()[self._max_polls // 2 :]:
                del self.client_polls[name]

    def _take(
        self,
        doc: object,
        rules: dict[str, SamplingRule],
        now: float,
        targets: list[dict[str, Any]],
    ) -> dict[str, str] | None:
        """Record one statistics document and append its target; or the refusal."""
        if not isinstance(doc, Mapping):
            return _refusal("", "400", "a SamplingStatisticsDocument must be an object")
        name = doc.get("RuleName")
        if not isinstance(name, str) or not name:
            return _refusal("", "400", "RuleName is required")
        client = doc.get("ClientID")
        if not isinstance(client, str) or len(client) != CLIENT_ID_LENGTH:
            return _refusal(name, "400", f"ClientID must be {CLIENT_ID_LENGTH} characters")
        counts = []
        for key in ("RequestCount", "SampledCount", "BorrowCount"):
            value = doc.get(key, doc.get("SampleCount") if key == "SampledCount" else 0)
            if value is None and key == "BorrowCount":
                value = 0
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool):
                return _refusal(name, "400", f"{key} is required and must be a whole number")
            if not 0 <= value <= MAX_COUNT:
                return _refusal(
                    name, "400", f"{key} must be between 0 and {MAX_COUNT}, got {value}"
                )
            counts.append(value)
        requests, sampled, borrowed = counts
        if sampled > requests or borrowed > requests:
            return _refusal(name, "400", "SampledCount and BorrowCount cannot exceed RequestCount")
        timestamp = doc.get("Timestamp")
        if not isinstance(timestamp, int | float) or isinstance(timestamp, bool):
            return _refusal(name, "400", "Timestamp is required and must be epoch seconds")
        rule = rules.get(name)
        if rule is None:
            return _refusal(name, "404", f"no sampling rule named {name!r}")
        last = self._book.last(name, client)
        if last is not None and float(timestamp) < last.timestamp:
            return _refusal(
                name, "400", "Timestamp precedes this client's previous report for the rule"
            )
        quota = self._book.report(
            name, rule.reservoir_size, client, float(timestamp), (requests, sampled, borrowed), now
        )
        self.rule_reports[name] += 1
        targets.append(
            {
                "RuleName": name,
                "FixedRate": rule.fixed_rate,
                "ReservoirQuota": quota,
                "ReservoirQuotaTTL": float(int(now + QUOTA_TTL)),
                "Interval": INTERVAL,
            }
        )
        return None

    # -- statistics ------------------------------------------------------------------

    def statistic_summaries(self, token: object = None) -> dict[str, Any]:
        """GetSamplingStatisticSummaries: per rule, each kept interval, newest first."""
        with self._lock:
            self.calls["GetSamplingStatisticSummaries"] += 1
            items = [
                {
                    "RuleName": rule.name,
                    "Timestamp": window.start,
                    "RequestCount": window.requests,
                    "BorrowCount": window.borrowed,
                    "SampledCount": window.sampled,
                }
                for rule in sorted(self._loaded().values(), key=rule_order)
                for window in reversed(self._book.windows(rule.name))
            ]
        chunk, following = page(items, token, SUMMARIES_PER_PAGE)
        result: dict[str, Any] = {"SamplingStatisticSummaries": chunk}
        if following:
            result["NextToken"] = following
        return result

    def live(self, clients_per_rule: int = 50) -> dict[str, Any]:
        """Per rule: its intervals' totals and its most recent clients (the console)."""
        with self._lock:
            now = self._clock()
            return {
                "now": now,
                "interval": INTERVAL,
                "rules": [
                    {
                        "name": rule.name,
                        "active_clients": self._book.active_clients(rule.name, now),
                        "windows": [
                            [w.start, w.requests, w.sampled, w.borrowed]
                            for w in self._book.windows(rule.name)
                        ],
                        "clients": [
                            {
                                "client": c.client,
                                "heard": c.heard,
                                "requests": c.requests,
                                "sampled": c.sampled,
                                "borrowed": c.borrowed,
                                "quota": c.quota,
                                "reports": c.reports,
                                "total_requests": c.total_requests,
                                "total_sampled": c.total_sampled,
                                "total_borrowed": c.total_borrowed,
                            }
                            for c in self._book.clients(rule.name, clients_per_rule)
                        ],
                    }
                    for rule in sorted(self._loaded().values(), key=rule_order)
                ],
            }

    def status(self, top_clients: int = 20) -> dict[str, Any]:
        """The sampling API's counters, for ``/api/status``: calls by operation,
        statistics documents by rule, polls of the busiest clients. Never blocks on the
        store (rules not loaded yet are reported as such)."""
        with self._lock:
            now = self._clock()
            active = {r: self._book.active_clients(r, now) for r in self.rule_reports}
            return {
                "calls": dict(self.calls),
                "reports_by_rule": dict(self.rule_reports),
                "active_clients_by_rule": active,
                "clients_known": len(self.client_polls),
                "polls_by_client": dict(self.client_polls.most_common(top_clients)),
                "refused_documents": dict(self.refused),
                "forgotten_clients": self._book.forgotten,
            }


def _refusal(rule: str, code: str, message: str) -> dict[str, str]:
    return {"RuleName": rule, "ErrorCode": code, "Message": message}
