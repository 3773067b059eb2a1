"""Django (its WSGI handler) under a real WSGI server on loopback, with ``requests``.

Django's settings are process-global: this module configures them once (if nobody
did) with its own URLconf, and builds a fresh WSGI handler per test so the middleware
reads the test's tracer from ``FLUOROSCOPE_TRACER``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from typing import Any

import django
import pytest
import requests
from django.conf import settings
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path

from fluoroscope.sdk import Tracer, current_entity
from fluoroscope.sdk.middleware import XRayWSGIMiddleware
from tests.sdk.conftest import UDPDaemon, by_name
from tests.sdk.middleware.conftest import PARENT_ID, TRACE_ID, response_root, serve_wsgi

VIEW_TRACER = Tracer("unused-until-a-test-sets-it", sampling=False)
"""The tracer the views use; each test's fixture swaps in its own."""


def hello(request: HttpRequest) -> HttpResponse:
    with VIEW_TRACER.subsegment("work") as sub:
        sub.put_annotation("k", 1)
    return HttpResponse("hi")


def whoami(request: HttpRequest) -> HttpResponse:
    entity = current_entity()
    return HttpResponse("" if entity is None else entity.trace_header())


def status(request: HttpRequest, code: int) -> HttpResponse:
    return HttpResponse("x", status=code)


def boom(request: HttpRequest) -> HttpResponse:
    raise ValueError("django kaboom")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    def chunks() -> Iterator[bytes]:
        for i in range(3):
            time.sleep(0.1)
            with VIEW_TRACER.subsegment(f"chunk{i}"):
                pass
            yield f"{i}\n".encode()

    return StreamingHttpResponse(chunks(), content_type="text/plain")


urlpatterns = [
    path("hello", hello),
    path("whoami", whoami),
    path("status/<int:code>", status),
    path("boom", boom),
    path("stream", stream),
]

if not settings.configured:
    settings.configure(
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=["fluoroscope.sdk.middleware.django.XRayMiddleware"],
        INSTALLED_APPS=[],
        LOGGING_CONFIG=None,
        SECRET_KEY="test-only",
    )
    django.setup()


@pytest.fixture
def base(tracer: Tracer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from django.core.handlers.wsgi import WSGIHandler

    monkeypatch.setattr(settings, "FLUOROSCOPE_TRACER", tracer, raising=False)
    monkeypatch.setattr(sys.modules[__name__], "VIEW_TRACER", tracer)
    with serve_wsgi(WSGIHandler(), server="wsgiref") as url:
        yield url


def test_sampled_header_continues_the_trace(base: str, daemon: UDPDaemon) -> None:
    header = f"Root={TRACE_ID};Parent={PARENT_ID};Sampled=1"
    r = requests.get(
        f"{base}/hello?q=1", headers={"X-Amzn-Trace-Id": header, "User-Agent": "ua"}, timeout=5
    )
    assert r.status_code == 200
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID}"
    (doc,) = daemon.documents(1)
    assert (doc["trace_id"], doc["parent_id"], doc["name"]) == (TRACE_ID, PARENT_ID, "test-svc")
    assert doc["http"] == {
        "request": {
            "method": "GET",
            "url": f"{base}/hello",
            "user_agent": "ua",
            "client_ip": "127.0.0.1",
        },
        "response": {"status": 200, "content_length": 2},
    }
    assert [s["name"] for s in doc["subsegments"]] == ["work"]


def test_not_sampled_emits_nothing_but_propagates(base: str, daemon: UDPDaemon) -> None:
    r = requests.get(
        f"{base}/whoami", headers={"X-Amzn-Trace-Id": f"Root={TRACE_ID};Sampled=0"}, timeout=5
    )
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID}"
    assert r.text.startswith(f"Root={TRACE_ID};Parent=")
    assert r.text.endswith(";Sampled=0")
    assert daemon.quiet() == []


