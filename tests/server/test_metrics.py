"""``GET /metrics`` of a real server, parsed with prometheus_client's own text parser.

Good and garbage UDP datagrams and a PutTraceSegments call holding one invalid document
(boto3's xray client) must show up as exact counts: received, stored and dropped by
listener and reason, insert rounds, and API calls by operation and status code.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterable

import botocore.exceptions
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from fluoroscope.ingest.histogram import Histogram
from fluoroscope.server.metrics import _ingest_families
from tests.support import HEADER, ServerProcess, segment, wait_for

Samples = dict[str, list[Sample]]


def scrape(server: ServerProcess) -> tuple[str, Samples]:
    """The content type and every family's samples, by family name."""
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        content_type = response.headers["content-type"]
        text = response.read().decode()
    return content_type, {f.name: list(f.samples) for f in text_string_to_metric_families(text)}


def value(samples: Samples, family: str, name: str | None = None, **labels: str) -> float:
    """The one sample of ``family`` named ``name`` (default: ``family`` + ``_total`` for
    counters) with exactly these labels; 0 when there is none."""
    found = [
        s.value
        for s in samples.get(family, [])
        if (name is None or s.name == name) and s.labels == labels
    ]
    assert len(found) <= 1, (family, labels, found)
    return found[0] if found else 0.0


def dropped(samples: Samples, listener: str) -> dict[str, float]:
    return {
        s.labels["reason"]: s.value
        for s in samples["fluoroscope_documents_dropped"]
        if s.labels["listener"] == listener
    }


def test_documents_and_calls_are_counted(server: ServerProcess) -> None:
    good_udp = [segment() for _ in range(4)]
    invalid_udp = [
        HEADER + b"{not json",
        HEADER + json.dumps({**segment(), "trace_id": "1-xyz"}).encode(),
    ]
    server.send_documents(*good_udp)
    server.send_udp(b"no header at all", *invalid_udp)

    client = server.xray()
    good_http = [segment(), segment()]
    bad_http = {**segment(), "start_time": "yesterday"}
    answer = client.put_trace_segments(
        TraceSegmentDocuments=[json.dumps(d) for d in (good_http[0], bad_http, good_http[1])]
    )
    (unprocessed,) = answer["UnprocessedTraceSegments"]
    assert unprocessed["Id"] == bad_http["id"]
    with pytest.raises(botocore.exceptions.ClientError):
        client.get_group(GroupName="no-such-group")
    client.get_groups()

    def settled() -> Samples | None:
        _, samples = scrape(server)
        stored = value(
            samples, "fluoroscope_documents_stored", "fluoroscope_documents_stored_total"
        )
        invalid = sum(v for r, v in dropped(samples, "udp").items() if r.startswith("invalid"))
        return samples if stored == 6 and invalid == 2 else None

    samples = wait_for(settled, timeout=30)
    content_type, _ = scrape(server)
    assert content_type.startswith("text/plain")

    total = "fluoroscope_documents_received_total"
    assert value(samples, "fluoroscope_documents_received", total, listener="udp") == 7
    assert value(samples, "fluoroscope_documents_received", total, listener="http") == 3
    udp_drops = dropped(samples, "udp")
    assert udp_drops.pop("no_header") == 1
    assert sum(v for r, v in udp_drops.items() if r.startswith("invalid")) == 2
    assert not any(v for r, v in udp_drops.items() if not r.startswith("invalid")), udp_drops
    code = "_".join(part.lower() for part in _words(unprocessed["ErrorCode"]))
    assert dropped(samples, "http") == {code: 1}
    assert value(samples, "fluoroscope_entities_stored", "fluoroscope_entities_stored_total") == 6
    assert value(samples, "fluoroscope_documents_lost", "fluoroscope_documents_lost_total") == 0

    # Per insert round: the documents add up to those stored; one latency per round.
    rounds = value(
        samples, "fluoroscope_insert_round_documents", "fluoroscope_insert_round_documents_count"
    )
    assert rounds >= 1
    assert (
        value(
            samples, "fluoroscope_insert_round_documents", "fluoroscope_insert_round_documents_sum"
        )
        == 6
    )
    latency = "fluoroscope_store_insert_duration_seconds"
    assert value(samples, latency, f"{latency}_count") == rounds
    assert value(samples, latency, f"{latency}_bucket", le="+Inf") == rounds
    assert value(samples, latency, f"{latency}_sum") > 0
    assert value(samples, "fluoroscope_ingest_in_flight_bytes") == 0

    calls = "fluoroscope_api_requests_total"
    assert (
        value(samples, "fluoroscope_api_requests", calls, operation="PutTraceSegments", code="200")
        == 1
    )
    assert value(samples, "fluoroscope_api_requests", calls, operation="GetGroup", code="400") == 1
    assert value(samples, "fluoroscope_api_requests", calls, operation="GetGroups", code="200") == 1
    seconds = "fluoroscope_api_request_duration_seconds"
    for operation in ("PutTraceSegments", "GetGroup", "GetGroups"):
        assert value(samples, seconds, f"{seconds}_count", operation=operation) == 1
        assert value(samples, seconds, f"{seconds}_bucket", operation=operation, le="+Inf") == 1
    assert not value(samples, seconds, f"{seconds}_count", operation="BatchGetTraces")
    assert "fluoroscope_auth_failures" in samples  # a family, even with no failure yet


def _words(code: str) -> Iterable[str]:
    word = ""
    for char in code:
        if char.isupper() and word:
            yield word
            word = ""
        word += char
    if word:
        yield word


def test_counter_names_map_to_families_by_pattern() -> None:
    """Counters named by the ingest conventions land in their families without a list
    of names here: new reasons appear as they are added."""
    counters = {
        "udp_received": 10,
        "udp_dropped_kernel": 3,
        "udp_invalid_json": 2,
        "udp_invalid": 1,
        "http_dropped_document_too_large": 4,
        "http_throttled": 5,
        "stored_documents": 6,
        "udp_rerouted": 7,
    }
    families = {f.name: f for f in _ingest_families(counters)}
    by_labels = {
        tuple(sorted(s.labels.items())): s.value
        for s in families["fluoroscope_documents_dropped"].samples
    }
    assert by_labels == {
        (("listener", "udp"), ("reason", "kernel")): 3,
        (("listener", "udp"), ("reason", "invalid_json")): 2,
        (("listener", "udp"), ("reason", "invalid")): 1,
        (("listener", "http"), ("reason", "document_too_large")): 4,
    }
    received = {
        s.labels["listener"]: s.value for s in families["fluoroscope_documents_received"].samples
    }
    assert received == {"udp": 10, "http": 0}
    assert [(s.labels, s.value) for s in families["fluoroscope_ingest_throttled"].samples] == [
        ({"listener": "http"}, 5)
    ]
    assert [s.value for s in families["fluoroscope_documents_stored"].samples] == [6]
    assert [(s.labels, s.value) for s in families["fluoroscope_ingest_events"].samples] == [
        ({"counter": "udp_rerouted"}, 7)
    ]


def test_histogram_buckets_are_cumulative_upper_bounds() -> None:
    histogram = Histogram([1, 10])
    for observed in (0.5, 1, 1.5, 10, 11):
        histogram.observe(observed)
    snapshot = histogram.snapshot()
    assert snapshot.buckets == ((1, 2), (10, 4), (float("inf"), 5))
    assert snapshot.count == 5
    assert snapshot.sum == 24
    with pytest.raises(ValueError, match="increasing"):
        Histogram([10, 1])
