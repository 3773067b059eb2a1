"""Flask under a real WSGI server on loopback, requests sent by ``requests``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests
from flask import Flask, Response

from fluoroscope.model.trace_header import parse_trace_header
from fluoroscope.sdk import ConstantSampler, LocalSampler, Tracer, current_entity
from fluoroscope.sdk.middleware.flask import trace_flask
from tests.sdk.conftest import UDPDaemon, by_name
from tests.sdk.middleware.conftest import PARENT_ID, TRACE_ID, response_root, serve_wsgi


def make_app(tracer: Tracer, **options: str) -> Flask:
    app = Flask("flask_under_test")

    @app.get("/hello")
    def hello() -> str:
        with tracer.subsegment("work") as sub:
            sub.put_annotation("k", 1)
        return "hi"

    @app.post("/hello")
    def hello_post() -> str:
        return "posted"

    @app.get("/whoami")
    def whoami() -> str:
        entity = current_entity()
        return "" if entity is None else (entity.trace_header() or "")

    @app.get("/status/<int:code>")
    def status(code: int) -> tuple[str, int]:
        return "x", code

    @app.get("/boom")
    def boom() -> str:
        raise ValueError("kaboom")

    @app.get("/stream")
    def stream() -> Response:
        def chunks() -> Iterator[str]:
            for i in range(3):
                time.sleep(0.1)
                with tracer.subsegment(f"chunk{i}"):
                    pass
                yield f"{i}\n"

        return Response(chunks(), mimetype="text/plain")

    trace_flask(app, tracer, **options)  # type: ignore[arg-type]
    return app


@pytest.fixture
def base(tracer: Tracer) -> Iterator[str]:
    with serve_wsgi(make_app(tracer)) as url:
        yield url


def test_sampled_header_continues_the_trace(base: str, tracer: Tracer, daemon: UDPDaemon) -> None:
    header = f"Root={TRACE_ID};Parent={PARENT_ID};Sampled=1"
    r = requests.get(
        f"{base}/hello?token=secret",
        headers={"X-Amzn-Trace-Id": header, "User-Agent": "test-agent/1.0"},
        timeout=5,
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
    assert "error" not in doc
    assert "fault" not in doc
    (work,) = doc["subsegments"]
    assert work["name"] == "work"
    assert work["annotations"] == {"k": 1}


def test_forwarded_for_is_the_client(base: str, daemon: UDPDaemon) -> None:
    requests.get(f"{base}/hello", headers={"X-Forwarded-For": "203.0.113.9, 10.0.0.1"}, timeout=5)
    (doc,) = daemon.documents(1)
    assert doc["http"]["request"]["client_ip"] == "203.0.113.9"
    assert doc["http"]["request"]["x_forwarded_for"] is True


def test_not_sampled_emits_nothing_but_propagates(base: str, daemon: UDPDaemon) -> None:
    header = f"Root={TRACE_ID};Parent={PARENT_ID};Sampled=0"
    r = requests.get(f"{base}/whoami", headers={"X-Amzn-Trace-Id": header}, timeout=5)
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID}"
    downstream = parse_trace_header(r.text)
    assert downstream is not None
    assert downstream.root == TRACE_ID
    assert downstream.sampled == "0"
    assert daemon.quiet() == []


def test_sampling_requested_gets_the_decision_back(base: str, daemon: UDPDaemon) -> None:
    r = requests.get(
        f"{base}/hello", headers={"X-Amzn-Trace-Id": f"Root={TRACE_ID};Sampled=?"}, timeout=5
    )
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID};Sampled=1"
    (doc,) = daemon.documents(1)
    assert doc["trace_id"] == TRACE_ID
    assert "parent_id" not in doc


def test_sampling_requested_and_refused(daemon: UDPDaemon) -> None:
    tracer = Tracer("no", daemon_address=daemon.address, sampler=ConstantSampler(False))
    with serve_wsgi(make_app(tracer)) as base:
        r = requests.get(
            f"{base}/hello", headers={"X-Amzn-Trace-Id": f"Root={TRACE_ID};Sampled=?"}, timeout=5
        )
    tracer.close()
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={TRACE_ID};Sampled=0"
    assert daemon.quiet() == []


def test_no_header_starts_a_new_trace(base: str, daemon: UDPDaemon) -> None:
    r = requests.get(f"{base}/hello", timeout=5)
    root = response_root(r.headers.get("X-Amzn-Trace-Id"))
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={root}"
    (doc,) = daemon.documents(1)
    assert doc["trace_id"] == root
    assert root != TRACE_ID
    assert "parent_id" not in doc


def test_malformed_header_starts_a_new_trace(base: str, daemon: UDPDaemon) -> None:
    r = requests.get(f"{base}/hello", headers={"X-Amzn-Trace-Id": "Root=nope"}, timeout=5)
    assert r.status_code == 200
    (doc,) = daemon.documents(1)
    assert r.headers["X-Amzn-Trace-Id"] == f"Root={doc['trace_id']}"


@pytest.mark.parametrize(
    ("code", "flags"),
    [
        (404, {"error"}),
        (429, {"error", "throttle"}),
        (500, {"fault"}),
        (503, {"fault"}),
        (201, set()),
    ],
)
def test_status_flags(base: str, daemon: UDPDaemon, code: int, flags: set[str]) -> None:
    r = requests.get(f"{base}/status/{code}", timeout=5)
    assert r.status_code == code
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
    assert exc["type"] == "ValueError"
    assert exc["message"] == "kaboom"
    labels = [frame["label"] for frame in exc["stack"]]
    assert "boom" in labels
    assert any(frame["path"].endswith("test_flask.py") for frame in exc["stack"])


def test_streamed_body_is_timed_to_the_last_chunk(base: str, daemon: UDPDaemon) -> None:
    began = time.time()
    r = requests.get(f"{base}/stream", timeout=5)
    assert r.text == "0\n1\n2\n"
    (doc,) = daemon.documents(1)
    assert doc["end_time"] - doc["start_time"] >= 0.3
    assert began <= doc["start_time"]
    assert doc["http"]["response"]["content_length"] == 6
    chunks = by_name([doc])
    for i in range(3):
        assert chunks[f"chunk{i}"]["_parent"] == doc["id"]
        assert chunks[f"chunk{i}"]["end_time"] <= doc["end_time"]


def test_sampling_rules_see_host_method_and_path(daemon: UDPDaemon) -> None:
    rules = {
        "version": 2,
        "rules": [
            {
                "description": "no posts",
                "host": "*",
                "http_method": "POST",
                "url_path": "/hello",
                "fixed_target": 0,
                "rate": 0,
            },
            {
                "description": "no internal host",
                "host": "internal.*",
                "http_method": "*",
                "url_path": "*",
                "fixed_target": 0,
                "rate": 0,
            },
        ],
        "default": {"fixed_target": 0, "rate": 1},
    }
    tracer = Tracer("rules", daemon_address=daemon.address, sampler=LocalSampler(rules))
    with serve_wsgi(make_app(tracer)) as base:
        assert requests.post(f"{base}/hello", timeout=5).text == "posted"
        requests.get(f"{base}/hello", headers={"Host": "internal.example"}, timeout=5)
        requests.get(f"{base}/status/200", timeout=5)
    tracer.close()
    (doc,) = daemon.documents(1)
    assert daemon.quiet(0.2) == [doc]
    assert doc["http"]["request"]["method"] == "GET"
    assert doc["http"]["request"]["url"].endswith("/status/200")


def test_dynamic_naming_by_host(tracer: Tracer, daemon: UDPDaemon) -> None:
    with serve_wsgi(make_app(tracer, dynamic_naming="*.example.com")) as base:
        requests.get(f"{base}/hello", headers={"Host": "api.example.com"}, timeout=5)
        requests.get(f"{base}/status/200", timeout=5)
    docs = daemon.documents(2)
    assert sorted(d["name"] for d in docs) == ["api.example.com", "test-svc"]
    named = next(d for d in docs if d["name"] == "api.example.com")
    assert named["http"]["request"]["url"] == "http://api.example.com/hello"


def test_trace_flask_is_idempotent(tracer: Tracer, daemon: UDPDaemon) -> None:
    app = make_app(tracer)
    wrapped = app.wsgi_app
    trace_flask(app, tracer)
    assert app.wsgi_app is wrapped
    with serve_wsgi(app) as base:
        requests.get(f"{base}/boom", timeout=5)
    (doc,) = daemon.documents(1)
    assert doc["cause"]["exceptions"][0]["type"] == "ValueError"
