"""SDK overhead per captured call, all-in: ours vs aws-xray-sdk vs opentelemetry-sdk.

Each case runs ``ROUNDS`` segments (spans) of ``CALLS`` captured calls of an empty
function, in one thread, and divides the wall time by the number of calls. The time
includes segment/subsegment bookkeeping, serialization and emission, amortized:

- ours: ``Tracer`` with its UDP emitter (background sender, default
  ``streaming_threshold`` of 100, so a segment of 100 calls is one datagram), to a
  local UDP socket that a thread drains, ending with ``flush()`` so every document
  is sent inside the timed region. Also shown, for information: ours with
  ``streaming_threshold=0`` (every subsegment its own datagram, the worst case) and
  ours when the request is not sampled;
- aws-xray-sdk 2.15: a recorder with its ``UDPEmitter`` (``streaming_threshold=30``,
  so subsegments are serialized and streamed), to the same socket;
- opentelemetry-sdk: ``start_as_current_span`` decorator, ``BatchSpanProcessor``
  with a no-op exporter, ending with ``force_flush()``.

Target (DESIGN §7): ours ≤ 0.2 x each of the others. Prints each figure and the
ratios. Run: ``python benchmarks/sdk_overhead.py [runs]``. Not part of pytest.
"""

from __future__ import annotations

import logging
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence

CALLS = 100
ROUNDS = 200


class Drain:
    """A UDP socket on 127.0.0.1 that a thread empties, counting datagrams."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.datagrams = 0
        self.bytes = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(70000)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams += 1
            self.bytes += len(data)

    def settle(self, quiet: float = 0.05, limit: float = 5.0) -> None:
        """Wait until nothing arrived for ``quiet`` seconds, so one case's datagrams
        are not received (on this process's GIL) while the next case is timed."""
        deadline = time.monotonic() + limit
        last = -1
        while time.monotonic() < deadline and last != self.datagrams:
            last = self.datagrams
            time.sleep(quiet)

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def _time_per_call(run_once: Callable[[], None]) -> float:
    start = time.perf_counter()
    run_once()
    return (time.perf_counter() - start) / (CALLS * ROUNDS) * 1e6


def bare() -> Callable[[], None]:
    def work() -> None:
        return None

    def run_once() -> None:
        for _ in range(ROUNDS):
            for _ in range(CALLS):
                work()

    return run_once


def ours(port: int, streaming_threshold: int = 100) -> Callable[[], None]:
    from fluoroscope.sdk import Tracer

    tracer = Tracer(
        service="bench",
        daemon_address=f"127.0.0.1:{port}",
        sampling=False,
        streaming_threshold=streaming_threshold,
    )

    @tracer.capture("work")
    def work() -> None:
        return None

    def run_once() -> None:
        for _ in range(ROUNDS):
            with tracer.segment("bench"):
                for _ in range(CALLS):
                    work()
        tracer.flush(10.0)

    return run_once


def ours_unsampled(port: int) -> Callable[[], None]:
    from fluoroscope.sdk import ConstantSampler, Tracer

    tracer = Tracer(
        service="bench", daemon_address=f"127.0.0.1:{port}", sampler=ConstantSampler(False)
    )

    @tracer.capture("work")
    def work() -> None:
        return None

    def run_once() -> None:
        for _ in range(ROUNDS):
            with tracer.segment("bench"):
                for _ in range(CALLS):
                    work()
        tracer.flush(10.0)

    return run_once


def aws_xray(port: int) -> Callable[[], None]:
    from aws_xray_sdk.core.recorder import AWSXRayRecorder

    os.environ.pop("AWS_XRAY_DAEMON_ADDRESS", None)
    recorder = AWSXRayRecorder()
    recorder.configure(
        daemon_address=f"127.0.0.1:{port}",
        sampling=False,
        context_missing="LOG_ERROR",
        streaming_threshold=30,
        service="bench",
    )

    @recorder.capture("work")  # type: ignore[untyped-decorator]
    def work() -> None:
        return None

    def run_once() -> None:
        for _ in range(ROUNDS):
            recorder.begin_segment("bench")
            for _ in range(CALLS):
                work()
            recorder.end_segment()

    return run_once


def otel() -> Callable[[], None]:
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class NoOpExporter(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(NoOpExporter()))
    tracer = provider.get_tracer("bench")

    @tracer.start_as_current_span("work")
    def work() -> None:
        return None

    def run_once() -> None:
        for _ in range(ROUNDS):
            with tracer.start_as_current_span("bench"):
                for _ in range(CALLS):
                    work()
        provider.force_flush()

    return run_once


def main(argv: list[str]) -> int:
    runs = int(argv[1]) if len(argv) > 1 else 7
    logging.basicConfig(level=logging.ERROR)
    drain = Drain()
    cases: dict[str, Callable[[], None]] = {
        "bare call": bare(),
        "fluoroscope": ours(drain.port),
        "fluoroscope (streaming_threshold=0)": ours(drain.port, 0),
        "fluoroscope (not sampled)": ours_unsampled(drain.port),
        "aws-xray-sdk (UDPEmitter)": aws_xray(drain.port),
        "opentelemetry-sdk (BSP)": otel(),
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for run_once in cases.values():  # warm up
        run_once()
        drain.settle()
    for _ in range(runs):  # interleave the cases so machine noise hits all of them
        for name, run_once in cases.items():
            results[name].append(_time_per_call(run_once))
            drain.settle()
    time.sleep(0.3)
    drain.close()

    print(f"µs per captured call, all-in ({CALLS} calls x {ROUNDS} segments, {runs} runs)")
    print(f"{'case':40} {'min':>8} {'median':>8} {'max':>8}")
    medians: dict[str, float] = {}
    for name, values in results.items():
        medians[name] = statistics.median(values)
        print(f"{name:40} {min(values):8.2f} {medians[name]:8.2f} {max(values):8.2f}")
    print(f"datagrams received: {drain.datagrams} ({drain.bytes / 1e6:.1f} MB)")
    ok = True
    for ref in ("aws-xray-sdk (UDPEmitter)", "opentelemetry-sdk (BSP)"):
        ratio = medians["fluoroscope"] / medians[ref]
        ok = ok and ratio <= 0.2
        verdict = "ok" if ratio <= 0.2 else "ABOVE TARGET"
        print(f"ratio fluoroscope / {ref}: {ratio:.3f} (target <= 0.2: {verdict})")
    for ref in ("aws-xray-sdk (UDPEmitter)", "opentelemetry-sdk (BSP)"):
        ratio = medians["fluoroscope (streaming_threshold=0)"] / medians[ref]
        print(f"ratio fluoroscope (streaming_threshold=0) / {ref}: {ratio:.3f} (information)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
