"""aiohttp.web served on loopback by its own runner, called with aiohttp's client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from fluoroscope.sdk import Tracer, current_entity
from fluoroscope.sdk.middleware.aiohttp import trace_aiohttp, xray_middleware
from tests.sdk.conftest import UDPDaemon, by_name
from tests.sdk.middleware.conftest import PARENT_ID, TRACE_ID, response_root

Calls = Callable[[aiohttp.ClientSession], Awaitable[Any]]


def make_app(tracer: Tracer, *, bare: bool = False) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        with tracer.subsegment("work") as sub:
            sub.put_annotation("k", 1)
            await asyncio.sleep(0)
        return web.Response(text="hi")

    async def whoami(request: web.Request) -> web.Response:
        entity = current_entity()
        return web.Response(text="" if entity is None else (entity.trace_header() or ""))

    async def throttled(request: web.Request) -> web.Response:
        raise web.HTTPTooManyRequests()

    async def boom(request: web.Request) -> web.Response:
        raise ValueError("aiohttp kaboom")

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(3):
            await asyncio.sleep(0.1)
            with tracer.subsegment(f"chunk{i}"):
                await response.write(f"{i}\n".encode())
        await response.write_eof()
        return response

    app = web.Application(middlewares=[xray_middleware(tracer)] if bare else [])
    app.router.add_get("/hello", hello)
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/throttled", throttled)
    app.router.add_get("/boom", boom)
    app.router.add_get("/stream", stream)
    if not bare:
        trace_aiohttp(app, tracer)
        trace_aiohttp(app, tracer)  # idempotent
    return app


def serve(app: web.Application, calls: Calls) -> Any:
    """Serve ``app`` on loopback, run ``calls`` with a client session, stop the server."""

    async def main() -> Any:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as session:
                return await calls(session)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


async def _get(
    session: aiohttp.ClientSession, path: str, headers: dict[str, str] | None = None
) -> tuple[int, str | None, str]:
    async with session.get(path, headers=headers) as response:
        return response.status, response.headers.get("X-Amzn-Trace-Id"), await response.text()


def test_sampled_header_continues_the_trace(tracer: Tracer, daemon: UDPDaemon) -> None:
    header = {"X-Amzn-Trace-Id": f"Root={TRACE_ID};Parent={PARENT_ID};Sampled=1"}
    status, trace, text = serve(make_app(tracer), lambda s: _get(s, "/hello?x=1", header))
    assert (status, trace, text) == (200, f"Root={TRACE_ID}", "hi")
    (doc,) = daemon.documents(1)
    assert (doc["trace_id"], doc["parent_id"]) == (TRACE_ID, PARENT_ID)
    request = doc["http"]["request"]
    assert request["method"] == "GET"
    assert request["url"].startswith("http://127.0.0.1:")
    assert request["url"].endswith("/hello")
    assert request["client_ip"] == "127.0.0.1"
    assert doc["http"]["response"] == {"status": 200, "content_length": 2}
    assert [s["name"] for s in doc["subsegments"]] == ["work"]


def test_not_sampled_and_sampling_requested(tracer: Tracer, daemon: UDPDaemon) -> None:
    async def calls(session: aiohttp.ClientSession) -> Any:
        off = await _get(session, "/whoami", {"X-Amzn-Trace-Id": f"Root={TRACE_ID};Sampled=0"})
        asked = await _get(session, "/hello", {"X-Amzn-Trace-Id": f"Root={TRACE_ID};Sampled=?"})
        return off, asked

    off, asked = serve(make_app(tracer), calls)
    assert off[1] == f"Root={TRACE_ID}"
    assert off[2].endswith(";Sampled=0")
    assert asked[1] == f"Root={TRACE_ID};Sampled=1"
    (doc,) = daemon.documents(1)
    assert daemon.quiet(0.2) == [doc]
    assert doc["http"]["request"]["url"].endswith("/hello")


def test_http_exceptions_and_errors(tracer: Tracer, daemon: UDPDaemon) -> None:
    async def calls(session: aiohttp.ClientSession) -> Any:
        return [await _get(session, path) for path in ("/missing", "/throttled", "/boom")]

    results = serve(make_app(tracer), calls)
    assert [r[0] for r in results] == [404, 429, 500]
    roots = [response_root(r[1]) for r in results]
    docs = {d["trace_id"]: d for d in daemon.documents(3)}
    missing, throttled, boom = (docs[root] for root in roots)
    assert missing["error"] is True
    assert "fault" not in missing
    assert throttled["throttle"] is True
    assert throttled["http"]["response"]["status"] == 429
    assert boom["fault"] is True
    assert boom["http"]["response"]["status"] == 500
    (exc,) = boom["cause"]["exceptions"]
    assert (exc["type"], exc["message"]) == ("ValueError", "aiohttp kaboom")
    assert "boom" in [frame["label"] for frame in exc["stack"]]


def test_stream_response_gets_the_header_and_is_timed(tracer: Tracer, daemon: UDPDaemon) -> None:
    status, trace, text = serve(make_app(tracer), lambda s: _get(s, "/stream"))
    assert (status, text) == (200, "0\n1\n2\n")
    (doc,) = daemon.documents(1)
    assert trace == f"Root={doc['trace_id']}"
    assert doc["end_time"] - doc["start_time"] >= 0.3
    found = by_name([doc])
    assert {found[f"chunk{i}"]["_parent"] for i in range(3)} == {doc["id"]}


def test_bare_middleware(tracer: Tracer, daemon: UDPDaemon) -> None:
    began = time.time()
    status, trace, _ = serve(make_app(tracer, bare=True), lambda s: _get(s, "/hello"))
    assert status == 200
    (doc,) = daemon.documents(1)
    assert trace == f"Root={doc['trace_id']}"
    assert doc["start_time"] >= began
