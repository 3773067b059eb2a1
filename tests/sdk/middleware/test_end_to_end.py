"""End to end: a FastAPI service calls a Flask service, both traced by the middleware,
both sending over UDP to the real server; boto3's xray client reads the trace back.

Uses the ``server`` fixture (a ``fluoroscope server`` subprocess on loopback).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask

from fluoroscope.sdk import Tracer, current_entity
from fluoroscope.sdk.middleware import XRayASGIMiddleware
from fluoroscope.sdk.middleware.flask import trace_flask
from tests.sdk.middleware.conftest import PARENT_ID, TRACE_ID, serve_asgi, serve_wsgi
from tests.support import ServerProcess, find_summary, get_documents, wait_for

pytestmark = pytest.mark.slow


def test_two_services_one_trace(server: ServerProcess) -> None:
    address = f"127.0.0.1:{server.port}"
    front_tracer = Tracer("frontend", daemon_address=address, sampling=False)
    back_tracer = Tracer("backend", daemon_address=address, sampling=False)

    backend = Flask("backend")

    @backend.get("/price")
    def price() -> dict[str, int]:
        with back_tracer.subsegment("lookup"):
            pass
        return {"price": 7}

    trace_flask(backend, back_tracer)

    with serve_wsgi(backend) as backend_url:
        frontend = FastAPI()

        @frontend.get("/order")
        async def order() -> dict[str, Any]:
            with front_tracer.subsegment("127.0.0.1", namespace="remote") as call:
                headers = {"X-Amzn-Trace-Id": call.trace_header() or ""}
                call.set_http_request(method="GET", url=f"{backend_url}/price", traced=True)
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"{backend_url}/price", headers=headers)
                call.set_http_response(status=response.status_code)
            entity = current_entity()
            return {"price": response.json()["price"], "segment": entity and entity.id}

        frontend.add_middleware(XRayASGIMiddleware, tracer=front_tracer)
        with serve_asgi(frontend) as frontend_url:
            began = time.time()
            r = httpx.get(
                f"{frontend_url}/order",
                headers={"X-Amzn-Trace-Id": f"Root={TRACE_ID};Parent={PARENT_ID};Sampled=1"},
            )
    front_tracer.close()
    back_tracer.close()
    assert r.status_code == 200
    assert r.json()["price"] == 7

    client = server.xray()

    def both() -> list[dict[str, Any]] | None:
        docs = get_documents(client, TRACE_ID)
        return docs if docs and {"frontend", "backend"} <= {d["name"] for d in docs} else None

    docs = {d["name"]: d for d in wait_for(both)}
    front, back = docs["frontend"], docs["backend"]
    assert front["id"] == r.json()["segment"]
    assert front["parent_id"] == PARENT_ID
    (call,) = front["subsegments"]
    assert back["parent_id"] == call["id"]
    assert [s["name"] for s in back["subsegments"]] == ["lookup"]
    assert back["http"]["request"]["url"] == f"{backend_url}/price"
    assert front["http"]["response"]["status"] == 200

    summary = wait_for(lambda: find_summary(client, TRACE_ID, began - 60, time.time() + 1))
    assert summary["Http"]["HttpMethod"] == "GET"
    assert summary["Http"]["HttpStatus"] == 200
    assert summary["Http"]["HttpURL"] == f"{frontend_url}/order"
