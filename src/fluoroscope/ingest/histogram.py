"""A cheap, thread-safe histogram of observed values in fixed buckets.

Ingest records a few measurements per insert round (documents per round, engine insert
seconds) without depending on any metrics library; the server renders them (``/metrics``).

Contract: :meth:`Histogram.observe` costs one bisection and three additions under a
lock; :meth:`Histogram.snapshot` returns consistent cumulative counts, where bucket
``le`` counts the observations ``<= le`` and the last bucket (``inf``) counts them all.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["INSERT_SECONDS", "ROUND_DOCUMENTS", "Histogram", "HistogramSnapshot"]

# Buckets of ingest's per-round measurements: seconds of an insert into the store, and
# documents per insert round.
INSERT_SECONDS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROUND_DOCUMENTS: Final = (1, 10, 100, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000)


@dataclass(frozen=True, slots=True)
class HistogramSnapshot:
    """Cumulative bucket counts ``(le, count)`` ending with ``(inf, count)``, and the sum."""

    buckets: tuple[tuple[float, int], ...]
    sum: float

    @property
    def count(self) -> int:
        return self.buckets[-1][1]


class Histogram:
    """Counts observations into buckets with the upper bounds ``bounds`` (plus ``inf``)."""

    def __init__(self, bounds: Sequence[float]) -> None:
        if not bounds or list(bounds) != sorted(set(bounds)) or math.isinf(bounds[-1]):
            raise ValueError("bounds must be finite, strictly increasing and not empty")
        self.bounds = (*bounds, math.inf)
        self._counts = [0] * len(self.bounds)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def snapshot(self) -> HistogramSnapshot:
        with self._lock:
            counts = list(self._counts)
            total = self._sum
        cumulative: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip(self.bounds, counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return HistogramSnapshot(tuple(cumulative), total)
