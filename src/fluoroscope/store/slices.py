"""Where a page of trace summaries reads: slices of its window, newest first.

A page holds the newest ``limit`` summaries of a window whose condition holds, ordered by
start time. When the slice of the window above some instant already holds that many, no
older trace can be on the page, so the store reads the window in adjacent slices from
its top (``[floor, cut)``, each below the last) and stops as soon as the slices read hold
the page: the result is the one a single statement over the whole window gives. The
first slice is a small share of the window; each next one is sized from the density of
matches seen so far, so a common condition reads one or two slices and a rare one reaches
the bottom in a few statements (the last covering what is left): a condition fewer than a
page of traces hold still reads the whole window, in two or three statements instead of
one (at 10M spans, interleaved: a filter no trace holds 137 ms against 133 in one; it took
278 against 193 when a slice without matches only grew 8-fold, in three statements).

Reading a slice costs only its granules because the summaries carry a minmax index on
their start time (migration 25): the engine skips the granules outside the slice.
Measured in benchmarks/query.py at 10M spans: docs/scaling.md has the figures.

Pure; no engine here.
"""

from __future__ import annotations

from typing import Final

__all__ = ["FIRST_SHARE", "FIRST_SHARE_FILTERED", "MIN_SLICED", "first_width", "next_width"]

FIRST_SHARE: Final = 1 / 64
"""The first slice's share of the window without a condition (a 1-hour window: 56 s)."""
FIRST_SHARE_FILTERED: Final = 1 / 16
"""... and with one: a selective condition's page is then held by one statement more often.
benchmarks/query.py at 10M spans (850k traces in the hour), 1/16 against 1/64 for filtered
pages, interleaved: the annotation and edge filters (~0.6-0.8 matching traces a second)
p50 38-51 ms against 50-71 ms (two statements at 1/64); the common filters 21-43 ms
against 17-30 ms (they read 4x the rows their page needs)."""
MIN_SLICED: Final = 120.0
"""Windows shorter than this (seconds) are read in one statement."""
_HEADROOM: Final = 2.0  # the next slice is sized for this many times the matches missing
_MAX_GROWTH: Final = 16.0  # at most this many times the span covered so far, per step


def first_width(span: float, filtered: bool = False) -> float:
    """The width of the top slice of a window ``span`` seconds wide, ``filtered`` by a
    condition or not (the whole window when it is too narrow to be worth slicing)."""
    if span < MIN_SLICED:
        return span
    return span * (FIRST_SHARE_FILTERED if filtered else FIRST_SHARE)


def next_width(covered: float, found: int, wanted: int) -> float:
    """The width of the next slice below ``covered`` seconds that held ``found`` of the
    ``wanted`` summaries: enough, at the density seen, for the missing ones with some
    headroom; at least ``covered`` again, at most ``_MAX_GROWTH`` times it (and that
    when nothing matched so far: a filtered page then reads the rest of its window)."""
    if found <= 0:
        return covered * _MAX_GROWTH
    needed = covered * (wanted - found) / found * _HEADROOM
    return min(max(needed, covered), covered * _MAX_GROWTH)
