"""End to end: our SDK emits over UDP to the real server; boto3's xray client reads back.

Uses the ``server`` fixture (a ``fluoroscope server`` subprocess on loopback) from
``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest

from fluoroscope.sdk import InMemoryEmitter, Tracer
from tests.support import ServerProcess, get_documents, wait_for

pytestmark = pytest.mark.slow


def _entities(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    stack = list(docs)
    while stack:
        doc = dict(stack.pop())
        stack.extend(doc.pop("subsegments", []))
        found[doc["id"]] = doc
    return found


class Tee(InMemoryEmitter):
    """Keeps what was emitted and also sends it over UDP with the real emitter."""

    def __init__(self, tracer_address: str) -> None:
        super().__init__()
        from fluoroscope.sdk import UDPEmitter

        self.udp = UDPEmitter(tracer_address)

    def emit(self, item: Any) -> None:
        super().emit(item)
        self.udp.emit(item)

    def flush(self, timeout: float | None = None) -> bool:
        return self.udp.flush(timeout)

    def close(self, timeout: float | None = None) -> None:
        self.udp.close(timeout)


def test_traces_round_trip_through_the_server(server: ServerProcess) -> None:
    emitter = Tee(f"127.0.0.1:{server.port}")
    tracer = Tracer(service="orders", emitter=emitter, sampling=False, streaming_threshold=3)

    @tracer.capture("getFile")
    def get_file(i: int) -> int:
        if i == 4:
            raise KeyError("missing")
        return i

    with tracer.segment() as seg:
        seg.put_annotation("customer_id", 42)
        seg.set_user("alice")
        seg.set_http_request(method="POST", url="http://orders.example/api", client_ip="10.0.0.1")
        for i in range(5):
            with contextlib.suppress(KeyError):
                get_file(i)
        with tracer.subsegment("payments.example.com", namespace="remote") as call:
            call.set_http_request(method="POST", url="https://payments.example.com/charge")
            call.set_http_response(status=502)
        seg.set_http_response(status=200)
    tracer.flush()
    sent = _entities(emitter.documents)
    assert len(emitter.documents) > 1  # some subsegments were streamed on their own
    client = server.xray()

    def complete() -> list[dict[str, Any]] | None:
        docs = get_documents(client, seg.trace_id)
        return docs if docs is not None and len(_entities(docs)) > len(sent) else None

    stored = wait_for(complete)
    got = {k: v for k, v in _entities(stored).items() if not v.get("inferred")}
    assert got == sent
    inferred = [d for d in stored if d.get("inferred")]
    assert [d["name"] for d in inferred] == ["payments.example.com"]

    before = time.time() - 60
    summaries = client.get_trace_summaries(StartTime=before, EndTime=time.time() + 1)
    (summary,) = [s for s in summaries["TraceSummaries"] if s["Id"] == seg.trace_id]
    assert summary["Users"][0]["UserName"] == "alice"
    tracer.close()
