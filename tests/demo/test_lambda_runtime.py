"""The local Lambda runtime: the segments Lambda emits, cold starts, recycling, throttling.

Invocations go straight to :meth:`LambdaService.invoke` (the HTTP surface is covered by
the demo test); worker processes run ``tests.demo.handlers`` and send their subsegments
to a UDP listener, where every document is parsed and validated.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fluoroscope.demo.lambda_runtime import FunctionConfig, InvokeResult, LambdaService
from tests.sdk.conftest import UDPDaemon, flatten

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
CALLER = "557abcec3ee5a047"
HEADER = f"Root={ROOT};Parent={CALLER};Sampled=1"


@pytest.fixture
def daemon() -> Iterator[UDPDaemon]:
    d = UDPDaemon()
    yield d
    d.close()


@pytest.fixture
def service(daemon: UDPDaemon) -> Iterator[LambdaService]:
    svc = LambdaService(
        [
            FunctionConfig("echo-fn", "tests.demo.handlers:echo"),
            FunctionConfig("solo-fn", "tests.demo.handlers:echo", reserved_concurrency=1),
        ],
        daemon_address=daemon.address,
        idle_timeout=0.3,
        standby=0,
        task_root=str(Path(__file__).resolve().parents[2]),  # where ``tests`` is importable
    )
    svc.start()
    yield svc
    svc.close()


def _entities(daemon: UDPDaemon, until: Any) -> dict[str, dict[str, Any]]:
    return flatten(daemon.documents(1, timeout=20, until=lambda docs: until(flatten(docs))))


def _by_origin(found: dict[str, dict[str, Any]], origin: str) -> list[dict[str, Any]]:
    return sorted(
        (e for e in found.values() if e.get("origin") == origin), key=lambda e: e["start_time"]
    )


def test_segments_cold_warm_and_recycled(service: LambdaService, daemon: UDPDaemon) -> None:
    first = service.invoke("echo-fn", {"n": 1}, HEADER)
    assert first.status == 200 and first.function_error is None
    assert json.loads(first.payload)["echo"] == {"n": 1}
    assert service.invoke("echo-fn", {"n": 2}, HEADER).status == 200
    time.sleep(1.5)  # idle longer than idle_timeout: the instance is recycled
    assert service.invoke("echo-fn", {"n": 3}, HEADER).status == 200

    found = _entities(
        daemon,
        lambda f: (
            len(_by_origin(f, "AWS::Lambda::Function")) == 3
            and len(_by_origin(f, "AWS::Lambda")) == 3  # sent as the service's segment ends
            and sum(e["name"] == "work" for e in f.values()) == 3
        ),
    )
    services = _by_origin(found, "AWS::Lambda")
    functions = _by_origin(found, "AWS::Lambda::Function")
    assert len(services) == 3
    arn = "arn:aws:lambda:us-east-1:123456789012:function:echo-fn"
    for svc, fn in zip(services, functions, strict=True):
        assert svc["name"] == fn["name"] == "echo-fn"
        assert svc["parent_id"] == CALLER and svc["trace_id"] == ROOT
        assert svc["resource_arn"] == arn and svc["http"]["response"]["status"] == 200
        assert fn["parent_id"] == svc["id"]
        assert fn["aws"]["function_arn"] == arn and fn["aws"]["resource_names"] == ["echo-fn"]
    kinds = [[s["name"] for s in fn.get("subsegments", [])] for fn in functions]
    cold = ["Initialization", "Invocation", "Overhead"]
    assert kinds == [cold, ["Invocation", "Overhead"], cold]
    # the handler's subsegments nest under Invocation (its id is the header's Parent)
    invocations = {
        s["id"] for fn in functions for s in fn["subsegments"] if s["name"] == "Invocation"
    }
    handler_subs = [e for e in found.values() if e["name"] == "echo-fn" and "origin" not in e]
    assert len(handler_subs) == 3
    assert {e["parent_id"] for e in handler_subs} == invocations
    works = [e for e in found.values() if e["name"] == "work"]
    assert {w["_parent"] for w in works} == {e["id"] for e in handler_subs}


def test_a_handler_exception_is_a_function_error(service: LambdaService, daemon: UDPDaemon) -> None:
    result = service.invoke("echo-fn", {"fail": True}, HEADER)
    assert result.status == 200 and result.function_error == "Unhandled"
    error = json.loads(result.payload)
    assert error["errorType"] == "RuntimeError" and error["errorMessage"] == "boom"
    found = _entities(
        daemon,
        lambda f: (
            any(e["name"] == "Invocation" for e in f.values())
            and any(
                e["name"] == "echo-fn" and "cause" in e and "origin" not in e for e in f.values()
            )
        ),
    )
    invocation = next(e for e in found.values() if e["name"] == "Invocation")
    assert invocation["fault"] is True
    recorded = invocation["cause"]["exceptions"][0]
    assert (recorded["type"], recorded["message"]) == ("RuntimeError", "boom")
    function = next(e for e in found.values() if e.get("origin") == "AWS::Lambda::Function")
    assert function["fault"] is True
    handler = next(e for e in found.values() if e["name"] == "echo-fn" and "origin" not in e)
    exception = handler["cause"]["exceptions"][0]
    assert exception["type"] == "RuntimeError" and exception["stack"]


def test_reserved_concurrency_throttles(service: LambdaService, daemon: UDPDaemon) -> None:
    assert service.invoke("solo-fn", {}, HEADER).status == 200  # warm: later calls are quick
    results: list[InvokeResult] = []

    def hold_the_slot() -> None:
        # A quick call below may hold the only slot at the moment this one asks: retry.
        deadline = time.monotonic() + 20
        while True:
            result = service.invoke("solo-fn", {"sleep": 3.0}, HEADER)
            if result.status != 429 or time.monotonic() > deadline:
                results.append(result)
                return

    slow = threading.Thread(target=hold_the_slot)
    slow.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # until the slow invocation holds the only slot
        throttled = service.invoke("solo-fn", {}, HEADER)
        if throttled.status == 429:
            break
        time.sleep(0.05)
    slow.join()
    assert throttled.status == 429 and throttled.error_type == "TooManyRequestsException"
    assert results[0].status == 200
    found = _entities(daemon, lambda f: any(e.get("throttle") for e in f.values()))
    segment = next(e for e in found.values() if e.get("throttle"))
    assert segment["origin"] == "AWS::Lambda" and segment["http"]["response"]["status"] == 429
    assert not any(
        e.get("origin") == "AWS::Lambda::Function" and e["parent_id"] == segment["id"]
        for e in found.values()
    )
    assert service.invoke("no-such-fn", {}, HEADER).status == 404


def test_instances_retire_after_their_lifetime(daemon: UDPDaemon) -> None:
    svc = LambdaService(
        [FunctionConfig("echo-fn", "tests.demo.handlers:echo")],
        daemon_address=daemon.address,
        idle_timeout=60,
        max_lifetime=1.2,
        standby=0,
        task_root=str(Path(__file__).resolve().parents[2]),
    )
    svc.start()
    try:
        for pause in (0.0, 0.0, 2.4):  # the third call comes after the instance retired
            time.sleep(pause)
            assert svc.invoke("echo-fn", {}, HEADER).status == 200
    finally:
        svc.close()
    found = _entities(daemon, lambda f: len(_by_origin(f, "AWS::Lambda::Function")) == 3)
    kinds = [
        "Initialization" in [s["name"] for s in fn["subsegments"]]
        for fn in _by_origin(found, "AWS::Lambda::Function")
    ]
    assert kinds == [True, False, True]
    assert svc.cold_starts == 2