def test_sampling_requested_and_new_trace(base: str, daemon: UDPDaemon) -> None:
    r = requests.get(
        f"{base}/hello", headers={"X-Amzn-Trace-Id": f"Root={TRACE_ID};Sampled=?"}, timeout=5
    )
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID};Sampled=1"
    fresh = requests.get(f"{base}/hello", headers={"X-Forwarded-For": "192.0.2.1"}, timeout=5)
    root = response_root(fresh.headers.get("X-Amzn-Trace-Id"))
    docs = daemon.documents(2)
    assert sorted(d["trace_id"] for d in docs) == sorted([TRACE_ID, root])
    new = next(d for d in docs if d["trace_id"] == root)
    assert new["http"]["request"]["client_ip"] == "192.0.2.1"
    assert new["http"]["request"]["x_forwarded_for"] is True


@pytest.mark.parametrize(
    ("url", "code", "flags"),
    [
        ("/status/429", 429, {"error", "throttle"}),
        ("/status/503", 503, {"fault"}),
        ("/missing", 404, {"error"}),
    ],
)
def test_status_flags(base: str, daemon: UDPDaemon, url: str, code: int, flags: set[str]) -> None:
    assert requests.get(f"{base}{url}", timeout=5).status_code == code
    (doc,) = daemon.documents(1)
    assert doc["http"]["response"]["status"] == code
    assert {f for f in ("error", "fault", "throttle") if doc.get(f)} == flags


def test_exception_in_view_is_the_cause(base: str, daemon: UDPDaemon) -> None:
    r = requests.get(f"{base}/boom", timeout=5)
    assert r.status_code == 500
    response_root(r.headers.get("X-Amzn-Trace-Id"))
    (doc,) = daemon.documents(1)
    assert doc["fault"] is True
    assert doc["http"]["response"]["status"] == 500
    (exc,) = doc["cause"]["exceptions"]
    assert (exc["type"], exc["message"]) == ("ValueError", "django kaboom")
    assert "boom" in [frame["label"] for frame in exc["stack"]]


def test_streamed_body_is_timed_to_the_last_chunk(base: str, daemon: UDPDaemon) -> None:
    r = requests.get(f"{base}/stream", timeout=5)
    assert r.text == "0\n1\n2\n"
    (doc,) = daemon.documents(1)
    assert doc["end_time"] - doc["start_time"] >= 0.3
    assert doc["http"]["response"]["content_length"] == 6
    found = by_name([doc])
    assert {found[f"chunk{i}"]["_parent"] for i in range(3)} == {doc["id"]}


def test_under_the_wsgi_middleware_one_segment_per_request(
    tracer: Tracer, daemon: UDPDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.handlers.wsgi import WSGIHandler

    monkeypatch.setattr(settings, "FLUOROSCOPE_TRACER", tracer, raising=False)
    app: Any = XRayWSGIMiddleware(WSGIHandler(), tracer)
    with serve_wsgi(app, server="wsgiref") as url:
        r = requests.get(f"{url}/boom", timeout=5)
    assert r.status_code == 500
    (doc,) = daemon.documents(1)
    assert daemon.quiet(0.2) == [doc]
    assert doc["fault"] is True
    assert doc["cause"]["exceptions"][0]["type"] == "ValueError"


def test_under_django_asgi(
    tracer: Tracer, daemon: UDPDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import httpx
    from django.core.handlers.asgi import ASGIHandler

    monkeypatch.setattr(settings, "FLUOROSCOPE_TRACER", tracer, raising=False)
    monkeypatch.setattr(sys.modules[__name__], "VIEW_TRACER", tracer)

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=ASGIHandler())
        async with httpx.AsyncClient(transport=transport, base_url="http://django.test") as c:
            header = {"X-Amzn-Trace-Id": f"Root={TRACE_ID};Sampled=?"}
            return [await c.get("/hello", headers=header), await c.get("/boom")]

    hello_response, boom_response = asyncio.run(main())
    assert hello_response.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID};Sampled=1"
    assert boom_response.status_code == 500
    tracer.flush()
    docs = {d["http"]["request"]["url"]: d for d in daemon.documents(2)}
    hello_doc = docs["http://django.test/hello"]
    assert hello_doc["trace_id"] == TRACE_ID
    assert [s["name"] for s in hello_doc["subsegments"]] == ["work"]
    assert docs["http://django.test/boom"]["cause"]["exceptions"][0]["type"] == "ValueError"
