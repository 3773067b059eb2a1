"""A Flask app traced with fluoroscope.sdk: one segment per request.

Serve it on 127.0.0.1:8000 and call it with a trace header::

    python examples/flask_app.py
    curl -i -H 'X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?' \\
        http://127.0.0.1:8000/orders/42

The response carries ``X-Amzn-Trace-Id: Root=…;Sampled=1``; the segment (with a ``load``
subsegment) goes to ``AWS_XRAY_DAEMON_ADDRESS`` (default 127.0.0.1:2000). ``/fail`` shows
an exception recorded as the cause. ``--self-test`` serves on a free port, sends a few
requests to itself and exits.
"""

from __future__ import annotations

import sys
import threading
import urllib.error
import urllib.request

from flask import Flask

from fluoroscope.sdk import Tracer, set_tracer
from fluoroscope.sdk.middleware.flask import trace_flask

tracer = Tracer(service="orders-web", sampling=False)  # sample everything (a demo)
set_tracer(tracer)

app = Flask(__name__)
trace_flask(app, tracer)


@app.get("/orders/<int:order_id>")
def get_order(order_id: int) -> dict[str, int]:
    with tracer.subsegment("load") as sub:
        sub.put_annotation("order_id", order_id)
    return {"id": order_id}


@app.get("/fail")
def fail() -> str:
    raise RuntimeError("out of stock")


def self_test() -> None:
    from werkzeug.serving import make_server

    # One thread serves every request, so shutdown() returns only after each request
    # (and its segment) is finished: flushing then sends everything.
    server = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?"
    try:
        for path in ("/orders/42", "/fail"):
            request = urllib.request.Request(base + path, headers={"X-Amzn-Trace-Id": header})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    status, trace = response.status, response.headers["X-Amzn-Trace-Id"]
                    response.read()
            except urllib.error.HTTPError as error:
                status, trace = error.code, error.headers["X-Amzn-Trace-Id"]
                with error:  # read the whole error response, as a well-behaved client does
                    error.read()
            print(path, status, trace)
    finally:
        server.shutdown()
        thread.join()
        tracer.flush()


if __name__ == "__main__":
    if "--self-test" in sys.argv:
        self_test()
    else:
        app.run(host="127.0.0.1", port=8000)
