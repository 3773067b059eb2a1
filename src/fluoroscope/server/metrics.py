"""``GET /metrics``: the server's counters in the Prometheus text exposition format.

Everything is read when scraped, from what the server keeps anyway: the ingest counters
(:attr:`IngestProcess.counters <fluoroscope.ingest.process.IngestProcess.counters>`,
PutTraceSegments' own included), the ingest buffers, the per-round histograms of
:class:`~fluoroscope.ingest.process.IngestProcess`, and access control's refusals
(``state.access.failures``), the sampling API's counters (``state.sampling``); the API's request counts and latencies are
recorded by :meth:`ApiMetrics.observe` once per request. A scrape never calls the store
and never waits for a worker thread, so it answers in bounded time while the engine is
busy with a long query.

Ingest counters are mapped by name, so that counters added later appear without a
change here:

* ``<listener>_received`` -> ``fluoroscope_documents_received_total{listener}``
* ``<listener>_dropped_<reason>`` and ``<listener>_invalid[_<detail>]`` ->
  ``fluoroscope_documents_dropped_total{listener, reason}`` (reason ``<reason>``, or
  ``invalid[_<detail>]``), where ``<listener>`` is ``udp`` or ``http``
* ``<listener>_throttled`` -> ``fluoroscope_ingest_throttled_total{listener}`` (calls
  refused because the ingest buffer was full)
* ``stored_documents`` / ``stored_entities`` / ``lost_documents`` (accepted, then their
  insert failed) / ``worker_restarts`` -> families of their own
* anything else -> ``fluoroscope_ingest_events_total{counter}``, so nothing is hidden.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

from fluoroscope.ingest.histogram import HistogramSnapshot

if TYPE_CHECKING:
    from fluoroscope.server.app import ServerState

__all__ = ["API_SECONDS_BUCKETS", "ApiMetrics", "IngestCollector", "metrics_endpoint"]

API_SECONDS_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip

_DROPPED: Final = re.compile(r"(udp|http)_(?:dropped_(.+)|(invalid(?:_.+)?))")
_SIMPLE: Final = re.compile(r"(udp|http)_(received|throttled)")
_SINGLE: Final[dict[str, tuple[str, str]]] = {
    "stored_documents": ("fluoroscope_documents_stored", "Documents stored (every listener)."),
    "stored_entities": (
        "fluoroscope_entities_stored",
        "Segments and subsegments stored (every listener).",
    ),
    "lost_documents": (
        "fluoroscope_documents_lost",
        "Documents accepted, then lost because their insert into the store failed.",
    ),
    "worker_restarts": (
        "fluoroscope_ingest_worker_restarts",
        "Ingest worker processes restarted after they died.",
    ),
}


class IngestCollector(Collector):
    """Renders the ingest counters, buffers and per-round histograms of ``state`` and
    its authentication failures (module docstring)."""

    def __init__(self, state: ServerState) -> None:
        self._state = state

    def collect(self) -> Iterable[Metric]:
        state = self._state
        pipeline = state.pipeline
        yield from _ingest_families(pipeline.counters)
        in_flight, queued = pipeline.buffered
        yield GaugeMetricFamily(
            "fluoroscope_ingest_in_flight_bytes",
            "Bytes of PutTraceSegments documents submitted and not yet acknowledged.",
            value=in_flight,
        )
        per_worker = GaugeMetricFamily(
            "fluoroscope_ingest_queued_datagram_bytes",
            "Bytes of UDP datagrams waiting to be handed to an ingest worker.",
            labels=["worker"],
        )
        for index, size in enumerate(queued):
            per_worker.add_metric([str(index)], size)
        yield per_worker
        yield GaugeMetricFamily(
            "fluoroscope_cached_traces",
            "Traces whose state the ingest workers keep in memory (as last reported).",
            value=pipeline.cached_traces,
        )
        yield _histogram(
            "fluoroscope_store_insert_duration_seconds",
            "Time of one insert round into the store (retries included).",
            pipeline.insert_seconds.snapshot(),
        )
        yield _histogram(
            "fluoroscope_insert_round_documents",
            "Documents per insert round into the store.",
            pipeline.round_documents.snapshot(),
        )
        auth = CounterMetricFamily(
            "fluoroscope_auth_failures",
            "Requests refused for failed authentication, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(state.access.failures.items()):
            auth.add_metric([reason], count)
        yield auth
        yield from _sampling_families(state.sampling.status(top_clients=0))


def _sampling_families(status: Mapping[str, Any]) -> Iterator[Metric]:
    """The sampling API's counters (per rule; clients are too many for labels: the
    busiest are named in ``/api/status``)."""
    calls = CounterMetricFamily(
        "fluoroscope_sampling_calls",
        "Calls of the sampling operations, by operation.",
        labels=["operation"],
    )
    for operation, count in sorted(status["calls"].items()):
        calls.add_metric([operation], count)
    yield calls
    reports = CounterMetricFamily(
        "fluoroscope_sampling_reports",
        "Statistics documents taken by GetSamplingTargets, by sampling rule.",
        labels=["rule"],
    )
    for rule, count in sorted(status["reports_by_rule"].items()):
        reports.add_metric([rule], count)
    yield reports
    clients = GaugeMetricFamily(
        "fluoroscope_sampling_active_clients",
        "Clients sharing a rule's reservoir now (reported within the last interval).",
        labels=["rule"],
    )
    for rule, count in sorted(status["active_clients_by_rule"].items()):
        clients.add_metric([rule], count)
    yield clients
    yield GaugeMetricFamily(
        "fluoroscope_sampling_clients_known",
        "Clients whose sampling requests are counted.",
        value=status["clients_known"],
    )
    refused = CounterMetricFamily(
        "fluoroscope_sampling_refused_documents",
        "Statistics documents answered in UnprocessedStatistics, by error code.",
        labels=["code"],
    )
    for code, count in sorted(status["refused_documents"].items()):
        refused.add_metric([code], count)
    yield refused


def _ingest_families(counters: Mapping[str, int]) -> Iterator[Metric]:
    received = CounterMetricFamily(
        "fluoroscope_documents_received",
        "Documents received: UDP datagrams, and PutTraceSegments documents.",
        labels=["listener"],
    )
    dropped = CounterMetricFamily(
        "fluoroscope_documents_dropped",
        "Documents received and not stored, by listener and reason.",
        labels=["listener", "reason"],
    )
    throttled = CounterMetricFamily(
        "fluoroscope_ingest_throttled",
        "Ingest calls refused because the ingest buffer was full.",
        labels=["listener"],
    )
    other = CounterMetricFamily(
        "fluoroscope_ingest_events",
        "Other ingest counters, by name.",
        labels=["counter"],
    )
    singles = {key: CounterMetricFamily(name, text) for key, (name, text) in _SINGLE.items()}
    for key in ("udp", "http"):
        received.add_metric([key], counters.get(f"{key}_received", 0))
    for key, value in sorted(counters.items()):
        if key in singles:
            singles[key].add_metric([], value)
        elif match := _DROPPED.fullmatch(key):
            dropped.add_metric([match[1], match[2] or match[3]], value)
        elif match := _SIMPLE.fullmatch(key):
            if match[2] == "throttled":
                throttled.add_metric([match[1]], value)
        else:
            other.add_metric([key], value)
    for key, family in singles.items():
        if key not in counters:
            family.add_metric([], 0)
    yield received
    yield dropped
    yield throttled
    yield from singles.values()
    yield other


def _histogram(name: str, documentation: str, snapshot: HistogramSnapshot) -> Metric:
    return HistogramMetricFamily(
        name,
        documentation,
        buckets=[(_le(bound), count) for bound, count in snapshot.buckets],
        sum_value=snapshot.sum,
    )


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))


class ApiMetrics:
    """Request counts by operation and status code, and latency by operation, of the
    API's handlers; with the ingest collector, in a registry of the app's own."""

    def __init__(self, state: ServerState) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(IngestCollector(state))
        self._seconds = Histogram(
            "fluoroscope_api_request_duration_seconds",
            "Time to answer an API call, by operation.",
            ["operation"],
            buckets=API_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self._requests = Counter(
            "fluoroscope_api_requests",
            "API calls answered, by operation and HTTP status code.",
            ["operation", "code"],
            registry=self.registry,
        )

    def observe(self, operation: str, status: int, seconds: float) -> None:
        """Record one answered call (a few microseconds)."""
        self._seconds.labels(operation).observe(seconds)
        self._requests.labels(operation, str(status)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def metrics_endpoint(metrics: ApiMetrics) -> Callable[[Request], Awaitable[Response]]:
    """The ``GET /metrics`` handler. It runs on the event loop itself (it never blocks
    for long), so a pool of worker threads busy with queries cannot delay it."""

    async def endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return endpoint
