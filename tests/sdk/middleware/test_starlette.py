"""Plain Starlette through httpx's ASGITransport (no socket): mounts, scope fallbacks, lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from fluoroscope.sdk import Tracer, current_entity
from fluoroscope.sdk.middleware import ENVIRON_KEY, XRayASGIMiddleware
from tests.sdk.conftest import UDPDaemon

Message = MutableMapping[str, Any]


async def item(request: Request) -> PlainTextResponse:
    entity = current_entity()
    assert entity is request.scope[ENVIRON_KEY]
    return PlainTextResponse(request.path_params["name"])


def test_mounted_path_lifespan_and_fallbacks(tracer: Tracer, daemon: UDPDaemon) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    api = Starlette(routes=[Route("/items/{name}", item)])
    app = Starlette(routes=[Mount("/api", app=api)], lifespan=lifespan)
    traced = XRayASGIMiddleware(app, tracer, include_query=True)

    async def main() -> list[httpx.Response]:
        async with app.router.lifespan_context(app):
            pass
        transport = httpx.ASGITransport(app=traced, client=("192.0.2.5", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="https://shop.test") as c:
            return [await c.get("/api/items/pen?color=red"), await c.get("/api/nothing")]

    found, missing = asyncio.run(main())
    assert events == ["startup", "shutdown"]
    assert found.text == "pen"
    assert missing.status_code == 404
    tracer.flush()
    docs = daemon.documents(2)
    urls = {d["http"]["request"]["url"]: d for d in docs}
    ok = urls["https://shop.test/api/items/pen?color=red"]
    assert ok["http"]["request"]["client_ip"] == "192.0.2.5"
    assert ok["http"]["response"] == {"status": 200, "content_length": 3}
    assert urls["https://shop.test/api/nothing"]["error"] is True


def test_scope_without_host_header(tracer: Tracer, daemon: UDPDaemon) -> None:
    sent: list[Message] = []

    async def app(scope: Message, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await send({"type": "http.response.body", "body": b"c"})

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Message = {
        "type": "http",
        "method": "PUT",
        "scheme": "http",
        "path": "/raw",
        "headers": [],
        "server": ("10.0.0.9", 8080),
    }
    asyncio.run(XRayASGIMiddleware(app, tracer)(scope, receive, send))
    assert sent[0]["headers"][-1][0] == b"x-amzn-trace-id"
    tracer.flush()
    (doc,) = daemon.documents(1)
    assert doc["http"]["request"] == {"method": "PUT", "url": "http://10.0.0.9:8080/raw"}
    assert doc["http"]["response"] == {"status": 200, "content_length": 3}
