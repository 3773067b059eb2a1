"""Hostile documents beside good ones, over UDP and PutTraceSegments, against a real
server: every good document is stored exactly, every hostile one is stored or reported
or counted, the counters add up and the server stays up (``tests/fuzzdocs.py``).

A bounded number of examples runs here; ``benchmarks/fuzz_ingest.py`` runs many more."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzdocs import good_documents, hostile_documents, send_round
from tests.support import ServerProcess


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    good=st.lists(good_documents(), min_size=1, max_size=12),
    hostile=st.lists(hostile_documents(), min_size=1, max_size=6),
)
def test_hostile_documents_cost_good_ones_nothing(
    server: ServerProcess, good: list[dict[str, Any]], hostile: list[bytes]
) -> None:
    outcome = send_round(server, server.xray(), good, hostile)
    assert outcome.sent == len(good) + len(hostile)
    assert server.status()["counters"]  # still answering
