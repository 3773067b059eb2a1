"""The public surface: a small, guarded __all__; no work at import; the global tracer."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import fluoroscope.sdk

EXPECTED = {
    "ConfigurationError",
    "ConstantSampler",
    "ContextMissingError",
    "Decision",
    "Emitter",
    "Entity",
    "InMemoryEmitter",
    "LocalSampler",
    "LogsHandler",
    "Sampler",
    "SamplingRequest",
    "SamplingRulesError",
    "Segment",
    "Subsegment",
    "Tracer",
    "TracingError",
    "UDPEmitter",
    "carry",
    "current_entity",
    "flush",
    "get_tracer",
    "instrument_all",
    "lambda_handler",
    "set_tracer",
    "submit",
}


def test_all_is_exactly_the_documented_surface() -> None:
    assert set(fluoroscope.sdk.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(fluoroscope.sdk, name) is not None
    # names only: pytest >= 9.2 rewrites the asserts of the package its entry-point plugin
    # lives in and leaves '@py_builtins' and '@pytest_ar' in it, which no code can name
    public = {n for n in dir(fluoroscope.sdk) if n.isidentifier() and not n.startswith("_")}
    submodules = {"instrument", "annotations", "middleware", "testing", "pytest_plugin"}
    assert public - EXPECTED - submodules == set(), "public names missing from __all__"


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_does_no_work() -> None:
    _run(
        """
        import sys, threading
        before = threading.active_count()
        import fluoroscope.sdk, fluoroscope.sdk.instrument
        assert threading.active_count() == before
        assert "orjson" not in sys.modules, "orjson must be imported lazily"
        assert "ssl" not in sys.modules, "http.client and ssl must be imported lazily"
        for room in ("server", "store", "ingest", "query"):
            assert f"fluoroscope.{room}" not in sys.modules, room
        from fluoroscope.sdk import _tracer
        assert _tracer._global == []
        """
    )


def test_global_tracer_is_set_once() -> None:
    out = _run(
        """
        import logging
        logging.basicConfig(level=logging.WARNING)
        from fluoroscope.sdk import Tracer, InMemoryEmitter, get_tracer, set_tracer, flush
        assert flush() is True                  # nothing created yet
        mine = Tracer(service="mine", emitter=InMemoryEmitter())
        assert set_tracer(mine) is True
        assert set_tracer(mine) is True         # same one again: fine
        assert get_tracer() is mine
        assert set_tracer(Tracer(service="other", emitter=InMemoryEmitter())) is False
        assert get_tracer() is mine
        with mine.segment():
            pass
        assert flush() is True
        print(len(mine.emitter.documents))
        """
    )
    assert out.strip() == "1"


def test_get_tracer_creates_a_default_lazily() -> None:
    out = _run(
        """
        import threading
        from fluoroscope.sdk import get_tracer
        t = get_tracer()
        assert get_tracer() is t
        print(t.service, threading.active_count())
        """
    )
    assert out.split() == ["python-app", "1"]
