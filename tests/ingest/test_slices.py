"""How the ingest pipeline cuts a batch into slices (``ingest.pipeline._slices``).

Each slice is merged and encoded on its own, and encoding costs about the same whatever
a slice holds, so a batch is cut into as few slices as ``_SLICE`` allows, of equal
sizes: every document in exactly one slice, in order, none larger than ``_SLICE``.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fluoroscope.ingest.pipeline import _SLICE, _slices


@given(start=st.integers(0, 50_000), length=st.integers(0, 10 * _SLICE + 7))
def test_a_batch_is_cut_into_the_fewest_slices_of_equal_size(start: int, length: int) -> None:
    slices = _slices(start, start + length)
    covered = [at for first, end in slices for at in range(first, end)]
    assert covered == list(range(start, start + length))  # each once, in order
    sizes = [end - first for first, end in slices]
    assert all(0 < size <= _SLICE for size in sizes)
    assert len(slices) == -(-length // _SLICE)  # the fewest
    assert not sizes or max(sizes) - min(sizes) <= 1


def test_a_round_a_little_longer_than_a_slice_is_encoded_twice_not_with_a_sliver() -> None:
    assert _slices(0, _SLICE) == [(0, _SLICE)]
    halves = _slices(10, 10 + _SLICE + 2)
    assert [end - first for first, end in halves] == [_SLICE // 2 + 1] * 2
