"""Routing a datagram to the worker owning its trace, from the body's bytes."""

from __future__ import annotations

import orjson
from hypothesis import given
from hypothesis import strategies as st

from fluoroscope.ingest.shards import shard_of, trace_id_of

TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"


def test_the_trace_id_is_read_whatever_the_spacing() -> None:
    for body in (
        b'{"trace_id":"%s"}',
        b'{"id":"x", "trace_id" : "%s", "name":"a"}',
        b'{\n  "trace_id":\n\t"%s"\n}',
    ):
        assert trace_id_of(body % TRACE_ID.encode()) == TRACE_ID.encode()


def test_no_or_malformed_trace_id_gives_nothing() -> None:
    assert trace_id_of(b'{"name":"a"}') == b""
    assert trace_id_of(b'{"trace_id":12,"name":"a"}') == b""  # not a string: no guess
    assert trace_id_of(b'{"trace_id":"unterminated') == b""
    assert trace_id_of(b'{"trace_id"') == b""


def test_a_nested_key_first_is_taken_as_is() -> None:
    """The receiving process does not parse; the worker checks and hands it back."""
    body = b'{"metadata":{"trace_id":"other"},"trace_id":"%s"}' % TRACE_ID.encode()
    assert trace_id_of(body) == b"other"


@given(st.text(min_size=1, max_size=40), st.integers(min_value=1, max_value=8))
def test_shards_are_stable_and_in_range(trace_id: str, shards: int) -> None:
    body = orjson.dumps({"name": "a", "trace_id": trace_id})
    raw = trace_id_of(body)
    shard = shard_of(trace_id.encode(), shards)
    assert 0 <= shard < shards
    if raw == trace_id.encode():  # no escapes: routing agrees with the parsed id
        assert shard_of(raw, shards) == shard
    assert shard_of(trace_id.encode(), 1) == 0
