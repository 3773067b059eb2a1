"""The UDP emitter: addresses, background sending, failures handled and logged once."""

from __future__ import annotations

import os
import socket
import threading
import time
import warnings

import pytest

from fluoroscope.sdk import (
    ConfigurationError,
    ConstantSampler,
    SamplingRequest,
    Tracer,
    UDPEmitter,
)
from fluoroscope.sdk._emitters import DaemonAddress, parse_daemon_address
from tests.sdk.conftest import UDPDaemon


def test_address_forms() -> None:
    assert parse_daemon_address("127.0.0.1:2000") == DaemonAddress(
        ("127.0.0.1", 2000), ("127.0.0.1", 2000)
    )
    both = parse_daemon_address("tcp:127.0.0.1:2001 udp:127.0.0.2:2002")
    assert both == DaemonAddress(udp=("127.0.0.2", 2002), tcp=("127.0.0.1", 2001))
    assert parse_daemon_address("udp:127.0.0.2:2002  tcp:127.0.0.1:2001") == both
    assert parse_daemon_address("[::1]:2000").udp == ("::1", 2000)
    for bad in (
        "",
        "localhost",
        "host:0",
        "host:99999",
        "udp:h:1",
        "tcp:h:1 tcp:h:2",
        "ftp:h:1 udp:h:2",
        "h:x",
    ):
        with pytest.raises(ConfigurationError):
            parse_daemon_address(bad)


def test_environment_address_and_bad_values(
    monkeypatch: pytest.MonkeyPatch, daemon: UDPDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", f"tcp:127.0.0.1:9 udp:{daemon.address}")
    tracer = Tracer(service="svc", sampling=False)
    assert isinstance(tracer.emitter, UDPEmitter)
    assert tracer.emitter.address.udp == ("127.0.0.1", daemon.port)
    with tracer.segment():
        pass
    tracer.flush()
    daemon.documents(1)
    tracer.close()
    # explicit beats environment
    explicit = Tracer(service="svc", daemon_address="127.0.0.1:7777")
    assert explicit.emitter.address.udp == ("127.0.0.1", 7777)  # type: ignore[attr-defined]
    # a bad environment value is logged once and the default used; a bad argument raises
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "nonsense")
    for _ in range(2):
        fallback = Tracer(service="svc")
        assert fallback.emitter.address.udp == ("127.0.0.1", 2000)  # type: ignore[attr-defined]
    assert sum("nonsense" in r.getMessage() for r in caplog.records) == 1
    with pytest.raises(ConfigurationError):
        Tracer(service="svc", daemon_address="nonsense")


def test_nothing_starts_before_first_emit() -> None:
    before = {t.name for t in threading.enumerate()}
    emitter = UDPEmitter("127.0.0.1:9")
    Tracer(service="svc", emitter=emitter)
    assert {t.name for t in threading.enumerate()} == before
    assert emitter._thread is None
    assert emitter._sock is None
    emitter.close()


def test_background_sender_delivers_without_flush(tracer: Tracer, daemon: UDPDaemon) -> None:
    start = time.monotonic()
    with tracer.segment():
        pass
    daemon.documents(1, timeout=2.0)
    assert time.monotonic() - start < 1.0
    assert tracer.emitter.stats()["sent"] == 1  # type: ignore[attr-defined]


