"""OTLP log records into the log store, found by their trace like any other line.

The records are made by the OpenTelemetry SDK's logging handler inside a span and encoded
by its OTLP encoder (what its exporters send); the lines are read back from a real
store. The exporters are also pointed at a real server, over HTTP and gRPC."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from fluoroscope.ingest.logwriter import LogWriter
from fluoroscope.ingest.otlp import Translation
from fluoroscope.ingest.otlp.logs import log_batches
from fluoroscope.server.otlp import OtlpLogSink
from fluoroscope.store.logs import LogStore
from fluoroscope.store.store import Store
from tests.server.test_otlp import run_client
from tests.support import ServerProcess, free_port, start_server, wait_for


def _records(resource: dict[str, Any]) -> tuple[Any, str]:
    """An ExportLogsServiceRequest of three records logged inside a span (two of them
    carrying its ids), and the span's trace id in X-Ray form."""
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]
    provider = LoggerProvider(resource=Resource.create(resource))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = logging.getLogger(f"otlp-logs-{time.monotonic_ns()}")
    logger.propagate = False
    with warnings.catch_warnings():  # the SDK's handler is deprecated, not gone
        warnings.simplefilter("ignore", DeprecationWarning)
        logger.addHandler(LoggingHandler(logger_provider=provider))
    logger.setLevel(logging.INFO)
    tracer = TracerProvider().get_tracer("t")
    with tracer.start_as_current_span("checkout") as span:
        logger.warning("payment declined for %s", "order-7", extra={"order.id": 7})
        logger.info("retrying")
        trace_id = format(span.get_span_context().trace_id, "032x")
    logger.error("outside any span")
    provider.shutdown()
    return encode_logs(exporter.get_finished_logs()), f"1-{trace_id[:8]}-{trace_id[8:]}"


@pytest.fixture
def sink(store: Store) -> Iterator[tuple[OtlpLogSink, LogStore]]:
    logs = LogStore(store, 30)
    writer = LogWriter(logs)
    yield OtlpLogSink(logs, writer), logs
    writer.close()


def test_records_become_lines_found_by_their_trace(
    sink: tuple[OtlpLogSink, LogStore],
) -> None:
    target, logs = sink
    request, trace_id = _records(
        {"service.name": "checkout", "service.instance.id": "i-1",
         "aws.log.group.names": "/aws/ecs/checkout&/other"}
    )  # fmt: skip
    out = Translation(what="log record")
    batches = log_batches(request, int(time.time() * 1000), out)
    assert out.rejected == 0 and [(b.group, b.stream) for b in batches] == [
        ("/aws/ecs/checkout", "i-1")
    ]
    asyncio.run(target.put(batches))
    asyncio.run(target.put(batches[:0]))  # nothing: nothing to do
    lines = logs.trace_lines(trace_id)
    assert [json.loads(e.message)["body"] for e in lines] == [
        "payment declined for order-7",
        "retrying",
    ]
    first = json.loads(lines[0].message)
    assert first["traceId"] == trace_id and len(first["spanId"]) == 16
    assert first["level"] == "WARN" and first["severityNumber"] == 13
    assert first["attributes"]["order.id"] == 7
    assert lines[0].log_group == "/aws/ecs/checkout" and lines[0].stream == "i-1"


def test_a_record_with_bad_ids_is_rejected_alone() -> None:
    request, _ = _records({"service.name": "svc"})
    records = request.resource_logs[0].scope_logs[0].log_records
    records[0].trace_id = b"\x01\x02"
    records[1].span_id = b"\x01" * 9
    out = Translation(what="log record")
    (batch,) = log_batches(request, 0, out)
    assert out.rejected == 2 and "2 log record(s) rejected" in out.message
    assert batch.group == "/otel/svc" and len(batch.messages) == 1
    assert json.loads(batch.messages[0])["level"] == "ERROR"


LOG_CLIENT = """
import logging
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
if VALUES["grpc"]:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    exporter = OTLPLogExporter(endpoint=VALUES["endpoint"], insecure=True)
else:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    exporter = OTLPLogExporter(endpoint=VALUES["endpoint"])
provider = LoggerProvider(resource=Resource.create({"service.name": "api"}))
provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
logger = logging.getLogger("app")
logger.addHandler(LoggingHandler(logger_provider=provider))
for n in range(5):
    logger.warning("line %d", n)
provider.shutdown()
print(json.dumps("sent"))
"""


@pytest.fixture(scope="module")
def logs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    grpc = free_port()
    server = start_server(
        tmp_path_factory.mktemp("otlp-logs"), "--otlp-grpc-listen", f"127.0.0.1:{grpc}"
    )
    yield server, grpc
    server.stop()


@pytest.mark.parametrize("grpc", [False, True])
def test_the_sdks_log_exporters_are_answered_and_counted(
    logs_server: tuple[ServerProcess, int], grpc: bool
) -> None:
    server, grpc_port = logs_server
    before = server.counter("otlp_log_records")
    endpoint = f"http://127.0.0.1:{grpc_port}" if grpc else f"{server.url}/v1/logs"
    run_client(LOG_CLIENT, grpc=grpc, endpoint=endpoint)
    assert wait_for(lambda: server.counter("otlp_log_records") - before >= 5)
    assert server.counter("otlp_log_rejected") == 0
