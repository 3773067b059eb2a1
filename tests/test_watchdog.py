"""The suite's watchdog (tests/watchdog.py): a test stuck in a C call ends the run, at once
and loudly, with its stack; one stuck in Python still fails alone."""

from __future__ import annotations

import os

import pytest

from tests.conftest import ROOT

SUITE = """
import ctypes
import time

import pytest


def test_before():
    pass


@pytest.mark.timeout(1)
def test_stuck_in_python():
    time.sleep(30)  # the signal ends it: it fails, the run goes on


@pytest.mark.timeout(1)
def test_stuck_in_c():
    mutex = ctypes.create_string_buffer(64)  # zeroed: a default pthread mutex
    libc = ctypes.PyDLL(None)  # a call that keeps the GIL, as a stuck engine call may
    libc.pthread_mutex_lock(mutex)
    libc.pthread_mutex_lock(mutex)  # locked again: never returns, whatever the signals


def test_after():
    pass
"""


def test_a_test_stuck_in_a_c_call_ends_the_run_with_every_stack(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(
        "-p", "tests.watchdog", "-p", "no:cacheprovider", "-v", timeout=60
    )
    err = result.stderr.str()
    assert result.ret == 1, (result.stdout.str(), err)
    # the watchdog's words: the 1-second timeout plus as long again, then each thread's stack
    assert "Timeout (0:00:02)!" in err, err
    assert "in test_stuck_in_c" in err, err
    out = result.stdout.str()
    assert "test_stuck_in_python FAILED" in out, out
    assert "test_after" not in out  # the run ended there
