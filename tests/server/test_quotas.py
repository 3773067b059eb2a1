"""The reservoir split across clients (QuotaBook and SamplingService with a set clock)."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

from fluoroscope.server.quotas import ACTIVE_WINDOW, QUOTA_TTL, QuotaBook
from fluoroscope.server.sampling import SamplingService


def test_quotas_follow_traffic_and_add_up_to_the_reservoir() -> None:
    book = QuotaBook()
    rates = {"a": 600, "b": 300, "c": 100}
    quotas: dict[str, int] = {}
    for second, (client, count) in enumerate(rates.items()):
        book.report("r", 10, client, 1000.0 + second, (count, 1, 0), now=1000.0 + second)
    for second, (client, count) in enumerate(rates.items()):  # every client heard: the split
        now = 1010.0 + 2 * second
        quotas[client] = book.report("r", 10, client, now, (count, 1, 0), now=now)
    assert quotas == {"a": 6, "b": 3, "c": 1}


def test_quotas_never_exceed_the_reservoir_with_many_small_clients() -> None:
    book = QuotaBook()
    clients = [f"{i:024d}" for i in range(7)]
    for client in clients:
        book.report("r", 3, client, 100.0, (10, 0, 0), now=100.0)
    # the first one's quota of 3 goes back, but it may still be in use in this second
    # (and the next): the others get their shares once it can no longer be
    first = {c: book.report("r", 3, c, 110.0, (10, 0, 0), now=110.0) for c in clients}
    assert sum(first.values()) <= 3
    given = {c: book.report("r", 3, c, 120.0, (10, 0, 0), now=120.0) for c in clients}
    assert sum(given.values()) == 3 and set(given.values()) == {0, 1}


def test_clients_that_stop_reporting_leave_the_split() -> None:
    book = QuotaBook()
    book.report("r", 10, "a", 0.0, (100, 0, 0), now=0.0)
    book.report("r", 10, "b", 0.0, (100, 0, 0), now=0.0)
    assert book.report("r", 10, "a", 10.0, (100, 0, 0), now=10.0) == 5
    later = ACTIVE_WINDOW + 1  # b went quiet
    assert book.report("r", 10, "a", later, (100, 0, 0), now=later) == 10
    assert book.active_clients("r", later) == 1


def test_ten_thousand_clients_stay_bounded_and_fast() -> None:
    clock = [1000.0]
    service = SamplingService(None, lambda: clock[0], max_clients=5000)
    tracemalloc.start()
    started = time.perf_counter()
    for i in range(10_000):
        clock[0] = 1000.0 + i / 1000  # all within ten seconds
        answer = service.targets(_docs(f"{i:024x}", clock[0]))
        assert answer["SamplingTargetDocuments"][0]["ReservoirQuota"] in (0, 1)
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    status = service.status()
    assert status["forgotten_clients"] == 5000  # the oldest forgotten, not kept forever
    assert status["calls"]["GetSamplingTargets"] == 10_000
    assert peak < 64 * 1024 * 1024
    assert elapsed < 60  # O(clients) per second, not per call (generous: shared machine)
    # and another client is still answered with its share
    other = service.targets(_docs("f" * 24, clock[0]))
    assert other["SamplingTargetDocuments"][0]["RuleName"] == "Default"


def _docs(client: str, now: float) -> dict[str, Any]:
    return {
        "SamplingStatisticsDocuments": [
            {"RuleName": "Default", "ClientID": client, "Timestamp": now,
             "RequestCount": 5, "SampledCount": 1, "BorrowCount": 0}
        ]
    }  # fmt: skip


def test_deleted_rule_statistics_are_refused() -> None:
    clock = [50.0]
    service = SamplingService(None, lambda: clock[0])
    service.create({"RuleName": "gone", "ResourceARN": "*", "Priority": 1, "FixedRate": 0.1,
                    "ReservoirSize": 2, "ServiceName": "*", "ServiceType": "*", "Host": "*",
                    "HTTPMethod": "*", "URLPath": "*", "Version": 1})  # fmt: skip
    before = service.last_modification()
    clock[0] = 60.0
    service.delete("gone")
    assert service.last_modification() > before  # the SDKs fetch the rules again
    docs = _docs("a" * 24, 60.0)
    docs["SamplingStatisticsDocuments"][0]["RuleName"] = "gone"
    answer = service.targets(docs)
    assert answer["UnprocessedStatistics"][0]["ErrorCode"] == "404"


def test_quotas_held_never_exceed_the_reservoir() -> None:
    """Clients arriving, changing rates and leaving in any order: at every moment the
    unexpired quotas add up to at most the reservoir, and the split settles on it."""
    import random

    chance = random.Random(7)
    book = QuotaBook()
    held: dict[str, tuple[int, float]] = {}  # client -> (quota, heard)
    now = 0.0
    for _ in range(5000):
        now += chance.random() * 0.05
        client = f"c{chance.randrange(40)}"
        quota = book.report("r", 17, client, now, (chance.randrange(1, 500), 0, 0), now=now)
        held[client] = (quota, now)
        live = sum(q for q, heard in held.values() if now - heard <= ACTIVE_WINDOW)
        assert live <= 17, (now, live)
    steady = {f"c{i}": 0 for i in range(5)}
    for round_ in range(3):  # five clients at a steady rate, three report rounds
        for client in steady:
            now = 1000.0 + 10 * round_ + int(client[1:])
            steady[client] = book.report("r", 17, client, now, (100, 0, 0), now=now)
    assert sum(steady.values()) == 17 and set(steady.values()) <= {3, 4}


def test_quotas_usable_within_a_second_never_exceed_the_reservoir() -> None:
    """The SDKs count their reservoir per wall-clock second, so a client may use in one
    second every quota it held during it: the one it began the second with (kept up to
    a second after it was replaced, a reply heard late; until its TTL's second ends, if
    never replaced) and any given meanwhile. Summed over the clients, at most the
    reservoir, while clients come and go and their rates' shares keep moving."""
    import random

    chance = random.Random(11)
    book = QuotaBook()
    reservoir = 6
    usable: list[tuple[str, int, float, float]] = []  # client, quota, from, until
    current: dict[str, tuple[int, float]] = {}  # client -> (quota, given at)
    now = 1000.0
    clients = [f"c{i}" for i in range(8)]
    for step in range(6000):
        if step % 700 == 0:  # some clients go quiet (their quotas expire), others return
            active = chance.sample(clients, chance.randrange(2, len(clients)))
        now += chance.random() * 0.15
        client = chance.choice(active)
        quota = book.report("r", reservoir, client, now, (chance.randrange(1, 300), 0, 0), now=now)
        if client in current:
            old, given = current[client]
            usable.append((client, old, given, min(now + 1, int(given + QUOTA_TTL) + 1)))
        current[client] = (quota, now)
    for client, (quota, given) in current.items():
        usable.append((client, quota, given, int(given + QUOTA_TTL) + 1))
    for second in range(1000, int(now) + 1):
        most: dict[str, int] = {}
        for client, quota, start, end in usable:
            if start < second + 1 and end > second:
                most[client] = max(most.get(client, 0), quota)
        assert sum(most.values()) <= reservoir, (second, most)


def test_rules_pages_follow_next_token(store: Any) -> None:
    """GetSamplingRules in pages (a page size below the rule limit), over a real store."""
    service = SamplingService(store, rules_per_page=10)
    for i in range(20):
        service.create({"RuleName": f"rule-{i:02d}", "ResourceARN": "*", "Priority": 50 - i,
                        "FixedRate": 0.1, "ReservoirSize": 1, "ServiceName": "*",
                        "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*",
                        "Version": 1})  # fmt: skip
    names: list[str] = []
    token = None
    pages = 0
    while True:
        answer = service.rules(token)
        names += [r["SamplingRule"]["RuleName"] for r in answer["SamplingRuleRecords"]]
        pages += 1
        token = answer.get("NextToken")
        if token is None:
            break
    assert pages == 3 and len(names) == 21
    assert names == [f"rule-{i:02d}" for i in range(19, -1, -1)] + ["Default"]
    again = SamplingService(store, rules_per_page=10)  # read back from the store
    assert [r.name for r in again.all_rules()] == names
