"""Insights from generated traffic with a known incident, over a real embedded store.

The engine's clock is injected: the same stored traffic is evaluated as it would be
while the incident unfolds (the insight opens, naming ledger, the service whose faults
its callees do not explain) and after it (the insight is closed where the fault rate
returned to its band). A group whose history is too short gets a reason, no insight.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.query.faultinsights import BandSettings, InsightEngine
from fluoroscope.query.groups import GroupService
from fluoroscope.query.groupstats import GroupStats
from fluoroscope.store.store import Store
from tests.insightgen import traffic

T0 = (int(time.time()) - 4 * 3600) // 60 * 60  # the first minute of the generated traffic
HISTORY, INCIDENT, AFTER = 45, range(45, 53), 12
SETTINGS = BandSettings(history_minutes=120, min_minutes=30, lookback_minutes=120)


@pytest.fixture(scope="module")
def store(chdb_dir: Path) -> Iterator[Store]:
    opened = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    docs = traffic(T0, HISTORY + len(INCIDENT) + AFTER, INCIDENT)
    opened.write(Assembler(opened).assemble(docs))
    GroupService(opened).create("checkout", 'service("api")', True, False)
    GroupService(opened).create("quiet", 'service("api")', False, False)
    yield opened
    opened.close()


def _engine(store: Store, now: float, **changes: int) -> InsightEngine:
    groups = GroupService(store)
    settings = BandSettings(**{**SETTINGS.__dict__, **changes}) if changes else SETTINGS
    tracked = GroupStats(store, groups, clock=lambda: now)
    return InsightEngine(store, groups, tracked, clock=lambda: now, settings=settings)


def _minute(index: int) -> float:
    return float(T0 + index * 60)


def test_an_incident_opens_an_insight_naming_the_service_then_closes_it(store: Store) -> None:
    during = _engine(store, _minute(INCIDENT.start + 4) + 61)
    (state,) = during.evaluate()
    assert state.group == "checkout" and state.state == "ACTIVE"
    (insight,) = during.insights()
    assert insight["State"] == "ACTIVE" and "EndTime" not in insight
    assert insight["StartTime"] == _minute(INCIDENT.start)
    assert insight["RootCauseServiceId"]["Name"] == "ledger"
    names = [s["ServiceId"]["Name"] for s in insight["TopAnomalousServices"]]
    assert set(names) == {"api", "billing", "ledger"}
    client = insight["ClientRequestImpactStatistics"]
    assert client["TotalCount"] == 6 * 4 and client["FaultCount"] == 4 * 4
    assert insight["RootCauseServiceRequestImpactStatistics"]["FaultCount"] == 16
    assert len(insight["Events"]) == 1

    after = _engine(store, _minute(HISTORY + len(INCIDENT) + AFTER) + 61)
    (state,) = after.evaluate()
    assert state.state == "OK"
    (closed,) = after.insights()
    assert closed["InsightId"] == insight["InsightId"]
    assert closed["State"] == "CLOSED"
    assert closed["EndTime"] == _minute(INCIDENT.stop)
    assert closed["RootCauseServiceId"]["Name"] == "ledger"
    assert closed["ClientRequestImpactStatistics"]["FaultCount"] == 4 * len(INCIDENT)
    assert [e.get("Closed", False) for e in closed["Events"]] == [False, True]
    rates = {p["Time"]: p for p in closed["Timeline"]}
    peak = rates[_minute(INCIDENT.start + 1)]
    assert peak["Rate"] > peak["Upper"]
    calm = rates[_minute(INCIDENT.stop + 3)]
    assert calm["Lower"] <= calm["Rate"] <= calm["Upper"]

    later = _minute(HISTORY + len(INCIDENT) + AFTER) + 3 * 3600  # past the scan
    groups = GroupService(store)
    forgetting = InsightEngine(
        store, groups, GroupStats(store, groups, clock=lambda: later),
        clock=lambda: later, settings=SETTINGS, retention_seconds=1800,
    )  # fmt: skip
    forgetting.evaluate()
    assert forgetting.insights() == []  # closed for longer than the retention period


def test_a_history_too_short_gives_a_reason_and_no_insight(chdb_dir: Path) -> None:
    store = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    try:
        store.write(Assembler(store).assemble(traffic(T0, 20, range(10, 15))))
        GroupService(store).create("young", None, True, False)
        engine = _engine(store, _minute(20) + 61)
        (state,) = engine.evaluate()
        assert state.state == "LEARNING"
        assert "a band needs 30" in state.reason
        assert engine.insights() == []
    finally:
        store.close()


def test_minutes_without_traffic_neither_close_nor_open(chdb_dir: Path) -> None:
    store = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    try:
        # the incident lasts until the traffic stops: an outage, not a recovery
        store.write(Assembler(store).assemble(traffic(T0, 50, range(44, 50))))
        GroupService(store).create("outage", None, True, False)
        engine = _engine(store, _minute(60) + 61)
        (state,) = engine.evaluate()
        assert state.state == "ACTIVE"
        (insight,) = engine.insights()
        assert insight["State"] == "ACTIVE" and insight["StartTime"] == _minute(44)
    finally:
        store.close()
