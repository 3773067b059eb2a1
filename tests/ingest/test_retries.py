""":func:`~fluoroscope.ingest.retries.with_retries`: a store write retried after store
errors, given up after three attempts, never retried when the disk refuses writes, and
any exception not Fluoroscope's propagated at once. The write is the function's
argument: here one that fails as told, so each rule is seen alone (the stores' real
failures are in tests/store/test_transport_recovery.py and tests/server)."""

from __future__ import annotations

import logging

import pytest

from fluoroscope.ingest.retries import with_retries
from fluoroscope.model.errors import InvalidDocument, StoreError, StoreUnwritable


class _Write:
    """A write failing with each of ``errors`` in turn, then succeeding; counts calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


def test_a_write_succeeding_after_store_errors_is_retried_until_it_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    write = _Write(StoreError("busy"), StoreError("busy again"))
    with caplog.at_level(logging.WARNING, logger="fluoroscope.ingest"):
        assert with_retries(write) is None
    assert write.calls == 3
    assert [r.getMessage() for r in caplog.records] == [
        "store write failed (attempt 1): busy",
        "store write failed (attempt 2): busy again",
    ]


def test_a_write_failing_three_times_returns_the_last_error() -> None:
    last = StoreError("third")
    write = _Write(StoreError("first"), StoreError("second"), last, StoreError("never"))
    assert with_retries(write) is last
    assert write.calls == 3


def test_an_unwritable_store_is_returned_at_once_unretried_and_unlogged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    full = StoreUnwritable("no space left on device", reason="disk full")
    write = _Write(full)
    with caplog.at_level(logging.WARNING, logger="fluoroscope.ingest"):
        assert with_retries(write) is full
    assert write.calls == 1
    assert caplog.records == []


def test_an_exception_not_of_fluoroscope_propagates_at_once() -> None:
    write = _Write(ValueError("a defect"))
    with pytest.raises(ValueError, match="a defect"):
        with_retries(write)
    assert write.calls == 1


def test_any_fluoroscope_error_of_the_write_is_returned_never_raised() -> None:
    errors = [InvalidDocument(f"refused {n}", code="Invalid") for n in range(3)]
    write = _Write(*errors)
    assert with_retries(write) is errors[-1]
    assert write.calls == 3


def test_a_write_that_succeeds_is_run_once() -> None:
    write = _Write()
    assert with_retries(write) is None
    assert write.calls == 1
