"""A test stuck in a C call ends the run, loudly, instead of holding CI for its 90 minutes.

pytest-timeout's default ``signal`` method fails one test that overruns ``timeout`` and the
run goes on, but only while Python code runs: a signal's handler waits for the blocked C
call to return (a chDB query waiting forever on a lock did, for 18 minutes, past a
300-second limit). Its ``thread`` method ends the whole run on any overrun, the ones the
signal method recovers from included, and its timer is a Python thread: a C call that
holds the GIL stops it too. So the signal method stays, and this plugin adds a watchdog
through pytest-timeout's own hooks: when a test outlives its timeout by as long again
(at most :data:`GRACE` seconds) - the signal has not freed it - :mod:`faulthandler`'s
thread, native and needing no GIL, writes every thread's Python stack to the run's
stderr and exits the process with status 1.

Loaded by ``tests/conftest.py``; ``pytest -p tests.watchdog`` loads it elsewhere.
"""

from __future__ import annotations

import faulthandler
import os
import sys
from typing import Any

import pytest

__all__ = ["GRACE", "pytest_configure", "pytest_timeout_cancel_timer", "pytest_timeout_set_timer"]

GRACE = 60.0
"""Longest the signal method is given, past the timeout, before the watchdog ends the run."""

_stderr: list[int] = []  # the run's stderr, as a descriptor test capture does not replace


def pytest_configure(config: pytest.Config) -> None:
    # capture is suspended here: descriptor 2 is the terminal or CI's log, not a capture file
    if not _stderr:
        _stderr.append(os.dup(sys.__stderr__.fileno() if sys.__stderr__ else 2))


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> None:
    """Arm the watchdog beside pytest-timeout's own timer (None: that timer is set too)."""
    if _stderr and settings.timeout:
        grace = min(GRACE, float(settings.timeout))
        faulthandler.dump_traceback_later(
            float(settings.timeout) + grace, exit=True, file=_stderr[0]
        )


@pytest.hookimpl(optionalhook=True)
def pytest_timeout_cancel_timer(item: pytest.Item) -> None:
    faulthandler.cancel_dump_traceback_later()
