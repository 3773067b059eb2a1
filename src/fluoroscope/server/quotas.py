"""Reservoir quotas across clients, and the sampling statistics they report (§7.4-7.5).

Each rule's reservoir (requests per second, over every client) is split among the
clients that reported statistics for it within the last :data:`ACTIVE_WINDOW` seconds,
in proportion to their request rates (largest remainders, so the shares add up to the
reservoir exactly and each client's is the floor or the ceiling of its part). The split
is recomputed at most once a second per rule, so 10,000 clients polling cost O(clients)
a second, not O(clients²); a client not yet in the split gets the floor of its share
until the next one. A quota lives :data:`QUOTA_TTL` seconds (as long as a client counts
as active): a client whose quota ran out borrows, as the SDKs do.

The quotas held at any moment never add up to more than the reservoir: a client is
given its share only as far as the quotas the others still hold leave room. When many
clients arrive at once, the first ones hold large quotas until their next report (one
interval later) and the newcomers get what is left, so a rule never samples more than
its reservoir each second during the ramp either; the split is even after about two
intervals.

Nor within a wall-clock second, the SDKs' reservoir period: a client counts what it
took in the current second, so one whose quota is lowered mid-second may have used its
old quota already, and one that hears of its new quota after the second turned uses
the old one a little longer. A quota taken back - lowered, or left to expire - is
therefore still counted as held until the end of the next second (an expired one until
the end of its TTL's second), and meanwhile given to no one else. Without this a quota
moving between clients (their rates' shares crossing a rounding boundary) let the rule
sample more than its reservoir in that second: 8 of 6, measured with three SDK
processes (tests/server/test_sdk_sampling.py).

Memory is bounded: at most ``max_clients`` (rule, client) pairs are remembered (the
least recently heard from are forgotten first), and per rule the last
:data:`WINDOWS_KEPT` intervals of totals.

Not thread-safe by itself: :class:`~fluoroscope.server.sampling.SamplingService`
calls it under its lock. Never blocks; ``now`` comes from the caller's clock.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import Final

__all__ = [
    "ACTIVE_WINDOW",
    "INTERVAL",
    "QUOTA_TTL",
    "WINDOWS_KEPT",
    "ClientReport",
    "QuotaBook",
    "Window",
]

INTERVAL: Final = 10
"""Seconds between a client's reports (the ``Interval`` handed out)."""
ACTIVE_WINDOW: Final = 1.5 * INTERVAL
"""A client counts in a rule's split while its last report is at most this old."""
QUOTA_TTL: Final = 1.5 * INTERVAL
WINDOWS_KEPT: Final = 60
"""Intervals of per-rule totals kept (10 minutes)."""


@dataclass(slots=True)
class ClientReport:
    """What one client last reported for one rule, and its totals since first heard."""

    rule: str
    client: str
    heard: float  # server clock at the last report
    timestamp: float  # the client's own Timestamp of its last report
    rate: float  # requests per second in its last report
    requests: int
    sampled: int
    borrowed: int
    reports: int = 0
    total_requests: int = 0
    total_sampled: int = 0
    total_borrowed: int = 0
    quota: int = 0


@dataclass(slots=True)
class Window:
    """One rule's totals over one interval starting at ``start`` (epoch seconds)."""

    start: float
    requests: int = 0
    sampled: int = 0
    borrowed: int = 0


@dataclass(slots=True)
class _Split:
    at: float = -math.inf
    quotas: dict[str, int] = field(default_factory=dict)


