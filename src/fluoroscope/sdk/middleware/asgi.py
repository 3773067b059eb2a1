"""ASGI middleware: one segment per incoming HTTP request (Starlette, FastAPI, any ASGI app).

::

    from fluoroscope.sdk import Tracer
    from fluoroscope.sdk.middleware import XRayASGIMiddleware

    app = FastAPI()
    app.add_middleware(XRayASGIMiddleware, tracer=Tracer(service="orders"))
    # or wrap any ASGI app: app = XRayASGIMiddleware(app, tracer)

Only ``http`` scopes are traced; ``lifespan`` and ``websocket`` pass through untouched.
For each request it does what :mod:`fluoroscope.sdk.middleware.wsgi` describes (the
same header, sampling, ``http`` fields, flags, exception and response-header rules),
with these ASGI specifics:

* the segment is current (a ``ContextVar``) in the request's task, so async handlers
  see it, and so do sync handlers run in a worker thread by Starlette/FastAPI (their
  thread pool copies the context), background tasks and streamed bodies;
* the client address is ``scope["client"]`` unless ``X-Forwarded-For`` says otherwise;
* ``end_time`` is taken right after the final ``http.response.body`` (``more_body``
  false) was sent, so a streamed response is timed until its last byte; the segment is
  sent when the app returns (after Starlette's background tasks), so an exception
  raised after the response (e.g. by Starlette's ``ServerErrorMiddleware`` once it has
  sent its 500) is still recorded as the ``cause``;
* an exception before the response started is recorded as status 500 + fault + cause
  and re-raised (the server or an outer error middleware then answers 500).

The segment is put in ``scope["fluoroscope.segment"]`` (a second tracing middleware
seeing it there passes the request on). The middleware never raises anything of its own; when tracing cannot start the
request is served untraced (logged once).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from fluoroscope.sdk._context import CURRENT
from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk._tracer import Tracer
from fluoroscope.sdk.middleware._common import (
    ENVIRON_KEY,
    RequestNaming,
    begin,
    content_length,
    host_with_port,
)

__all__ = ["XRayASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TRACE_HEADER: Final = b"x-amzn-trace-id"
_FINAL_WITHOUT_BODY: Final = frozenset(("http.response.pathsend", "http.response.zerocopy"))


def _text(value: bytes) -> str:
    return value.decode("latin-1")


class XRayASGIMiddleware:
    """Wraps an ASGI 3 application so every HTTP request is recorded as a segment.

    Arguments as for :class:`~fluoroscope.sdk.middleware.XRayWSGIMiddleware`:
    ``tracer`` (default :func:`fluoroscope.sdk.get_tracer` at each request), ``name``,
    ``dynamic_naming``, ``include_query``. Usable with Starlette's
    ``app.add_middleware(XRayASGIMiddleware, tracer=...)``. One instance serves every
    request concurrently; it keeps no per-request state on itself.
    """

    def __init__(
        self,
        app: ASGIApp,
        tracer: Tracer | None = None,
        *,
        name: str | None = None,
        dynamic_naming: str | None = None,
        include_query: bool = False,
    ) -> None:
        self.app = app
        self.tracer = tracer
        self.naming = RequestNaming(name, dynamic_naming)
        self.include_query = include_query

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or ENVIRON_KEY in scope:
            await self.app(scope, receive, send)
            return
        header = host = user_agent = forwarded_for = None
        try:
            for key, value in scope.get("headers") or ():
                if key == _TRACE_HEADER:
                    header = _text(value)
                elif key == b"host":
                    host = _text(value)
                elif key == b"user-agent":
                    user_agent = _text(value)
                elif key == b"x-forwarded-for":
                    forwarded_for = _text(value) if forwarded_for is None else forwarded_for
            scheme = scope.get("scheme") or "http"
            server = scope.get("server")
            if not host and server:
                host = host_with_port(server[0], scheme, server[1])
            client = scope.get("client")
            query = scope.get("query_string") or b""
            method = scope.get("method") or "GET"
            path = scope.get("path") or "/"
            remote_addr = str(client[0]) if client else None
        except Exception as exc:  # a malformed scope: serve it untraced
            warn_once("middleware-asgi-scope", "could not read the ASGI scope: %r", exc)
            await self.app(scope, receive, send)
            return
        seg = begin(
            self.tracer,
            self.naming,
            header=header,
            scheme=scheme,
            host=host,
            method=method,
            path=path,
            query=_text(query) if query else None,
            user_agent=user_agent,
            forwarded_for=forwarded_for,
            remote_addr=remote_addr,
            include_query=self.include_query,
        )
        if seg is None:
            await self.app(scope, receive, send)
            return

        scope[ENVIRON_KEY] = seg
        sampled = seg.sampled
        trace_header = (_TRACE_HEADER, seg.response_header().encode("latin-1"))
        started = False
        length: int | None = None
        sent = 0
        body_complete = False
        end_time: float | None = None

        async def traced_send(message: Message) -> None:
            nonlocal started, length, sent, body_complete, end_time
            kind = message.get("type")
            if kind == "http.response.start":
                started = True
                try:
                    headers = [
                        h for h in message.get("headers") or () if h[0].lower() != _TRACE_HEADER
                    ]
                    headers.append(trace_header)
                    message = {**message, "headers": headers}
                    if sampled:
                        seg.set_http_response(status=message["status"])
                        for key, value in headers:
                            if key.lower() == b"content-length":
                                length = content_length(value)
                                break
                except Exception as exc:  # odd headers from the app: pass them on untouched
                    warn_once("middleware-asgi-headers", "could not read ASGI response: %r", exc)
                await send(message)
            elif kind == "http.response.body":
                if sampled:
                    sent += len(message.get("body") or b"")
                await send(message)
                if not message.get("more_body", False) and end_time is None:
                    end_time = time.time()
                    body_complete = True
            else:
                await send(message)
                if kind in _FINAL_WITHOUT_BODY and end_time is None:
                    end_time = time.time()

        token = CURRENT.set(seg)
        try:
            await self.app(scope, receive, traced_send)
        except Exception as exc:
            if sampled:
                if not started:
                    seg.set_http_response(status=500)
                seg.add_exception(exc)
            raise
        finally:
            CURRENT.reset(token)
            if sampled and (length is not None or body_complete):
                seg.set_http_response(content_length=sent if length is None else length)
            seg.close(end_time)
