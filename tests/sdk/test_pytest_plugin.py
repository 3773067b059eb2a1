"""The SDK's pytest plugin: ``fluoroscope_traces`` records in memory; its assertions pass
and fail on purpose, with the offending part of the waterfall in the failure output.

Each case is a small test suite run by pytest itself (``pytester``), loading the plugin
as an installed package's ``pytest11`` entry point would (``-p``). The recorded traces
come from real tracers, sampling on and off, a UDP emitter that must not send, threads
and the Lambda decorator.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fluoroscope.sdk import Tracer
from fluoroscope.sdk._recording import RECORDING
from fluoroscope.sdk.testing import TraceRecorder

ROOT = Path(__file__).resolve().parents[2]

APP = """
import threading, time
from fluoroscope.sdk import Tracer, lambda_handler

# a sampler that samples nothing and a daemon address nobody listens on:
# the recorder must record anyway and nothing may be sent
tracer = Tracer("orders", sampling_rules={{"version": 2, "default": {{"fixed_target": 0, "rate": 0.0}}}},
                daemon_address="127.0.0.1:{port}")

def handle(calls=1, pay_inside=False, fail=False, busy=0.0):
    with tracer.segment("orders"):
        with tracer.subsegment("transaction"):
            for _ in range(calls):
                with tracer.subsegment("DynamoDB", "aws") as sub:
                    sub.set_aws(operation="PutItem")
            if pay_inside:
                with tracer.subsegment("payments.example.com", "remote"):
                    pass
        if not pay_inside:
            with tracer.subsegment("payments.example.com", "remote"):
                pass
        with tracer.subsegment("render"):
            end = time.perf_counter() + busy
            while time.perf_counter() < end:
                pass
            if fail:
                raise KeyError("amount_cents")
"""


def _suite(pytester: pytest.Pytester, body: str) -> pytest.RunResult:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        probe.settimeout(0.2)
        port = probe.getsockname()[1]
        pytester.makepyfile(app=APP.format(port=port), test_suite=body)
        # -rN: no short summary, which repeats the message in full where CI is set
        result = pytester.runpytest("-p", "fluoroscope.sdk.pytest_plugin", "-q", "-rN")
        with pytest.raises(TimeoutError):  # the tracer's own emitter sent nothing
            probe.recvfrom(65536)
    return result


def test_passing_assertions_pass(pytester: pytest.Pytester) -> None:
    result = _suite(
        pytester,
        """
import threading
from app import handle

def test_ok(fluoroscope_traces):
    handle(calls=3)
    trace = fluoroscope_traces.one()
    trace.assert_no_fault()
    trace.assert_no_error()
    assert len(trace.assert_calls("DynamoDB", at_most=3, operation="PutItem")) == 3
    trace.assert_calls("DynamoDB PutItem", exactly=3)
    trace.assert_no_call("payments*", inside="transaction")
    trace.assert_no_call("S3")
    trace.assert_self_time_under(0.5)
    trace.assert_duration_under(5.0)

def test_threads_and_several_traces(fluoroscope_traces):
    workers = [threading.Thread(target=handle) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(fluoroscope_traces.wait(3)) == 3
    fluoroscope_traces.assert_calls("DynamoDB", exactly=3)

def test_each_test_starts_empty(fluoroscope_traces):
    assert fluoroscope_traces.traces() == []
""",
    )
    result.assert_outcomes(passed=3)


def test_call_count_failure_shows_the_waterfall(pytester: pytest.Pytester) -> None:
    result = _suite(
        pytester,
        """
from app import handle

def test_too_many_calls(fluoroscope_traces):
    handle(calls=4)
    fluoroscope_traces.one().assert_calls("DynamoDB", at_most=3)
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected at most 3 calls to 'DynamoDB', found 4*",
            "*trace 1-*",
            "*start*duration*self*entry*",
            "*orders",
            "*├─ transaction",
            "*>>*│  ├─ DynamoDB PutItem (aws)",
        ]
    )
    marked = [line for line in result.stdout.lines if ">>" in line]
    assert len(marked) == 4, result.stdout.str()


def test_call_inside_failure_marks_only_that_call(pytester: pytest.Pytester) -> None:
    result = _suite(
        pytester,
        """
from app import handle

def test_paid_inside(fluoroscope_traces):
    handle(pay_inside=True)
    fluoroscope_traces.one().assert_no_call("payments*", inside="transaction")
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected no call to 'payments*' inside 'transaction', found 1*",
            "*>>*│  └─ payments.example.com (remote)",
        ]
    )
    assert sum(">>" in line for line in result.stdout.lines) == 1


def test_fault_failure_prints_the_exception_and_stack(pytester: pytest.Pytester) -> None:
    result = _suite(
        pytester,
        """
import pytest
from app import handle

def test_faulty(fluoroscope_traces):
    with pytest.raises(KeyError):
        handle(fail=True)
    fluoroscope_traces.one().assert_no_fault()
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected no fault, found 2 faulty entries*",
            "*>>*orders  ?FAULT?",
            "*>>*└─ render  ?FAULT?",
            "*KeyError: 'amount_cents'",
            "*at handle (*app.py:*)",
        ]
    )


def test_self_time_failure_names_the_largest(pytester: pytest.Pytester) -> None:
    result = _suite(
        pytester,
        """
from app import handle

def test_slow(fluoroscope_traces):
    handle(busy=0.06)
    fluoroscope_traces.one().assert_self_time_under(0.05)
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected the self time of the traced code under 50.0 ms, it was *",
            "*largest self times: render *",
            "*>>*└─ render",
        ]
    )


def test_one_fails_without_a_trace(pytester: pytest.Pytester) -> None:
    result = _suite(
        pytester,
        """
def test_nothing(fluoroscope_traces):
    fluoroscope_traces.one()
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*expected exactly one trace, recorded 0*", "*(no entries recorded)*"]
    )


def test_recording_stops_after_the_test() -> None:
    """Outside a recorder the tracers are back to their own sampler and emitter."""
    assert RECORDING == []
    tracer = Tracer("x", sampling_rules={"version": 2, "default": {"fixed_target": 0, "rate": 0}})
    with TraceRecorder() as outer, TraceRecorder() as inner, tracer.segment("recorded"):
        pass
    with tracer.segment("not-sampled") as seg:
        assert not seg.sampled
    assert RECORDING == []
    assert [t.roots()[0].name for t in inner.traces()] == ["recorded"]
    assert outer.traces() == []


def test_the_entry_point_names_the_module() -> None:
    """Named after its module, so ``-p`` (or pytest_plugins) and the entry point coexist."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    points = project["project"]["entry-points"]["pytest11"]
    assert points == {"fluoroscope.sdk.pytest_plugin": "fluoroscope.sdk.pytest_plugin"}


def test_loading_the_plugin_imports_only_the_standard_library_and_pytest() -> None:
    """Every pytest run of an installed package loads the plugin: it must stay cheap."""
    code = (
        "import sys; before = set(sys.modules); import pytest; with_pytest = set(sys.modules)\n"
        "import fluoroscope.sdk.pytest_plugin\n"
        "added = set(sys.modules) - with_pytest\n"
        "assert 'fluoroscope.sdk.testing' not in sys.modules, 'the SDK loads lazily'\n"
        "import fluoroscope.sdk.testing\n"
        "added |= set(sys.modules) - with_pytest\n"
        "bad = sorted(m for m in added if m.split('.')[0] not in sys.stdlib_module_names\n"
        "             and not m.startswith(('fluoroscope.sdk', 'fluoroscope.model'))\n"
        "             and m not in ('fluoroscope', 'orjson'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
