"""PutLogEvents' batch checks: the whole-batch fast path answers exactly as the
item-by-item checks do (the same events, or the same error), whatever the batch."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.server import logsevents
from fluoroscope.server.logsevents import MAX_TIMESTAMP, check_events
from fluoroscope.server.logsinput import LogsError

NOW = 1_780_000_000_000

_timestamps = st.one_of(
    st.integers(NOW - 10, NOW + 10),
    st.sampled_from([0, -1, MAX_TIMESTAMP, MAX_TIMESTAMP + 1, True, 1.0 * NOW, 1.5, "1", None]),
)
_messages = st.one_of(
    st.text(alphabet="abc xyz{}\"'", min_size=1, max_size=20),
    st.text(max_size=5),  # empty, non-ASCII, lone surrogates
    st.sampled_from(["", 7, None, "\udc80", "é" * 3]),
    st.just("x" * 300_000),  # a few of these pass the batch's size limit
)
_item: st.SearchStrategy[Any] = st.one_of(
    st.fixed_dictionaries({"timestamp": _timestamps, "message": _messages}),
    st.fixed_dictionaries({"timestamp": st.integers(NOW - 10, NOW + 10)}),
    st.sampled_from([None, [], "event", 5]),
)


def _answer(check: Any, raw: list[Any]) -> tuple[str, Any]:
    try:
        return "events", check(raw)
    except LogsError as exc:
        return "error", exc.message


def _item_by_item(raw: list[Any]) -> list[tuple[int, str]]:
    """:func:`check_events` with its fast path turned off."""
    fast = logsevents._plain_events
    logsevents._plain_events = lambda raw: None
    try:
        return check_events(raw)
    finally:
        logsevents._plain_events = fast


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.lists(_item, min_size=1, max_size=12),
        # mostly plain batches, the case the fast path takes
        st.lists(
            st.fixed_dictionaries(
                {
                    "timestamp": st.integers(NOW - 5, NOW + 5),
                    "message": st.text(st.characters(max_codepoint=127), min_size=1),
                }
            ),
            min_size=1,
            max_size=12,
        ),
    )
)
def test_the_fast_path_answers_as_the_item_by_item_checks(raw: list[Any]) -> None:
    assert _answer(check_events, raw) == _answer(_item_by_item, raw)


def test_a_plain_batch_takes_the_fast_path_and_keeps_its_order() -> None:
    raw = [{"timestamp": NOW + i // 2, "message": f"line {i}"} for i in range(1000)]
    events = logsevents._plain_events(raw)
    assert events == [(NOW + i // 2, f"line {i}") for i in range(1000)]
    assert check_events(raw) == events


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ([{"timestamp": NOW, "message": "b"}, {"timestamp": NOW - 1, "message": "a"}],
         "chronological order"),
        ([{"timestamp": NOW, "message": "x" * 1_048_551}], "Upload too large"),
        ([{"timestamp": True, "message": "a"}], "logEvents.1.member.timestamp"),
        ([{"timestamp": NOW, "message": ""}], "logEvents.1.member.message"),
    ],
)  # fmt: skip
def test_what_the_fast_path_refuses_gets_the_precise_error(raw: list[Any], error: str) -> None:
    with pytest.raises(LogsError, match=error):
        check_events(raw)
