"""FastAPI (Starlette) under uvicorn on loopback, requests sent by ``httpx``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import BackgroundTasks, FastAPI, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from fluoroscope.model.trace_header import parse_trace_header
from fluoroscope.sdk import ConstantSampler, Tracer, current_entity
from fluoroscope.sdk.middleware import XRayASGIMiddleware
from tests.sdk.conftest import UDPDaemon, by_name
from tests.sdk.middleware.conftest import PARENT_ID, TRACE_ID, response_root, serve_asgi


def make_app(tracer: Tracer) -> FastAPI:
    app = FastAPI()

    @app.get("/hello", response_class=PlainTextResponse)
    async def hello() -> str:
        with tracer.subsegment("work") as sub:
            sub.put_annotation("k", 1)
            await asyncio.sleep(0)
        return "hi"

    @app.get("/sync", response_class=PlainTextResponse)
    def sync_endpoint() -> str:  # run in Starlette's thread pool
        with tracer.subsegment("in-thread"):
            pass
        entity = current_entity()
        return "" if entity is None else entity.segment.id

    @app.get("/concurrent/{n}", response_class=PlainTextResponse)
    async def concurrent(n: int) -> str:
        with tracer.subsegment("step") as sub:
            sub.put_annotation("n", n)
            await asyncio.sleep(0.05)
        entity = current_entity()
        return "" if entity is None else entity.id

    @app.get("/whoami", response_class=PlainTextResponse)
    async def whoami() -> str:
        entity = current_entity()
        return "" if entity is None else (entity.trace_header() or "")

    @app.get("/status/{code}")
    async def status(code: int) -> Response:
        return Response("x", status_code=code)

    @app.get("/boom")
    async def boom() -> str:
        raise ValueError("async kaboom")

    @app.get("/boom-sync")
    def boom_sync() -> str:
        raise KeyError("sync kaboom")

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                await asyncio.sleep(0.1)
                with tracer.subsegment(f"chunk{i}"):
                    pass
                yield f"{i}\n".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/background", response_class=PlainTextResponse)
    async def background(tasks: BackgroundTasks) -> str:
        def later() -> None:
            with tracer.subsegment("after-response"):
                time.sleep(0.05)

        tasks.add_task(later)
        return "queued"

    return app


@pytest.fixture
def base(tracer: Tracer) -> Iterator[str]:
    app = make_app(tracer)
    app.add_middleware(XRayASGIMiddleware, tracer=tracer)
    with serve_asgi(app) as url:
        yield url


def test_sampled_header_continues_the_trace(base: str, daemon: UDPDaemon) -> None:
    header = f"Root={TRACE_ID};Parent={PARENT_ID};Sampled=1"
    r = httpx.get(
        f"{base}/hello?token=secret",
        headers={"X-Amzn-Trace-Id": header, "User-Agent": "test-agent/1.0"},
    )
    assert r.status_code == 200
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID}"
    (doc,) = daemon.documents(1)
    assert doc["name"] == "test-svc"
    assert doc["trace_id"] == TRACE_ID
    assert doc["parent_id"] == PARENT_ID
    assert doc["http"] == {
        "request": {
            "method": "GET",
            "url": f"{base}/hello",
            "user_agent": "test-agent/1.0",
            "client_ip": "127.0.0.1",
        },
        "response": {"status": 200, "content_length": 2},
    }
    (work,) = doc["subsegments"]
    assert work["name"] == "work"
    assert work["annotations"] == {"k": 1}


def test_sync_endpoint_in_the_thread_pool_sees_the_segment(base: str, daemon: UDPDaemon) -> None:
    r = httpx.get(f"{base}/sync")
    (doc,) = daemon.documents(1)
    assert r.text == doc["id"]
    assert [s["name"] for s in doc["subsegments"]] == ["in-thread"]


def test_forwarded_for_is_the_client(base: str, daemon: UDPDaemon) -> None:
    httpx.get(f"{base}/hello", headers={"X-Forwarded-For": "198.51.100.7"})
    (doc,) = daemon.documents(1)
    assert doc["http"]["request"]["client_ip"] == "198.51.100.7"
    assert doc["http"]["request"]["x_forwarded_for"] is True


def test_not_sampled_emits_nothing_but_propagates(base: str, daemon: UDPDaemon) -> None:
    r = httpx.get(f"{base}/whoami", headers={"X-Amzn-Trace-Id": f"Root={TRACE_ID};Sampled=0"})
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID}"
    downstream = parse_trace_header(r.text)
    assert downstream is not None
    assert (downstream.root, downstream.sampled) == (TRACE_ID, "0")
    assert daemon.quiet() == []


def test_sampling_requested_gets_the_decision_back(base: str, daemon: UDPDaemon) -> None:
    r = httpx.get(f"{base}/hello", headers={"X-Amzn-Trace-Id": f"Root={TRACE_ID};Sampled=?"})
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID};Sampled=1"
    (doc,) = daemon.documents(1)
    assert doc["trace_id"] == TRACE_ID


def test_sampling_requested_and_refused(daemon: UDPDaemon) -> None:
    tracer = Tracer("no", daemon_address=daemon.address, sampler=ConstantSampler(False))
    with serve_asgi(XRayASGIMiddleware(make_app(tracer), tracer)) as base:
        r = httpx.get(f"{base}/hello", headers={"X-Amzn-Trace-Id": f"Root={TRACE_ID};Sampled=?"})
        plain = httpx.get(f"{base}/hello")
    tracer.close()
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID};Sampled=0"
    assert (
        plain.headers["X-Amzn-Trace-Id"]
        == f"Root={response_root(plain.headers.get('X-Amzn-Trace-Id'))}"
    )
    assert daemon.quiet() == []


def test_no_header_starts_a_new_trace(base: str, daemon: UDPDaemon) -> None:
    r = httpx.get(f"{base}/hello")
    root = response_root(r.headers.get("X-Amzn-Trace-Id"))
    (doc,) = daemon.documents(1)
    assert doc["trace_id"] == root != TRACE_ID
    assert "parent_id" not in doc


@pytest.mark.parametrize(
    ("code", "flags"),
    [(404, {"error"}), (429, {"error", "throttle"}), (500, {"fault"}), (202, set())],
)
def test_status_flags(base: str, daemon: UDPDaemon, code: int, flags: set[str]) -> None:
    assert httpx.get(f"{base}/status/{code}").status_code == code
    (doc,) = daemon.documents(1)
    assert doc["http"]["response"]["status"] == code
    assert {f for f in ("error", "fault", "throttle") if doc.get(f)} == flags


def test_unknown_route_is_a_404(base: str, daemon: UDPDaemon) -> None:
    assert httpx.get(f"{base}/nowhere").status_code == 404
    (doc,) = daemon.documents(1)
    assert doc["error"] is True
    assert doc["http"]["response"]["status"] == 404


@pytest.mark.parametrize(
    ("path", "kind", "label"),
    [("/boom", "ValueError", "boom"), ("/boom-sync", "KeyError", "boom_sync")],
)
def test_exception_in_handler_is_the_cause(
    base: str, daemon: UDPDaemon, path: str, kind: str, label: str
) -> None:
    r = httpx.get(f"{base}{path}")
    assert r.status_code == 500
    (doc,) = daemon.documents(1)
    assert doc["fault"] is True
    assert doc["http"]["response"]["status"] == 500
    (exc,) = doc["cause"]["exceptions"]
    assert exc["type"] == kind
    assert label in [frame["label"] for frame in exc["stack"]]


def test_wrapped_outermost_returns_the_header_with_the_500(
    tracer: Tracer, daemon: UDPDaemon
) -> None:
    with serve_asgi(XRayASGIMiddleware(make_app(tracer), tracer)) as base:
        r = httpx.get(f"{base}/boom", headers={"X-Amzn-Trace-Id": f"Root={TRACE_ID};Sampled=1"})
    assert r.status_code == 500
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID}"
    (doc,) = daemon.documents(1)
    assert doc["http"]["response"]["status"] == 500
    assert doc["cause"]["exceptions"][0]["type"] == "ValueError"


def test_streamed_body_is_timed_to_the_last_chunk(base: str, daemon: UDPDaemon) -> None:
    with httpx.stream("GET", f"{base}/stream") as r:
        body = b"".join(r.iter_bytes())
        received = time.time()
    assert body == b"0\n1\n2\n"
    (doc,) = daemon.documents(1)
    assert doc["end_time"] - doc["start_time"] >= 0.3
    assert doc["end_time"] <= received
    assert doc["http"]["response"]["content_length"] == 6
    found = by_name([doc])
    for i in range(3):
        assert found[f"chunk{i}"]["_parent"] == doc["id"]


def test_background_task_nests_and_response_time_excludes_it(base: str, daemon: UDPDaemon) -> None:
    assert httpx.get(f"{base}/background").text == "queued"
    (doc,) = daemon.documents(1)
    (after,) = doc["subsegments"]
    assert after["name"] == "after-response"
    assert after["end_time"] > doc["end_time"]


def test_lifespan_and_websocket_pass_through_untouched(tracer: Tracer, daemon: UDPDaemon) -> None:
    seen: list[tuple[object, object, object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append((scope, receive, send))

    async def receive() -> dict[str, object]:
        return {"type": "lifespan.startup"}

    async def send(message: object) -> None:
        return None

    middleware = XRayASGIMiddleware(app, tracer)  # type: ignore[arg-type]
    for kind in ("lifespan", "websocket"):
        scope: dict[str, object] = {"type": kind, "headers": []}
        asyncio.run(middleware(scope, receive, send))
        assert seen[-1] == (scope, receive, send)
        assert scope == {"type": kind, "headers": []}
    assert daemon.quiet(0.1) == []


def test_concurrent_requests_keep_their_own_segments(base: str, daemon: UDPDaemon) -> None:
    async def fire() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base) as client:
            return await asyncio.gather(*(client.get(f"/concurrent/{n}") for n in range(20)))

    responses = asyncio.run(fire())
    docs = daemon.documents(20)
    by_id = {doc["id"]: doc for doc in docs}
    for n, response in enumerate(responses):
        doc = by_id[response.text]
        assert doc["http"]["request"]["url"].endswith(f"/concurrent/{n}")
        (step,) = doc["subsegments"]
        assert step["annotations"] == {"n": n}
        assert response.headers["X-Amzn-Trace-Id"] == f"Root={doc['trace_id']}"


def test_wrapped_twice_records_one_segment(tracer: Tracer, daemon: UDPDaemon) -> None:
    app = make_app(tracer)
    app.add_middleware(XRayASGIMiddleware, tracer=tracer)
    with serve_asgi(XRayASGIMiddleware(app, tracer)) as base:
        r = httpx.get(f"{base}/boom")
    assert r.status_code == 500
    (doc,) = daemon.documents(1)
    assert daemon.quiet(0.2) == [doc]
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={doc['trace_id']}"
    assert doc["cause"]["exceptions"][0]["type"] == "ValueError"
