"""Real servers on loopback for the middleware tests: WSGI (werkzeug, wsgiref) and uvicorn.

Each helper serves an app on 127.0.0.1 on a free port in a daemon thread and stops it
when the ``with`` block ends. The UDP daemon and tracer fixtures come from
``tests/sdk/conftest.py``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from fluoroscope.model.trace_header import parse_trace_header

TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"
PARENT_ID = "53995c3f42cd8ad8"


@contextlib.contextmanager
def serve_wsgi(app: Callable[..., Any], *, server: str = "werkzeug") -> Iterator[str]:
    """Serve a WSGI app on loopback (werkzeug's threaded server or wsgiref); yields its base URL."""
    if server == "werkzeug":
        from werkzeug.serving import make_server as werkzeug_server

        srv: Any = werkzeug_server("127.0.0.1", 0, app, threaded=True)
    else:
        from socketserver import ThreadingMixIn
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
        from wsgiref.simple_server import make_server as wsgiref_server

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

        class Threading(ThreadingMixIn, WSGIServer):
            pass

        srv = wsgiref_server("127.0.0.1", 0, app, server_class=Threading, handler_class=Quiet)
    # request threads are joined on close: the middleware ends a segment after the response
    # has gone out, and a test reads what was emitted once the server has stopped
    srv.daemon_threads = False
    srv.block_on_close = True
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_port}"
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """Serve an ASGI app under uvicorn on loopback in a thread; yields its base URL."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def response_root(value: str | None) -> str:
    """The ``Root`` of a response ``X-Amzn-Trace-Id`` (asserting it parses)."""
    assert value is not None, "no X-Amzn-Trace-Id in the response"
    parsed = parse_trace_header(value)
    assert parsed is not None, value
    return parsed.root
