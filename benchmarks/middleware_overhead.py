"""Request-middleware overhead per request, all-in: ours vs aws-xray-sdk, on a Flask app.

Each case calls a Flask app's WSGI callable directly (no socket, no HTTP parsing) with
a prebuilt environ, ``REQUESTS`` times, and consumes and closes the body as a server
would; the figure is the best run's time per request *minus* the same for the app
without tracing (best of several interleaved runs: the shared machine is noisy). It
includes the header parsing, the sampling decision, the segment bookkeeping, the
response header, serialization and UDP emission (to a local socket a thread drains;
ours ends with ``flush()`` inside the timed region):

- ours: :func:`fluoroscope.sdk.middleware.flask.trace_flask` with a ``Tracer`` and its
  UDP emitter; sampled (``Sampled=1``) and unsampled (``Sampled=0``);
- aws-xray-sdk 2.15: ``aws_xray_sdk.ext.flask.middleware.XRayMiddleware`` with a
  recorder and its UDP emitter; the same two headers.

There is no DESIGN target for this; the script prints each figure and the ratios.
Run: ``python benchmarks/middleware_overhead.py [runs]``. Not part of pytest.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

REQUESTS = 5000
SAMPLED = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
UNSAMPLED = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"


class Drain:
    """A UDP socket on 127.0.0.1 that a thread empties."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.datagrams = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                self.sock.recv(70000)
            except TimeoutError:
                continue
            except OSError:
                return
            self.datagrams += 1

    def close(self) -> None:
        self._stop = True
        self._thread.join()
        self.sock.close()


def flask_app() -> Any:
    from flask import Flask

    app = Flask("bench")
    app.logger.setLevel(logging.ERROR)

    @app.get("/orders/<int:order_id>")
    def order(order_id: int) -> str:
        return "ok"

    return app


def environ(header: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": "/orders/42",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_USER_AGENT": "bench/1.0",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": None,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if header is not None:
        env["HTTP_X_AMZN_TRACE_ID"] = header
    return env


def driver(
    wsgi: Callable[..., Iterable[bytes]], env: dict[str, Any], flush: Callable[[], object]
) -> Callable[[], None]:
    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return None

    def run_once() -> None:
        for _ in range(REQUESTS):
            body = wsgi(dict(env), start_response)
            for _chunk in body:
                pass
            close = getattr(body, "close", None)
            if close is not None:
                close()
        flush()

    return run_once


def bare() -> Callable[[], None]:
    return driver(flask_app().wsgi_app, environ(SAMPLED), lambda: None)


def ours(port: int, header: str) -> Callable[[], None]:
    from fluoroscope.sdk import Tracer
    from fluoroscope.sdk.middleware.flask import trace_flask

    tracer = Tracer("bench", daemon_address=f"127.0.0.1:{port}", sampling=False)
    app = trace_flask(flask_app(), tracer)
    return driver(app.wsgi_app, environ(header), tracer.flush)


def aws_xray(port: int, header: str) -> Callable[[], None]:
    from aws_xray_sdk.core.recorder import AWSXRayRecorder
    from aws_xray_sdk.ext.flask.middleware import XRayMiddleware

    os.environ.pop("AWS_XRAY_DAEMON_ADDRESS", None)
    recorder = AWSXRayRecorder()
    recorder.configure(
        daemon_address=f"127.0.0.1:{port}",
        sampling=False,
        context_missing="LOG_ERROR",
        service="bench",
    )
    app = flask_app()
    XRayMiddleware(app, recorder)
    return driver(app.wsgi_app, environ(header), lambda: None)


def per_request(run_once: Callable[[], None]) -> float:
    start = time.perf_counter()
    run_once()
    return (time.perf_counter() - start) / REQUESTS * 1e6


def main(argv: list[str]) -> int:
    runs = int(argv[1]) if len(argv) > 1 else 9
    logging.getLogger("aws_xray_sdk").setLevel(logging.CRITICAL)
    drain = Drain()
    cases: dict[str, Callable[[], None]] = {
        "bare Flask": bare(),
        "ours, sampled": ours(drain.port, SAMPLED),
        "ours, not sampled": ours(drain.port, UNSAMPLED),
        "aws-xray-sdk, sampled": aws_xray(drain.port, SAMPLED),
        "aws-xray-sdk, not sampled": aws_xray(drain.port, UNSAMPLED),
    }
    for run_once in cases.values():  # warm up
        run_once()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, run_once in cases.items():  # interleaved: the machine is noisy
            samples[name].append(per_request(run_once))
    best = {name: min(values) for name, values in samples.items()}
    base = best["bare Flask"]
    print(f"bare Flask: {base:.1f} µs per request ({REQUESTS} requests x {runs} runs, best run)")
    overhead = {name: best[name] - base for name in cases if name != "bare Flask"}
    for name, value in overhead.items():
        print(f"{name}: +{value:.1f} µs per request")
    for kind in ("sampled", "not sampled"):
        ratio = overhead[f"ours, {kind}"] / overhead[f"aws-xray-sdk, {kind}"]
        print(f"ratio ours / aws-xray-sdk, {kind}: {ratio:.2f}")
    drain.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
