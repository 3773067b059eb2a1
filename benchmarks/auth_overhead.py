"""Access-control overhead per request: what :class:`AccessControl` adds to an API call.

Each case calls the middleware in front of a trivial ASGI app (which reads the body and
answers 200) directly, with a prebuilt scope and body (no socket, no HTTP parsing),
``REQUESTS`` times; the figure is the best run's time per request minus the same app
without the middleware (best of several interleaved runs: the shared machine is noisy):

- open: loopback without keys (Host, Origin and content-type checks only);
- bearer: ``Authorization: Bearer TOKEN`` with a configured API key;
- sigv4 1 KB / 300 KB: a boto3-signed ``PutTraceSegments``-sized body, verified with
  botocore's signer (canonical request, payload hash, signing key) and replayed.

There is no DESIGN target for this; the script prints each figure.
Run: ``python benchmarks/auth_overhead.py [runs]``. Not part of pytest.
"""

from __future__ import annotations

import asyncio
import sys
import time

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fluoroscope.server.auth import AccessControl, AccessPolicy

REQUESTS = 2000
KEY_ID, SECRET, TOKEN = "AKIDBENCH", "s" * 40, "t" * 32
HOST = "127.0.0.1:2000"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def signed_headers(body: bytes) -> list[tuple[bytes, bytes]]:
    request = AWSRequest(
        "POST",
        f"http://{HOST}/TraceSegments",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    SigV4Auth(Credentials(KEY_ID, SECRET), "xray", "us-east-1").add_auth(request)
    return [(k.lower().encode(), str(v).encode()) for k, v in request.headers.items()]


def case(headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[Scope, Receive]:
    scope: Scope = {
        "type": "http",
        "method": "POST",
        "path": "/TraceSegments",
        "raw_path": b"/TraceSegments",
        "query_string": b"",
        "headers": [
            (b"host", HOST.encode()),
            (b"content-length", str(len(body)).encode()),
            *[(k, v) for k, v in headers if k not in (b"host", b"content-length")],
        ],
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return scope, receive


async def timed(target: ASGIApp, scope: Scope, receive: Receive) -> float:
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.perf_counter()
    for _ in range(REQUESTS):
        await target(scope, receive, send)
    elapsed = time.perf_counter() - started
    assert set(statuses) == {200}, statuses[:3]
    return elapsed / REQUESTS


async def main(runs: int) -> None:
    policy = AccessPolicy.build("127.0.0.1", wide=False)
    secured = AccessPolicy.build(
        "127.0.0.1", wide=False, access_keys=[(KEY_ID, SECRET)], api_keys=[TOKEN]
    )
    json_type = [(b"content-type", b"application/json")]
    small = b'{"TraceSegmentDocuments": ["' + b"x" * 1000 + b'"]}'
    large = b'{"TraceSegmentDocuments": ["' + b"x" * 300_000 + b'"]}'
    cases: dict[str, tuple[AccessPolicy, list[tuple[bytes, bytes]], bytes]] = {
        "open": (policy, json_type, small),
        "bearer": (secured, [*json_type, (b"authorization", f"Bearer {TOKEN}".encode())], small),
        "sigv4 1 KB": (secured, signed_headers(small), small),
        "sigv4 300 KB": (secured, signed_headers(large), large),
    }
    best: dict[str, float] = {}
    for _ in range(runs):
        for name, (chosen, headers, body) in cases.items():
            scope, receive = case(headers, body)
            bare = await timed(app, scope, receive)
            wrapped = await timed(AccessControl(app, chosen, 16 << 20), scope, receive)
            best[name] = min(best.get(name, float("inf")), wrapped - bare)
    for name, cost in best.items():
        print(f"{name:>14}: {cost * 1e6:8.1f} µs per request added")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
