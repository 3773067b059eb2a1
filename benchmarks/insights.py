"""Insights: the cost of one evaluation pass over a group's history.

A real embedded store in a temporary directory holds ``--minutes`` minutes of generated
traffic (``--per-minute`` requests through api -> billing -> ledger, an incident
near the end). Two insights-enabled groups are evaluated (injected clock, just after the
traffic): one without a filter (read from the per-minute statistics kept at ingest)
and one with a filter the server does not track yet (recomputed in the engine from the
spans of the traces it selects - the costlier path, taken for minutes before a group
existed). The figure is the p50 of a pass for each, against the reference measured in
the same run: one service-graph read (the per-minute statistics, summed) over the same
window, as GetServiceGraph does. Their ratio says how many graph reads a pass costs.

Usage: ``python -m benchmarks.insights`` (from the repository's root). Never run by
pytest; runs in well under 3 minutes.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.insightgen import traffic

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.groups import Group
from fluoroscope.query.faultinsights import BandSettings, InsightEngine
from fluoroscope.query.groups import GroupService
from fluoroscope.query.groupstats import GroupStats
from fluoroscope.store.store import Store


def _p50(call: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=240)
    parser.add_argument("--per-minute", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    first = (int(time.time()) - (args.minutes + 5) * 60) // 60 * 60
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open("chdb", Path(tmp), 30, database=f"b_{uuid.uuid4().hex[:8]}")
        started = time.perf_counter()
        docs = traffic(
            first, args.minutes, range(args.minutes - 20, args.minutes - 10),
            per_minute=args.per_minute, faulty=args.per_minute // 2,
        )  # fmt: skip
        assembler = Assembler(store)
        for k in range(0, len(docs), 3000):
            store.write(assembler.assemble(docs[k : k + 3000]))
        print(f"stored {len(docs)} documents in {time.perf_counter() - started:.1f} s")
        now = first + args.minutes * 60 + 61
        groups = GroupService(store)
        engines = {}
        for name, expression in (("all", None), ("filtered", 'service("api")')):
            groups.create(name, expression, True, False)
        tracked = GroupStats(store, groups, clock=lambda: now)
        engine = InsightEngine(store, groups, tracked, clock=lambda: now, settings=BandSettings())
        states = engine.evaluate()
        print("states:", {s.group: s.state for s in states}, "insights:", len(engine.insights()))
        window = (now - 360 * 60, now)
        graph = _p50(lambda: (store.stats("node", *window), store.stats("edge", *window)), 10)
        for name in ("all", "filtered"):
            only = [g for g in groups.all() if g.name == name]
            engines[name] = InsightEngine(  # one group per pass
                store, _Only(groups, only), tracked, clock=lambda: now, settings=BandSettings()
            )
        for name, each in engines.items():
            cost = _p50(each.evaluate, args.runs)
            print(
                f"pass over group {name!r}: p50 {cost * 1000:.0f} ms; one graph read "
                f"{graph * 1000:.1f} ms; ratio {cost / graph:.1f}"
            )
        store.close()


class _Only(GroupService):
    """The group service, listing only some groups (to time one group's pass)."""

    def __init__(self, inner: GroupService, only: list[Group]) -> None:
        self.__dict__.update(inner.__dict__)
        self._only = only

    def all(self) -> list[Group]:
        return list(self._only)


if __name__ == "__main__":
    main()
