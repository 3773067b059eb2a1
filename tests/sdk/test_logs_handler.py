"""LogsHandler without a server: batching limits, the event text, and a server that is
away (refused connections, or a peer that accepts and never answers).

What is checked here is what must hold whatever the server does: ``emit`` returns at
once and never raises, ``flush``/``close`` return within their timeouts, and every record
is accounted for as sent or dropped with a reason. The handler against the real server
is in ``test_logs_server.py``.
"""

from __future__ import annotations

import collections
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from fluoroscope.sdk import InMemoryEmitter, LogsHandler, Tracer
from fluoroscope.sdk._errors import ConfigurationError
from fluoroscope.sdk._logs import EVENT_OVERHEAD, MAX_SPAN_MS, Event, take_batch
from fluoroscope.sdk._logs_format import json_line, text_line
from fluoroscope.sdk.instrument.logging import LoggingInstrumentor
from tests.support import wait_for


def _record(msg: str = "hello", **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("orders.db", logging.INFO, __file__, 7, msg, None, None, "load")
    record.__dict__.update(extra)
    return record


@pytest.fixture
def tracer() -> Tracer:
    return Tracer(service="orders", emitter=InMemoryEmitter(), sampling=False)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_peer() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield int(sock.getsockname()[1])
    finally:
        sock.close()


def _logger(handler: logging.Handler, name: str) -> logging.Logger:
    log = logging.getLogger(f"tests.logs.{name}")
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return log


# -- batching -------------------------------------------------------------------------


def _take(
    queue: collections.deque[Event], count: int = 10_000, size: int = 1_048_576
) -> tuple[list[Event], int]:
    return take_batch(queue, threading.Lock(), count, size)


def test_a_batch_holds_at_most_the_count_and_the_bytes_with_26_per_event() -> None:
    queue: collections.deque[Event] = collections.deque((i, b"x" * 74) for i in range(25_000))
    first, size = _take(queue)
    assert len(first) == 10_000 and size == 10_000 * (74 + EVENT_OVERHEAD)
    # 100 bytes per event: 1,048,576 // 100 = 10,485 would fit; a smaller byte cap binds
    second, size = _take(queue, size=100 * 700 + 99)
    assert len(second) == 700 and size == 70_000
    assert [ts for ts, _ in first + second] == list(range(10_700))
    exact = collections.deque((i, b"y" * 1000) for i in range(2000))
    batch, size = _take(exact)
    assert size <= 1_048_576 < size + 1026
    assert len(batch) == 1_048_576 // 1026


def test_a_batch_is_chronological_and_spans_at_most_24_hours() -> None:
    day = MAX_SPAN_MS
    queue: collections.deque[Event] = collections.deque(
        [(50, b"c"), (10, b"a"), (day + 11, b"late"), (30, b"b"), (day + 10, b"edge")]
    )
    batch, size = _take(queue)
    assert batch == [(10, b"a"), (30, b"b"), (50, b"c"), (day + 10, b"edge")]
    assert size == 4 + 4 * EVENT_OVERHEAD + 3
    assert list(queue) == [(day + 11, b"late")]  # put back at the front for the next batch


# -- the event text ---------------------------------------------------------------------


def test_a_json_line_carries_the_trace_id_and_the_current_entity_id(tracer: Tracer) -> None:
    with tracer.segment("web") as seg, tracer.subsegment("load") as sub:
        data, cut = json_line(_record("user %s", user=42), "orders", 1000)
    doc = json.loads(data)
    assert not cut
    assert doc["xray_trace_id"] == seg.trace_id
    assert doc["xray_segment_id"] == sub.id != seg.id
    assert (doc["message"], doc["level"], doc["service"], doc["user"]) == (
        "user %s",
        "INFO",
        "orders",
        42,
    )
    outside, _ = json_line(_record(), "orders", 1000)
    assert "xray_trace_id" not in json.loads(outside)


def test_ids_stamped_when_the_record_was_created_win(tracer: Tracer) -> None:
    instrumentor = LoggingInstrumentor()
    instrumentor.instrument()
    try:
        with tracer.segment("web") as seg:
            record = logging.getLogRecordFactory()(
                "x", logging.INFO, __file__, 1, "made in the request", None, None
            )
    finally:
        instrumentor.uninstrument()
    data, _ = json_line(record, "orders", 1000)  # handled later, outside the segment
    assert json.loads(data)["xray_trace_id"] == seg.trace_id


def test_a_long_line_is_cut_to_the_limit_and_stays_json_with_its_ids(tracer: Tracer) -> None:
    with tracer.segment("web") as seg:
        data, cut = json_line(_record("é" * 300_000), "orders", 100_000)
    doc = json.loads(data)
    assert cut and len(data) <= 100_000
    assert doc["xray_trace_id"] == seg.trace_id
    assert doc["message"].endswith("…[truncated]")
    bad, _ = json_line(_record("half a pair: \udc80"), "orders", 1000)
    assert "\ufffd" in json.loads(bad.decode("utf-8"))["message"]


def test_a_formatters_text_gets_the_ids_appended_when_it_lacks_them(tracer: Tracer) -> None:
    with tracer.segment("web") as seg:
        record = _record()
        data, _ = text_line(record, "INFO hello", 1000)
        assert data.decode() == f"INFO hello AWS-XRAY-TRACE-ID: {seg.trace_id}@{seg.id}"
        data, _ = text_line(record, f"INFO [{seg.trace_id}] hello", 1000)
        assert data.decode() == f"INFO [{seg.trace_id}] hello"
        data, cut = text_line(record, "z" * 5000, 1000)
    assert cut and len(data) <= 1000
    assert data.decode().endswith(f"AWS-XRAY-TRACE-ID: {seg.trace_id}@{seg.id}")


# -- configuration --------------------------------------------------------------------


def test_names_default_to_the_service_and_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FLUOROSCOPE_LOG_GROUP", "FLUOROSCOPE_LOG_STREAM", "FLUOROSCOPE_LOGS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", raising=False)
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:4321")
    handler = LogsHandler(service="orders web:v2")
    assert handler.log_group == "orders_web_v2"
    assert handler.log_stream == socket.gethostname().replace(":", "_")
    assert handler.endpoint.url == "http://127.0.0.1:4321"
    monkeypatch.setenv("FLUOROSCOPE_LOG_GROUP", "/env/group")
    monkeypatch.setenv("FLUOROSCOPE_LOG_STREAM", "env-stream")
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", "http://127.0.0.1:9/base/")
    handler = LogsHandler(service="orders")
    assert (handler.log_group, handler.log_stream) == ("/env/group", "env-stream")
    assert handler.endpoint.url == "http://127.0.0.1:9/base" and handler.endpoint.path == "/base/"
    handler = LogsHandler("127.0.0.1:7", log_group="/arg", log_stream="s")
    assert (handler.log_group, handler.log_stream, handler.endpoint.port) == ("/arg", "s", 7)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"endpoint": "ftp://host"},
        {"log_group": "bad group"},
        {"log_group": "aws/reserved"},
        {"log_stream": "a:b"},
        {"max_batch_count": 10_001},
        {"max_batch_bytes": 2_000_000},
    ],
)
def test_bad_explicit_arguments_raise_at_setup(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        LogsHandler(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "credentials",
    [
        ("AKID",),
        ("AKID", ""),
        ("AKID", "secret", "token", "extra"),
        ["AKID", "secret"],
        ("AKID", 5),
        "AKID:secret",
    ],
)
def test_malformed_credentials_are_refused_at_setup_with_their_shape_not_their_value(
    credentials: object,
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        LogsHandler("127.0.0.1:9", credentials=credentials)  # type: ignore[arg-type]
    assert str(raised.value) == (
        "credentials must be (ACCESS_KEY_ID, SECRET_ACCESS_KEY[, SESSION_TOKEN])"
    )


# -- a server that is away --------------------------------------------------------------


def test_an_unreachable_server_costs_the_app_nothing_and_every_drop_is_counted(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    handler = LogsHandler(
        f"http://127.0.0.1:{closed_port}", service="orders", send_interval=0.05, max_queue=500
    )
    log = _logger(handler, "unreachable")
    began = time.monotonic()
    for i in range(5000):
        log.info("event %d", i)
    emitting = time.monotonic() - began
    assert emitting < 5.0  # ~20 µs each unloaded; the network is never waited for

    def settled() -> bool:
        stats = handler.stats()
        return stats["queued"] == 0 and stats["dropped"] >= 5000

    wait_for(settled, timeout=30)
    began = time.monotonic()
    assert handler.flush(timeout=1.0) is False  # records were dropped
    assert handler.flush(timeout=1.0) is True  # none since the previous flush
    log.info("one more")
    assert handler.flush(timeout=1.0) is False  # dropped: not delivered
    assert (
        time.monotonic() - began < 5.0
    )  # three flushes of at most 1 s each, with slack for a loaded machine
    began = time.monotonic()
    handler.close(timeout=1.0)
    assert time.monotonic() - began < 3.0
    stats = handler.stats()
    assert stats["sent"] == 0
    assert stats["dropped"] == 5001
    assert stats["dropped_unreachable"] > 0 and stats["dropped_queue_full"] > 0
    assert stats["dropped_unreachable"] + stats["dropped_queue_full"] == 5001
    log.info("after close")
    assert handler.stats()["dropped_closed"] == 1
    warnings = [r.getMessage() for r in caplog.records if r.name == "fluoroscope.sdk"]
    assert any("(unreachable)" in w for w in warnings)
    assert len(warnings) == len(set(warnings))  # each kind once, not once per record


def test_a_hung_server_bounds_flush_and_close(silent_peer: int) -> None:
    handler = LogsHandler(
        f"http://127.0.0.1:{silent_peer}",
        service="orders",
        send_interval=0.05,
        timeout=5.0,  # each request waits this long for an answer that never comes
        retries=0,
        max_queue=200,
    )
    log = _logger(handler, "hung")
    began = time.monotonic()
    for i in range(1000):
        log.info("event %d", i)
    assert time.monotonic() - began < 5.0
    began = time.monotonic()
    assert handler.flush(timeout=1.0) is False
    assert 0.9 < time.monotonic() - began < 4.0
    began = time.monotonic()
    handler.close(timeout=1.0)
    assert time.monotonic() - began < 4.0
    wait_for(lambda: handler.stats()["dropped"] == 1000, timeout=10)
    stats = handler.stats()
    assert stats["sent"] == 0 and stats["dropped_queue_full"] > 0
    assert stats["dropped_unreachable"] + stats["dropped_closed"] > 0


def test_the_handler_on_the_root_logger_does_not_feed_on_its_own_warnings(
    closed_port: int,
) -> None:
    handler = LogsHandler(f"http://127.0.0.1:{closed_port}", send_interval=0.05, retries=0)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logging.getLogger("tests.logs.root").warning("one record")
        wait_for(lambda: handler.stats()["dropped_unreachable"] >= 1, timeout=10)
        # the SDK's warning about the drop came from the sender thread: not shipped,
        # so nothing else is queued or dropped
        handler.flush(timeout=1.0)
        stats = handler.stats()
        assert stats["dropped"] == 1 and stats["queued"] == 0
    finally:
        root.removeHandler(handler)
        handler.close(timeout=1.0)
