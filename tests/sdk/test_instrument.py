"""The instrumentation framework, the logging instrumentation and the author API."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from fluoroscope.model.trace_header import parse_trace_header
from fluoroscope.sdk import InMemoryEmitter, Tracer, instrument_all
from fluoroscope.sdk.instrument import (
    NOOP,
    REGISTRY,
    Instrumentor,
    Patch,
    current_trace_header,
    get_instrumentor,
    instrument,
    start_call,
    start_request,
    suppress_instrumentation,
    uninstrument_all,
    url_without_query,
)
from fluoroscope.sdk.instrument.logging import LOG_FORMAT, LoggingInstrumentor, TraceContextFilter


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def memory_tracer() -> Tracer:
    return Tracer(service="svc", emitter=InMemoryEmitter(), sampling=False)


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, ListHandler]]:
    logger = logging.getLogger("tests.sdk.app")
    handler = ListHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, handler
    logger.removeHandler(handler)


def test_logging_instrumentation_stamps_records_and_reverses(
    memory_tracer: Tracer, log: tuple[logging.Logger, ListHandler]
) -> None:
    logger, handler = log
    original = logging.getLogRecordFactory()
    inst = LoggingInstrumentor()
    assert isinstance(inst, Instrumentor)
    try:
        assert inst.instrument()
        assert inst.instrument()
        logger.info("outside")
        with memory_tracer.segment() as seg:
            logger.info("in segment")
            with memory_tracer.subsegment("db") as sub:
                logger.info("in subsegment")
    finally:
        inst.uninstrument()
        inst.uninstrument()
    assert logging.getLogRecordFactory() is original
    logger.info("after")
    stamps = [
        (getattr(r, "xray_trace_id", None), getattr(r, "xray_entity_id", None))
        for r in handler.records
    ]
    assert stamps == [("", ""), (seg.trace_id, seg.id), (seg.trace_id, sub.id), (None, None)]
    text = handler.format(handler.records[2])
    assert f"trace_id={seg.trace_id} entity_id={sub.id}" in text


def test_trace_context_filter(
    memory_tracer: Tracer, log: tuple[logging.Logger, ListHandler]
) -> None:
    logger, handler = log
    handler.addFilter(TraceContextFilter())
    with memory_tracer.segment() as seg:
        logger.info("x")
    assert handler.records[0].xray_trace_id == seg.trace_id  # type: ignore[attr-defined]


def test_registry_skips_unwritten_modules_and_instrument_all_is_idempotent() -> None:
    assert set(REGISTRY) >= {"logging", "botocore", "requests", "httpx", "futures"}
    try:
        first = instrument_all()
        second = instrument_all()
        assert first["logging"] is True
        assert second["logging"] is True
        assert "futures" not in first  # opt-in
        logging_inst = get_instrumentor("logging")
        assert logging_inst is not None
        assert logging_inst.instrumented
        assert instrument("no-such-lib") == {"no-such-lib": False}
    finally:
        uninstrument_all()
    assert logging_inst is not None
    assert not logging_inst.instrumented


def test_instrument_all_respects_sdk_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_XRAY_SDK_ENABLED", "false")
    assert not any(instrument_all().values())
    inst = get_instrumentor("logging")
    assert inst is None or not inst.instrumented


def test_start_call_records_once_and_propagates(memory_tracer: Tracer) -> None:
    emitter = memory_tracer.emitter
    assert start_call("example.com") is NOOP  # no segment: nothing, and no header
    assert NOOP.trace_header() is None
    assert current_trace_header() is None
    with memory_tracer.segment() as seg:
        assert current_trace_header() == f"Root={seg.trace_id};Parent={seg.id};Sampled=1"
        with start_call("example.com") as call:
            header = parse_trace_header(call.trace_header())
            assert header is not None
            assert header.parent == call.id
            assert header.sampled == "1"
            call.set_http_request(
                method="GET", url=url_without_query("http://example.com/a?token=s#f")
            )
            assert start_call("inner-lib") is NOOP  # a lower-level library under this call
            call.set_http_response(status=502, content_length=3)
        with suppress_instrumentation():
            assert start_call("sdk-own-io") is NOOP
        with pytest.raises(ConnectionError), start_call("down.example", namespace="aws") as failed:
            raise ConnectionError("refused")
    assert isinstance(emitter, InMemoryEmitter)
    subs = {s["name"]: s for s in emitter.subsegments()}
    assert set(subs) == {"example.com", "down.example"}
    assert subs["example.com"]["http"] == {
        "request": {"method": "GET", "url": "http://example.com/a"},
        "response": {"status": 502, "content_length": 3},
    }
    assert subs["example.com"]["fault"] is True
    assert subs["example.com"]["namespace"] == "remote"
    assert subs["down.example"]["cause"]["exceptions"][0]["type"] == "ConnectionError"
    assert failed.closed


def test_start_request_for_middleware(memory_tracer: Tracer) -> None:
    root = "1-5759e988-bd862e3fe1be46a994272793"
    seg = start_request(
        memory_tracer,
        header=f"Root={root};Parent=53995c3f42cd8ad8;Sampled=?".encode(),
        host="h",
        method="GET",
        path="/x",
    )
    with seg:
        seg.set_http_request(
            method="GET", url="http://h/x", client_ip="10.0.0.1", x_forwarded_for=True
        )
        seg.set_http_response(status=200)
    assert seg.response_header() == f"Root={root};Sampled=1"
    (doc,) = memory_tracer.emitter.documents  # type: ignore[attr-defined]
    assert doc["parent_id"] == "53995c3f42cd8ad8"
    assert doc["http"]["request"]["x_forwarded_for"] is True


class _Client:
    def get(self, x: int) -> int:
        return x


def test_patch_is_idempotent_reversible_and_respects_later_patches() -> None:
    original = _Client.get
    patch = Patch(_Client, "get", lambda orig: lambda self, x: orig(self, x) + 1)
    assert patch.apply()
    assert patch.apply()
    assert _Client().get(1) == 2
    assert _Client.get.__wrapped__ is original  # type: ignore[attr-defined]
    patch.revert()
    patch.revert()
    assert _Client.get is original
    patch.apply()
    layered = _Client.get
    _Client.get = lambda self, x: layered(self, x) * 10  # type: ignore[method-assign]
    patch.revert()  # someone wrapped us: leave their wrapper in place
    assert _Client().get(1) == 20
    _Client.get = original  # type: ignore[method-assign]
    assert not Patch(_Client, "missing", lambda o: o).apply()
