"""The pytest plugin shipped with the SDK: the ``fluoroscope_traces`` fixture.

Registered through the ``pytest11`` entry point, so installing the package makes the
fixture available to every test suite::

    def test_checkout(fluoroscope_traces):
        checkout(cart)
        trace = fluoroscope_traces.one()
        trace.assert_no_fault()
        trace.assert_calls("DynamoDB", at_most=3)

The fixture is a :class:`fluoroscope.sdk.testing.TraceRecorder` that records for
the duration of the test (setup of later fixtures and teardown included); nothing is
sent anywhere and no server is needed. Importing this module imports nothing but the
standard library and pytest; the SDK is loaded only when a test asks for the fixture.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from fluoroscope.sdk.testing import TraceRecorder

__all__ = ["fluoroscope_traces"]


@pytest.fixture
def fluoroscope_traces() -> Iterator[TraceRecorder]:
    """Record every trace of this process during the test; assert on them."""
    from fluoroscope.sdk.testing import TraceRecorder

    with TraceRecorder() as recorder:
        yield recorder