class QuotaBook:
    """Per rule and client: the last report, the rate sums, the quotas (module doc)."""

    def __init__(self, max_clients: int = 50_000) -> None:
        self.max_clients = max_clients
        self._reports: OrderedDict[tuple[str, str], ClientReport] = OrderedDict()  # LRU
        self._live: dict[str, OrderedDict[str, ClientReport]] = {}  # by time heard
        self._rate_sum: dict[str, float] = {}
        self._held: dict[str, int] = {}  # rule -> quotas its active clients hold
        # rule -> {last second: quota taken back but maybe still in use until then}
        self._cooling: dict[str, dict[int, int]] = {}
        self._splits: dict[str, _Split] = {}
        self._windows: dict[str, deque[Window]] = {}
        self.forgotten = 0  # (rule, client) pairs dropped to stay within max_clients

    # -- bookkeeping -----------------------------------------------------------------

    def _expire(self, rule: str, now: float) -> OrderedDict[str, ClientReport]:
        """The rule's clients heard within the active window (older ones taken out)."""
        live = self._live.setdefault(rule, OrderedDict())
        while live:
            client, oldest = next(iter(live.items()))
            if now - oldest.heard <= ACTIVE_WINDOW:
                break
            self._deactivate(rule, client, expired=True)
        return live

    def _deactivate(self, rule: str, client: str, *, expired: bool = False) -> ClientReport | None:
        """Take the client out of the rule's split; the report if it was in. ``expired``:
        its quota is kept counted until the end of its TTL's second (module doc)."""
        report = self._live.get(rule, {}).pop(client, None)  # type: ignore[call-overload]
        if report is not None:
            left = self._rate_sum.get(rule, 0.0) - report.rate
            self._rate_sum[rule] = left if self._live[rule] else 0.0
            self._held[rule] = self._held.get(rule, 0) - report.quota if self._live[rule] else 0
            if expired:
                self._cool(rule, int(report.heard + QUOTA_TTL), report.quota)
        return report

    def _cool(self, rule: str, until: int, amount: int) -> None:
        """Keep ``amount`` of the rule's reservoir given to no one until second ``until``
        has ended."""
        if amount > 0:
            cooling = self._cooling.setdefault(rule, {})
            cooling[until] = cooling.get(until, 0) + amount

    def _cooling_now(self, rule: str, now: float) -> int:
        """The quota taken back from the rule's clients that may still be in use now."""
        cooling = self._cooling.get(rule)
        if not cooling:
            return 0
        second = int(now)
        for until in [u for u in cooling if u < second]:  # a few keys: this and the next
            del cooling[until]
        return sum(cooling.values())

    def _bound(self) -> None:
        while len(self._reports) > self.max_clients:
            (rule, client), _ = self._reports.popitem(last=False)
            self._deactivate(rule, client, expired=True)
            self.forgotten += 1

    # -- the API ---------------------------------------------------------------------

    def last(self, rule: str, client: str) -> ClientReport | None:
        """The client's last report for ``rule``."""
        return self._reports.get((rule, client))

    def report(
        self,
        rule: str,
        reservoir: int,
        client: str,
        timestamp: float,
        counts: tuple[int, int, int],
        now: float,
    ) -> int:
        """Record one statistics document (counts = requests, sampled, borrowed, over
        the client's last interval) and answer the client's reservoir quota."""
        requests, sampled, borrowed = counts
        live = self._expire(rule, now)
        was = self._deactivate(rule, client)
        before = was.quota if was is not None else 0  # what it may still use this second
        key = (rule, client)
        report = self._reports.pop(key, None)
        elapsed = float(INTERVAL)
        if report is not None and 1 <= timestamp - report.timestamp <= 6 * INTERVAL:
            elapsed = timestamp - report.timestamp
        if report is None:
            report = ClientReport(rule, client, now, timestamp, 0.0, 0, 0, 0)
        report.heard, report.timestamp = now, timestamp
        report.rate = requests / elapsed
        report.requests, report.sampled, report.borrowed = requests, sampled, borrowed
        report.reports += 1
        report.total_requests += requests
        report.total_sampled += sampled
        report.total_borrowed += borrowed
        self._reports[key] = report
        live[client] = report
        self._rate_sum[rule] = self._rate_sum.get(rule, 0.0) + report.rate
        self._bound()
        self._add_window(rule, now, counts)
        share = self._quota(rule, reservoir, client, report.rate, now)
        held = self._held.get(rule, 0)
        room = reservoir - held - self._cooling_now(rule, now)
        report.quota = max(0, min(share, room))
        self._held[rule] = held + report.quota
        self._cool(rule, int(now) + 1, before - report.quota)
        return report.quota

    def _add_window(self, rule: str, now: float, counts: tuple[int, int, int]) -> None:
        windows = self._windows.setdefault(rule, deque(maxlen=WINDOWS_KEPT))
        start = float(int(now // INTERVAL) * INTERVAL)
        if not windows or windows[-1].start != start:
            windows.append(Window(start))
        window = windows[-1]
        window.requests += counts[0]
        window.sampled += counts[1]
        window.borrowed += counts[2]

    def _quota(self, rule: str, reservoir: int, client: str, rate: float, now: float) -> int:
        if reservoir <= 0:
            return 0
        split = self._splits.setdefault(rule, _Split())
        if now - split.at >= 1.0 or now < split.at:
            split.at = now
            split.quotas = self._split(rule, reservoir)
        if client in split.quotas:
            return split.quotas[client]
        total = self._rate_sum.get(rule, 0.0)
        active = max(len(self._live.get(rule, ())), 1)
        share = rate / total if total > 0 else 1.0 / active
        return int(reservoir * share)

    def _split(self, rule: str, reservoir: int) -> dict[str, int]:
        """Largest-remainder split of ``reservoir`` among the rule's active clients."""
        active = list(self._live.get(rule, {}).values())
        if not active:
            return {}
        total = sum(r.rate for r in active)
        shares = {
            r.client: reservoir * (r.rate / total if total > 0 else 1.0 / len(active))
            for r in active
        }
        quotas = {c: int(s) for c, s in shares.items()}
        left = reservoir - sum(quotas.values())
        by_remainder = sorted(shares, key=lambda c: (quotas[c] - shares[c], c))
        for c in by_remainder[: max(left, 0)]:
            quotas[c] += 1
        return quotas

    def forget_rule(self, rule: str) -> None:
        """Drop everything about ``rule`` (it was deleted)."""
        for key in [k for k in self._reports if k[0] == rule]:
            del self._reports[key]
        self._rate_sum.pop(rule, None)
        self._held.pop(rule, None)
        self._cooling.pop(rule, None)
        self._live.pop(rule, None)
        self._splits.pop(rule, None)
        self._windows.pop(rule, None)

    def windows(self, rule: str) -> list[Window]:
        """The rule's kept intervals, oldest first (copies)."""
        return [
            Window(w.start, w.requests, w.sampled, w.borrowed) for w in self._windows.get(rule, ())
        ]

    def clients(self, rule: str | None = None, limit: int = 100) -> list[ClientReport]:
        """The most recently heard reports (of ``rule``, or all), newest first (copies)."""
        found: list[ClientReport] = []
        for report in reversed(self._reports.values()):
            if rule is None or report.rule == rule:
                found.append(replace(report))
                if len(found) >= limit:
                    break
        return found

    def active_clients(self, rule: str, now: float) -> int:
        """Clients counted in the rule's split now."""
        return len(self._expire(rule, now))

    def known(self) -> int:
        """(rule, client) pairs remembered."""
        return len(self._reports)
