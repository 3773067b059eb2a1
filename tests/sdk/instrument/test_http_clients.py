"""HTTP-client instrumentations against a real server on loopback.

Every HTTP instrumentation (and botocore) is on at once in these tests, so each
check that exactly one subsegment was recorded also checks that the libraries
underneath (urllib3 under requests, http.client under urllib.request) stay quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import httpx
import pytest
import requests
import urllib3

from fluoroscope.model.trace_header import parse_trace_header, parse_traceparent
from fluoroscope.sdk import ConstantSampler, ContextMissingError, Tracer, carry
from fluoroscope.sdk.instrument import get_instrumentor, start_call, suppress_instrumentation
from fluoroscope.sdk.instrument.outgoing import add_ignored, clear_ignored, set_traceparent
from tests.sdk.conftest import UDPDaemon, flatten
from tests.sdk.instrument.conftest import BODY, RecordingServer


def _requests(url: str) -> int:
    return requests.get(url, timeout=5).status_code


def _httpx(url: str) -> int:
    with httpx.Client(timeout=5) as client:
        return client.get(url).status_code


def _httpx_async(url: str) -> int:
    async def go() -> int:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(url)).status_code

    return asyncio.run(go())


def _urllib3(url: str) -> int:
    with urllib3.PoolManager() as pool:
        return pool.request("GET", url, retries=False, timeout=5).status


def _urllib(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def _aiohttp(url: str) -> int:
    async def go() -> int:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            await response.read()
            return response.status

    return asyncio.run(go())


CLIENTS: dict[str, Callable[[str], int]] = {
    "requests": _requests,
    "httpx": _httpx,
    "httpx-async": _httpx_async,
    "urllib3": _urllib3,
    "urllib": _urllib,
    "aiohttp": _aiohttp,
}
REFUSED = (OSError, httpx.ConnectError, urllib3.exceptions.HTTPError, aiohttp.ClientError)
"""What each client raises when nothing listens."""

INSTRUMENTOR = {
    "requests": "requests",
    "httpx": "httpx",
    "httpx-async": "httpx",
    "urllib3": "urllib3",
    "urllib": "http.client",
    "aiohttp": "aiohttp",
}


def _calls(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The remote/aws subsegments in ``docs``, each with its ``trace_id`` filled in."""
    trace_ids = {doc["trace_id"] for doc in docs}
    assert len(trace_ids) <= 1
    return [
        {"trace_id": doc_trace, **e}
        for doc_trace in trace_ids
        for e in flatten(docs).values()
        if e.get("namespace") in ("remote", "aws")
    ]


def _traced(tracer: Tracer, daemon: UDPDaemon, fetch: Callable[[], object]) -> dict[str, Any]:
    """Run ``fetch`` in a segment; the one remote subsegment it produced."""
    with tracer.segment("client-test"):
        fetch()
    tracer.flush()
    docs = daemon.documents(1)
    calls = _calls(docs)
    assert len(calls) == 1, calls
    return calls[0]


@pytest.mark.usefixtures("all_http")
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    ("status", "flags"),
    [
        (200, set()),
        (404, {"error"}),
        (429, {"error", "throttle"}),
        (503, {"fault"}),
    ],
)
def test_one_subsegment_per_request_with_header_status_and_flags(
    client: str,
    status: int,
    flags: set[str],
    tracer: Tracer,
    daemon: UDPDaemon,
    server: RecordingServer,
) -> None:
    fetch = CLIENTS[client]
    seen: list[int] = []
    call = _traced(
        tracer, daemon, lambda: seen.append(fetch(f"{server.url}/status/{status}?token=secret"))
    )
    assert seen == [status]
    assert call["name"] == "127.0.0.1"
    assert call["namespace"] == "remote"
    assert call["http"]["request"] == {"method": "GET", "url": f"{server.url}/status/{status}"}
    response = call["http"]["response"]
    assert response["status"] == status
    assert response.get("content_length", len(BODY)) == len(BODY)
    assert {f for f in ("error", "throttle", "fault") if call.get(f)} == flags
    assert "cause" not in call
    (received,) = server.received
    header = parse_trace_header(received.header("X-Amzn-Trace-Id"))
    assert header is not None
    assert header.root == call["trace_id"]
    assert header.parent == call["id"]
    assert header.sampled == "1"
    assert received.header("traceparent") is None


@pytest.mark.usefixtures("all_http")
@pytest.mark.parametrize("client", CLIENTS)
def test_connection_refused_is_a_fault_with_the_exception(
    client: str, tracer: Tracer, daemon: UDPDaemon, refused_url: str
) -> None:
    def fetch() -> None:
        with pytest.raises(REFUSED):
            CLIENTS[client](f"{refused_url}/x")

    call = _traced(tracer, daemon, fetch)
    assert call["fault"] is True
    assert call["http"]["request"]["url"] == f"{refused_url}/x"
    assert "response" not in call["http"]
    (exc,) = call["cause"]["exceptions"][:1]
    assert exc["remote"] is False
    assert exc["type"]


