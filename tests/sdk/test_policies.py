"""context_missing policies, the disabled SDK, and tracing never breaking the app."""

from __future__ import annotations

import asyncio

import pytest

from fluoroscope.sdk import (
    ConfigurationError,
    ContextMissingError,
    Decision,
    InMemoryEmitter,
    SamplingRequest,
    Tracer,
)


def _tracer(**kwargs: object) -> Tracer:
    return Tracer(service="svc", emitter=InMemoryEmitter(), sampling=False, **kwargs)  # type: ignore[arg-type]


def test_default_policy_logs_once_and_runs_the_code(caplog: pytest.LogCaptureFixture) -> None:
    tracer = _tracer()
    assert tracer.context_missing == "log"

    @tracer.capture("f")
    def f(x: int) -> int:
        return x + 1

    @tracer.capture("g")
    async def g() -> int:
        return 7

    assert [f(i) for i in range(5)] == [1, 2, 3, 4, 5]
    assert asyncio.run(g()) == 7
    with tracer.subsegment("s") as sub:
        sub.put_annotation("k", 1)
    tracer.put_annotation("k", 1)
    tracer.put_metadata("k", 1)
    assert sum("no segment is active" in r.getMessage() for r in caplog.records) == 1
    assert tracer.emitter.documents == []  # type: ignore[attr-defined]


def test_raise_policy(caplog: pytest.LogCaptureFixture) -> None:
    tracer = _tracer(context_missing="raise")

    @tracer.capture("f")
    def f() -> None:
        return None

    with pytest.raises(ContextMissingError, match="capture 'f'"):
        f()
    with pytest.raises(ContextMissingError):
        tracer.subsegment("s")
    with pytest.raises(ContextMissingError):
        tracer.put_annotation("k", 1)
    with tracer.segment():
        f()  # fine inside a segment


def test_ignore_policy_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    tracer = _tracer(context_missing="ignore")
    with tracer.subsegment("s"):
        pass
    assert caplog.records == []


def test_policy_from_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for value, policy in (
        ("RUNTIME_ERROR", "raise"),
        ("IGNORE_ERROR", "ignore"),
        ("LOG_ERROR", "log"),
    ):
        monkeypatch.setenv("AWS_XRAY_CONTEXT_MISSING", value)
        assert _tracer().context_missing == policy
    assert _tracer(context_missing="ignore").context_missing == "ignore"  # explicit wins
    monkeypatch.setenv("AWS_XRAY_CONTEXT_MISSING", "explode")
    assert _tracer().context_missing == "log"
    assert any("explode" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigurationError):
        _tracer(context_missing="explode")


def test_disabled_sdk_records_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_XRAY_SDK_ENABLED", "false")
    tracer = _tracer()
    assert not tracer.enabled
    with tracer.segment() as seg, tracer.subsegment("x"):
        assert not seg.sampled
    assert tracer.emitter.documents == []  # type: ignore[attr-defined]


def test_broken_sampler_and_emitter_do_not_break_the_app(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenSampler:
        def should_sample(self, request: SamplingRequest) -> Decision:
            raise RuntimeError("sampler bug")

    class BrokenEmitter(InMemoryEmitter):
        def emit(self, item: object) -> None:
            raise RuntimeError("emitter bug")

        def flush(self, timeout: float | None = None) -> bool:
            raise RuntimeError("emitter bug")

    tracer = Tracer(service="svc", emitter=BrokenEmitter(), sampler=BrokenSampler())
    with tracer.segment() as seg:
        assert not seg.sampled
    with tracer.segment(sampled=True), tracer.subsegment("x"):
        pass
    assert tracer.flush() is False
    assert sum("emitter raised" in r.getMessage() for r in caplog.records) == 1
    tracer.close()


def test_user_mutating_weird_values_never_raises() -> None:
    tracer = _tracer()

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    with tracer.segment() as seg:
        circular: list[object] = []
        circular.append(circular)
        seg.put_metadata("circular", circular)
        seg.put_metadata(42, "x")  # type: ignore[arg-type]
        seg.put_http_meta("status", 500)
        seg.put_http_meta("nonsense", 1)
        seg.apply_status_code("500")  # type: ignore[arg-type]
        with pytest.raises(Unprintable), tracer.subsegment("bad"):
            raise Unprintable()
    emitter = tracer.emitter
    assert isinstance(emitter, InMemoryEmitter)
    (segment_doc,) = emitter.segments()
    assert segment_doc["fault"] is True
    assert "metadata" not in segment_doc
    (bad,) = emitter.subsegments()
    assert bad["cause"]["exceptions"][0]["message"] == "<unprintable>"
