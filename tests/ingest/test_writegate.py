"""The write gate: a full or read-only store is said once, refused between tries, and
tried again every ``retry_after`` seconds; and the engine's own words are recognized.

The servers' behaviour on a real full disk and a real read-only mount is tested in
``tests/server/test_unwritable_store.py``; these are the rules behind it."""

from __future__ import annotations

import logging

import pytest

from fluoroscope.ingest.writegate import WriteGate
from fluoroscope.model.errors import StoreError, StoreUnwritable
from fluoroscope.store.transport import store_error

# As the embedded engine said them here (full tmpfs; read-only bind mount), and as
# ClickHouse words a write that runs out of room midway.
FULL = "Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)"
FULL_MIDWAY = (
    "Code: 75. DB::ErrnoException: Cannot write to file /data/store/tmp_insert/data.bin, "
    "errno: 28, strerror: No space left on device. (CANNOT_WRITE_TO_FILE_DESCRIPTOR)"
)
READ_ONLY = (
    "Code: 1001. DB::Exception: std::__1::filesystem::filesystem_error: filesystem error: "
    'in create_directories: Read-only file system ["/data/store/tmp_insert_1_1_0"]. '
    "(STD_EXCEPTION)"
)


@pytest.mark.parametrize(
    ("message", "reason"),
    [(FULL, "disk full"), (FULL_MIDWAY, "disk full"), (READ_ONLY, "read-only")],
)
def test_the_engine_saying_it_cannot_write_is_recognized(message: str, reason: str) -> None:
    error = store_error(message)
    assert isinstance(error, StoreUnwritable) and error.reason == reason
    assert str(error) == message


def test_other_engine_errors_stay_store_errors() -> None:
    error = store_error(
        "Code: 62. DB::Exception: Syntax error: failed at position 1. (SYNTAX_ERROR)"
    )
    assert type(error) is StoreError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_refused_between_tries_and_said_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    gate = WriteGate(retry_after=0.5, clock=clock)
    full = StoreUnwritable(FULL, reason="disk full")
    assert gate.refusal() is None
    with caplog.at_level(logging.WARNING, logger="fluoroscope.ingest"):
        gate.failed(full)
        refused = gate.refusal()
        assert refused is not None and (str(refused), refused.reason) == (FULL, "disk full")
        clock.now += 0.4
        assert gate.refusal() is not None
        clock.now += 0.2  # a try is due
        assert gate.refusal() is None
        gate.failed(StoreUnwritable(FULL_MIDWAY, reason="disk full"))  # same cause: no line
        assert gate.refusal() is not None
        clock.now += 1
        gate.failed(StoreUnwritable(READ_ONLY, reason="read-only"))  # another cause: a line
        clock.now += 10
        gate.succeeded()
        gate.succeeded()
    assert gate.refusal() is None
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert lines[0].startswith("the store cannot take writes (disk full)") and "243" in lines[0]
    assert lines[1].startswith("the store cannot take writes (read-only)")
    assert lines[2] == "the store takes writes again (read-only for 12 s)"
