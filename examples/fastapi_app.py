"""A FastAPI app traced with fluoroscope.sdk: one segment per request, async or sync.

Serve it on 127.0.0.1:8000 and call it with a trace header::

    python examples/fastapi_app.py
    curl -i -H 'X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?' \\
        http://127.0.0.1:8000/orders/42

``/orders/{id}`` is async, ``/report`` a sync endpoint run in the thread pool (the segment
is current there too), ``/stream`` a streamed body (timed to its last byte). Segments go
to ``AWS_XRAY_DAEMON_ADDRESS`` (default 127.0.0.1:2000). ``--self-test`` serves on a free
port, sends a few requests to itself and exits.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from fluoroscope.sdk import Tracer, set_tracer
from fluoroscope.sdk.middleware import XRayASGIMiddleware

tracer = Tracer(service="orders-api", sampling=False)  # sample everything (a demo)
set_tracer(tracer)

app = FastAPI()
app.add_middleware(XRayASGIMiddleware, tracer=tracer)


@app.get("/orders/{order_id}")
async def get_order(order_id: int) -> dict[str, int]:
    with tracer.subsegment("load") as sub:
        sub.put_annotation("order_id", order_id)
        await asyncio.sleep(0.01)
    return {"id": order_id}


@app.get("/report")
def report() -> dict[str, str]:
    with tracer.subsegment("render"):  # a sync endpoint, in Starlette's thread pool
        time.sleep(0.01)
    return {"report": "ok"}


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def lines() -> AsyncIterator[bytes]:
        for i in range(3):
            await asyncio.sleep(0.01)
            yield f"line {i}\n".encode()

    return StreamingResponse(lines(), media_type="text/plain")


def self_test() -> None:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=?"
    try:
        for path in ("/orders/42", "/report", "/stream"):
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}{path}", headers={"X-Amzn-Trace-Id": header}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                print(path, response.status, response.headers["X-Amzn-Trace-Id"])
    finally:
        server.should_exit = True
        thread.join()
        tracer.flush()


if __name__ == "__main__":
    if "--self-test" in sys.argv:
        self_test()
    else:
        uvicorn.run(app, host="127.0.0.1", port=8000)