@pytest.mark.usefixtures("all_http")
@pytest.mark.parametrize("client", CLIENTS)
def test_unsampled_sends_sampled_0_and_emits_nothing(
    client: str, daemon: UDPDaemon, server: RecordingServer
) -> None:
    tracer = Tracer(
        service="unsampled", daemon_address=daemon.address, sampler=ConstantSampler(False)
    )
    try:
        with tracer.segment() as seg:
            CLIENTS[client](f"{server.url}/a")
        tracer.flush()
    finally:
        tracer.close()
    assert daemon.quiet(0.2) == []
    header = parse_trace_header(server.received[0].header("X-Amzn-Trace-Id"))
    assert header is not None
    assert (header.root, header.sampled) == (seg.trace_id, "0")


@pytest.mark.usefixtures("all_http")
@pytest.mark.parametrize("client", CLIENTS)
def test_no_segment_logs_once_and_sends_no_header(
    client: str, server: RecordingServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert CLIENTS[client](f"{server.url}/a") == 200
    assert CLIENTS[client](f"{server.url}/b") == 200
    assert [r.header("X-Amzn-Trace-Id") for r in server.received] == [None, None]
    missing = [r for r in caplog.records if "no segment is active" in r.getMessage()]
    assert len(missing) == 1
    assert missing[0].levelno == logging.WARNING


@pytest.mark.usefixtures("all_http")
def test_no_segment_policies_ignore_and_raise(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_XRAY_CONTEXT_MISSING", "IGNORE_ERROR")
    assert _requests(f"{server.url}/a") == 200
    assert not [r for r in caplog.records if "no segment" in r.getMessage()]
    monkeypatch.setenv("AWS_XRAY_CONTEXT_MISSING", "RUNTIME_ERROR")
    with pytest.raises(ContextMissingError):
        _httpx(f"{server.url}/b")
    assert len(server.received) == 1  # the refused call never left


@pytest.mark.usefixtures("all_http")
def test_traceparent_when_enabled(
    tracer: Tracer, daemon: UDPDaemon, server: RecordingServer
) -> None:
    set_traceparent(True)
    try:
        call = _traced(tracer, daemon, lambda: _requests(f"{server.url}/a"))
    finally:
        set_traceparent(False)
    parent = parse_traceparent(server.received[0].header("traceparent"))
    assert parent is not None
    assert (parent.root, parent.parent, parent.sampled) == (call["trace_id"], call["id"], "1")


@pytest.mark.usefixtures("all_http")
def test_xray_api_ignored_urls_and_suppressed_io_are_not_traced(
    tracer: Tracer, daemon: UDPDaemon, server: RecordingServer
) -> None:
    add_ignored(hostname="127.0.0.1", path="/private/*")
    try:
        with tracer.segment("quiet"):
            _requests(f"{server.url}/GetSamplingRules")
            _urllib(f"{server.url}/SamplingTargets")
            _httpx(f"{server.url}/private/x")
            with suppress_instrumentation():
                _aiohttp(f"{server.url}/sdk-own")
    finally:
        clear_ignored()
    tracer.flush()
    (doc,) = daemon.documents(1)
    assert "subsegments" not in doc
    assert [r.header("X-Amzn-Trace-Id") for r in server.received] == [None] * 4


@pytest.mark.usefixtures("all_http")
def test_inside_an_app_opened_remote_subsegment_only_the_header_is_added(
    tracer: Tracer, daemon: UDPDaemon, server: RecordingServer
) -> None:
    with tracer.segment("outer"), start_call("my-remote") as mine:
        _requests(f"{server.url}/a")
    tracer.flush()
    (call,) = _calls(daemon.documents(1))
    assert call["name"] == "my-remote"
    header = parse_trace_header(server.received[0].header("X-Amzn-Trace-Id"))
    assert header is not None
    assert header.parent == mine.id


def test_caller_headers_are_not_modified(
    tracer: Tracer, daemon: UDPDaemon, server: RecordingServer
) -> None:
    headers = {"X-Custom": "1"}
    with instrumented_many("urllib3", "http.client"), tracer.segment("h"):
        with urllib3.PoolManager() as pool:
            pool.request("GET", f"{server.url}/a", headers=headers)
        opener = urllib.request.build_opener()
        opener.open(urllib.request.Request(f"{server.url}/b", headers=headers)).close()
    assert headers == {"X-Custom": "1"}
    tracer.flush()
    assert len(_calls(daemon.documents(1))) == 2
    assert all(r.header("X-Custom") == "1" for r in server.received)
    assert all(r.header("X-Amzn-Trace-Id") for r in server.received)


@contextlib.contextmanager
def instrumented_many(*names: str) -> Iterator[None]:
    insts = [get_instrumentor(name) for name in names]
    for inst in insts:
        assert inst is not None
        assert inst.instrument()
    try:
        yield
    finally:
        for inst in insts:
            assert inst is not None
            inst.uninstrument()


@pytest.mark.parametrize("client", CLIENTS)
def test_instrument_is_idempotent_and_uninstrument_reverses(
    client: str, tracer: Tracer, daemon: UDPDaemon, server: RecordingServer
) -> None:
    inst = get_instrumentor(INSTRUMENTOR[client])
    assert inst is not None
    fetch = CLIENTS[client]
    try:
        assert inst.instrument()
        assert inst.instrument()  # twice: still one subsegment per request
        with tracer.segment("twice"):
            fetch(f"{server.url}/a")
    finally:
        inst.uninstrument()
        inst.uninstrument()
    assert not inst.instrumented
    with tracer.segment("after"):
        fetch(f"{server.url}/b")
    tracer.flush()
    docs = daemon.documents(2)
    by_segment = {d["name"]: _calls([d]) for d in docs}
    assert len(by_segment["twice"]) == 1
    assert by_segment["after"] == []
    assert server.received[0].header("X-Amzn-Trace-Id") is not None
    assert server.received[1].header("X-Amzn-Trace-Id") is None


def test_requests_alone_over_instrumented_urllib3_records_once(
    tracer: Tracer, daemon: UDPDaemon, server: RecordingServer
) -> None:
    with (
        instrumented_many("requests", "urllib3", "http.client"),
        tracer.segment("nested"),
        requests.Session() as session,
    ):
        session.get(f"{server.url}/status/302", timeout=5)  # redirect inside one send
    tracer.flush()
    (call,) = _calls(daemon.documents(1))
    assert call["http"]["response"]["status"] == 200
    assert len(server.received) == 2
    assert {r.header("X-Amzn-Trace-Id") for r in server.received} == {
        f"Root={call['trace_id']};Parent={call['id']};Sampled=1"
    }


@pytest.mark.usefixtures("all_http")
def test_concurrent_tasks_and_threads_each_get_their_own_subsegment(
    tracer: Tracer, daemon: UDPDaemon, server: RecordingServer
) -> None:
    async def fan_out() -> None:
        async with httpx.AsyncClient(timeout=5) as hx, aiohttp.ClientSession() as aio:

            async def via_httpx(i: int) -> None:
                (await hx.get(f"{server.url}/httpx/{i}")).raise_for_status()

            async def via_aiohttp(i: int) -> None:
                async with aio.get(f"{server.url}/aiohttp/{i}") as response:
                    await response.read()

            await asyncio.gather(*(f(i) for i in range(4) for f in (via_httpx, via_aiohttp)))

    with tracer.segment("fan-out") as seg:
        asyncio.run(fan_out())
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(carry(_requests), [f"{server.url}/thread/{i}" for i in range(4)]))
    tracer.flush()
    docs = daemon.documents(1)
    calls = {c["id"]: c for c in _calls(docs)}
    assert len(calls) == 12
    assert all(c["_parent"] == seg.id for c in calls.values())  # siblings, never nested
    parents: dict[str, str] = {}
    for received in server.received:
        header = parse_trace_header(received.header("X-Amzn-Trace-Id"))
        assert header is not None
        assert header.parent is not None
        parents[received.path] = header.parent
    assert len(parents) == 12
    assert set(parents.values()) == set(calls)
    for path, parent in parents.items():
        assert calls[parent]["http"]["request"]["url"] == f"{server.url}{path}"


@pytest.mark.usefixtures("all_http")
def test_http_client_keep_alive_connection_records_each_request(
    tracer: Tracer, daemon: UDPDaemon, server: RecordingServer
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        with tracer.segment("keep-alive"):
            for path in ("/status/200?x=1", "/status/404"):
                conn.request("POST", path, body=b"{}", headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                assert response.read() == BODY
    finally:
        conn.close()
    tracer.flush()
    calls = _calls(daemon.documents(1))
    assert [(c["http"]["request"]["url"], c["http"]["response"]["status"]) for c in calls] == [
        (f"{server.url}/status/200", 200),
        (f"{server.url}/status/404", 404),
    ]
    assert [c["http"]["request"]["method"] for c in calls] == ["POST", "POST"]
    parents = [parse_trace_header(r.header("X-Amzn-Trace-Id")) for r in server.received]
    assert [p.parent if p else None for p in parents] == [c["id"] for c in calls]


@pytest.mark.usefixtures("all_http")
def test_httpx_streaming_response_ends_at_headers(
    tracer: Tracer, daemon: UDPDaemon, server: RecordingServer
) -> None:
    with tracer.segment("stream"), httpx.Client() as hx, hx.stream("GET", f"{server.url}/s") as r:
        assert r.read() == BODY
    tracer.flush()
    (call,) = _calls(daemon.documents(1))
    assert call["http"]["response"] == {"status": 200, "content_length": len(BODY)}
