"""The bare WSGI middleware: a plain WSGI app under wsgiref, and direct calls."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import requests

import fluoroscope.sdk.middleware
from fluoroscope.sdk import ConstantSampler, Tracer, current_entity
from fluoroscope.sdk._context import CURRENT
from fluoroscope.sdk.middleware import ENVIRON_KEY, XRayWSGIMiddleware
from tests.sdk.conftest import UDPDaemon
from tests.sdk.middleware.conftest import TRACE_ID, serve_wsgi

StartResponse = Callable[..., Callable[[bytes], object]]


def raw_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    if path == "/raise":
        raise RuntimeError("before the response")
    if path == "/midstream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def broken() -> Iterator[bytes]:
            yield b"a"
            raise OSError("disk gone")

        return broken()
    if path == "/generator":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def ids() -> Iterator[bytes]:
            for _ in range(2):
                entity = current_entity()
                yield (entity.id if entity is not None else "none").encode() + b"\n"
                time.sleep(0.05)

        return ids()
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"legacy ")
        return [b"write"]
    start_response("200 OK", [("Content-Length", "5"), ("X-Amzn-Trace-Id", "set-by-app")])
    return [b"hello"]


@pytest.fixture
def base(tracer: Tracer) -> Iterator[str]:
    with serve_wsgi(XRayWSGIMiddleware(raw_app, tracer), server="wsgiref") as url:
        yield url


def test_plain_response_replaces_the_apps_trace_header(base: str, daemon: UDPDaemon) -> None:
    r = requests.get(f"{base}/plain", timeout=5)
    assert r.text == "hello"
    (doc,) = daemon.documents(1)
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={doc['trace_id']}"
    assert doc["http"]["response"] == {"status": 200, "content_length": 5}


def test_exception_before_the_response(base: str, daemon: UDPDaemon) -> None:
    assert requests.get(f"{base}/raise", timeout=5).status_code == 500
    (doc,) = daemon.documents(1)
    assert doc["fault"] is True
    assert doc["http"]["response"]["status"] == 500
    (exc,) = doc["cause"]["exceptions"]
    assert exc["type"] == "RuntimeError"
    assert "raw_app" in [frame["label"] for frame in exc["stack"]]


def test_exception_while_streaming(base: str, daemon: UDPDaemon) -> None:
    # the server may cut the connection; either way the segment says why
    with contextlib.suppress(requests.RequestException):
        requests.get(f"{base}/midstream", timeout=5)
    (doc,) = daemon.documents(1)
    assert doc["http"]["response"]["status"] == 200
    assert doc["fault"] is True
    assert doc["cause"]["exceptions"][0]["type"] == "OSError"


def test_segment_is_current_while_the_body_is_produced(base: str, daemon: UDPDaemon) -> None:
    r = requests.get(f"{base}/generator", timeout=5)
    (doc,) = daemon.documents(1)
    assert r.text.split() == [doc["id"], doc["id"]]
    assert doc["end_time"] - doc["start_time"] >= 0.1
    assert doc["http"]["response"]["content_length"] == len(r.content)


def test_legacy_write_callable_passes_through(base: str, daemon: UDPDaemon) -> None:
    assert requests.get(f"{base}/write", timeout=5).text == "legacy write"
    (doc,) = daemon.documents(1)
    assert doc["http"]["response"]["status"] == 200


def _environ(**extra: str) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/plain",
        "SERVER_NAME": "svc.internal",
        "SERVER_PORT": "8080",
        "wsgi.url_scheme": "http",
        "REMOTE_ADDR": "10.1.2.3",
    }
    environ.update(extra)
    return environ


def _call(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> tuple[Any, list[Any]]:
    seen: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen.append((status, headers))
        return lambda data: None

    body = app(environ, start_response)
    return body, seen


def test_unsampled_costs_no_wrapper_and_leaves_no_context(daemon: UDPDaemon) -> None:
    tracer = Tracer("t", daemon_address=daemon.address, sampler=ConstantSampler(False))
    body, seen = _call(XRayWSGIMiddleware(raw_app, tracer), _environ())
    assert type(body) is list
    assert CURRENT.get() is None
    (_, headers) = seen[0]
    assert dict(headers)["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert daemon.quiet(0.1) == []


def test_url_from_server_name_and_query_option(tracer: Tracer, daemon: UDPDaemon) -> None:
    app = XRayWSGIMiddleware(raw_app, tracer, include_query=True, name="custom")
    environ = _environ(QUERY_STRING="a=1", HTTP_X_AMZN_TRACE_ID=f"Root={TRACE_ID};Sampled=1")
    body, _ = _call(app, environ)
    assert environ[ENVIRON_KEY].trace_id == TRACE_ID
    assert list(body) == [b"hello"]
    assert CURRENT.get() is None
    body.close()
    tracer.flush()
    (doc,) = daemon.documents(1)
    assert doc["name"] == "custom"
    assert doc["http"]["request"]["url"] == "http://svc.internal:8080/plain?a=1"
    assert doc["http"]["request"]["client_ip"] == "10.1.2.3"
    assert "x_forwarded_for" not in doc["http"]["request"]


def test_disabled_tracer_calls_the_app_untouched(daemon: UDPDaemon) -> None:
    tracer = Tracer("off", daemon_address=daemon.address, enabled=False)
    body, seen = _call(XRayWSGIMiddleware(raw_app, tracer), _environ())
    assert body == [b"hello"]
    assert dict(seen[0][1])["X-Amzn-Trace-Id"] == "set-by-app"
    assert daemon.quiet(0.1) == []


def test_importing_middleware_imports_no_framework() -> None:
    code = """
        import sys
        import fluoroscope.sdk.middleware
        import fluoroscope.sdk.middleware.flask
        import fluoroscope.sdk.middleware.django
        import fluoroscope.sdk.middleware.aiohttp
        frameworks = {"flask", "django", "starlette", "fastapi", "werkzeug", "uvicorn", "aiohttp"}
        loaded = frameworks & set(sys.modules)
        assert not loaded, loaded
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_public_surface() -> None:
    assert set(fluoroscope.sdk.middleware.__all__) == {
        "ENVIRON_KEY",
        "XRayASGIMiddleware",
        "XRayWSGIMiddleware",
    }


def test_wrapped_twice_records_one_segment(tracer: Tracer, daemon: UDPDaemon) -> None:
    app = XRayWSGIMiddleware(XRayWSGIMiddleware(raw_app, tracer), tracer)
    body, seen = _call(app, _environ())
    assert list(body) == [b"hello"]
    body.close()
    tracer.flush()
    (doc,) = daemon.documents(1)
    assert daemon.quiet(0.2) == [doc]
    assert [name for name, _ in seen[0][1]].count("X-Amzn-Trace-Id") == 1