def _unused_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_unreachable_daemon_never_raises(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracer = Tracer(service="svc", daemon_address=f"127.0.0.1:{_unused_udp_port()}", sampling=False)
    for _ in range(50):
        with tracer.segment():
            pass
    assert tracer.flush(2.0)
    tracer.close()

    def no_dns(*args: object, **kwargs: object) -> object:  # stay on loopback: no real lookup
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    unresolvable = Tracer(service="svc", daemon_address="no-such-host.invalid:2000", sampling=False)
    for _ in range(3):
        with unresolvable.segment():
            pass
        unresolvable.flush(5.0)
    unresolvable.close()
    assert unresolvable.emitter.stats()["send_errors"] == 3  # type: ignore[attr-defined]
    assert sum("cannot reach trace daemon" in r.getMessage() for r in caplog.records) == 1


def test_full_queue_drops_and_counts(caplog: pytest.LogCaptureFixture, daemon: UDPDaemon) -> None:
    emitter = UDPEmitter(daemon.address, max_queue=5, interval=60.0, wake_at=10_000)
    tracer = Tracer(service="svc", emitter=emitter, sampling=False)
    for _ in range(20):
        with tracer.segment():
            pass
    stats = emitter.stats()
    assert stats["dropped_queue_full"] == 15
    assert stats["queued"] == 5
    assert sum("queue is full" in r.getMessage() for r in caplog.records) == 1
    assert tracer.flush(2.0)
    assert len(daemon.documents(5)) == 5
    tracer.close()
    with tracer.segment():  # after close: dropped, no error
        pass
    assert emitter.stats()["dropped_queue_full"] == 16


def test_flush_and_close_are_bounded(daemon: UDPDaemon) -> None:
    emitter = UDPEmitter(daemon.address, interval=60.0, wake_at=10**9)
    tracer = Tracer(service="svc", emitter=emitter, sampling=False)
    for _ in range(3000):
        with tracer.segment():
            pass
    start = time.monotonic()
    done = tracer.flush(0.001)
    assert time.monotonic() - start < 0.5
    assert done is False or emitter.stats()["queued"] == 0
    start = time.monotonic()
    tracer.close(2.0)
    assert time.monotonic() - start < 3.0
    assert emitter._thread is not None
    assert not emitter._thread.is_alive()


def test_backlog_is_sent_by_emitting_threads_instead_of_dropped(daemon: UDPDaemon) -> None:
    emitter = UDPEmitter(daemon.address, interval=3600.0, wake_at=8, max_queue=200)
    tracer = Tracer(service="svc", emitter=emitter, sampling=False, streaming_threshold=0)
    with tracer.segment():
        for i in range(1000):
            with tracer.subsegment(f"s{i}"):
                pass
            assert emitter.stats()["queued"] <= 4 * 8 + 1
    stats = emitter.stats()
    assert stats["dropped_queue_full"] == 0
    assert tracer.flush(5.0)
    assert len(daemon.documents(1001)) == 1001
    tracer.close()


def test_a_forked_child_gets_a_fresh_sender(tracer: Tracer, daemon: UDPDaemon) -> None:
    with tracer.segment("parent"):
        pass
    tracer.flush()
    daemon.documents(1)
    with warnings.catch_warnings():  # 3.12+ warns about forking with threads running
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: the parent's sender thread does not exist here
        code = 1
        try:
            with tracer.segment("child"):
                pass
            deadline = time.monotonic() + 2.0  # no flush: the background sender must work
            while tracer.emitter.stats()["sent"] < 2 and time.monotonic() < deadline:  # type: ignore[attr-defined]
                time.sleep(0.01)
            code = 0 if tracer.emitter.stats()["sent"] == 2 else 2  # type: ignore[attr-defined]
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    docs = daemon.documents(2)
    assert sorted(d["name"] for d in docs) == ["child", "parent"]


def test_segment_options(daemon: UDPDaemon) -> None:
    tracer = Tracer(service="svc", daemon_address=daemon.address, sampler=ConstantSampler(False))
    with tracer.segment("never") as seg:
        assert not seg.sampled
    with tracer.segment("forced", sampled=True, start_time=time.time() - 5) as forced:
        assert forced.sampled
    tracer.flush()
    (doc,) = daemon.documents(1)
    assert doc["name"] == "forced"
    assert doc["end_time"] - doc["start_time"] >= 5
    assert not ConstantSampler(False).should_sample(SamplingRequest())
    tracer.close()
