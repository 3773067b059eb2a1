"""aiohttp server (``aiohttp.web``): a middleware recording each request as a segment.

::

    from aiohttp import web
    from fluoroscope.sdk.middleware.aiohttp import trace_aiohttp, xray_middleware

    app = web.Application()
    trace_aiohttp(app, tracer)        # the middleware first, and the header on streamed responses
    # or: web.Application(middlewares=[xray_middleware(tracer)])   (first in the list)

The same rules as :mod:`fluoroscope.sdk.middleware.wsgi` (header, sampling, ``http``
fields, flags, exception as the cause, response header), for aiohttp's handler model:

* aiohttp's HTTP errors are exceptions (``web.HTTPNotFound``...): their status is recorded
  (4xx: error; 5xx: fault), the trace header is added to them, and they are re-raised;
  any other exception is status 500 + fault + cause, re-raised;
* the segment ends when the handler returns its response: for a ``StreamResponse`` the
  handler has written the body by then; a plain ``Response`` body is sent just after;
* a ``StreamResponse`` sends its headers when the handler prepares it, before the
  middleware sees it: :func:`trace_aiohttp` also hooks ``on_response_prepare`` so those
  responses carry the trace header too (the bare middleware cannot).

aiohttp is imported when :func:`xray_middleware` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fluoroscope.model.trace_header import HEADER_NAME
from fluoroscope.sdk._context import CURRENT
from fluoroscope.sdk._entities import Segment
from fluoroscope.sdk._inert import UnsampledSegment
from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk._tracer import Tracer
from fluoroscope.sdk.middleware._common import ENVIRON_KEY, RequestNaming, begin

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler, Middleware

__all__ = ["trace_aiohttp", "xray_middleware"]

_MARK = "fluoroscope.traced"


def xray_middleware(
    tracer: Tracer | None = None,
    *,
    name: str | None = None,
    dynamic_naming: str | None = None,
    include_query: bool = False,
) -> Middleware:
    """A new-style aiohttp middleware tracing every request; put it first.

    Options as for :class:`~fluoroscope.sdk.middleware.XRayWSGIMiddleware`. The
    result is stateless and serves requests concurrently.
    """
    from aiohttp import web

    naming = RequestNaming(name, dynamic_naming)
    key = _request_key()

    @web.middleware
    async def fluoroscope_xray(request: web.Request, handler: Handler) -> web.StreamResponse:
        if key in request:
            return await handler(request)
        try:
            headers = request.headers
            seg = begin(
                tracer,
                naming,
                header=headers.get(HEADER_NAME),
                scheme=request.scheme,
                host=request.host,
                method=request.method,
                path=request.path,
                query=request.query_string,
                user_agent=headers.get("User-Agent"),
                forwarded_for=headers.get("X-Forwarded-For"),
                remote_addr=request.remote,
                include_query=include_query,
            )
        except Exception as exc:  # an odd request: serve it untraced
            warn_once("middleware-aiohttp-request", "could not read the request: %r", exc)
            seg = None
        if seg is None:
            return await handler(request)
        request[key] = seg
        token = CURRENT.set(seg)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # aiohttp's way of answering 404, 429, 503...
            _finish(seg, exc)
            raise
        except Exception as exc:
            if seg.sampled:
                seg.set_http_response(status=500)
                seg.add_exception(exc)
            seg.close()
            raise
        except BaseException:
            seg.close()
            raise
        finally:
            CURRENT.reset(token)
        _finish(seg, response)
        return response

    return fluoroscope_xray


def _finish(seg: Segment | UnsampledSegment, response: Any) -> None:
    """Add the response header (if headers are not sent yet), record the response, end."""
    try:
        if not getattr(response, "prepared", False):
            response.headers[HEADER_NAME] = seg.response_header()
        if seg.sampled:
            length = response.content_length
            if length is None:
                body = getattr(response, "body", None)
                if isinstance(body, bytes | bytearray):
                    length = len(body)
            seg.set_http_response(status=response.status, content_length=length)
    except Exception as exc:  # an unusual response object: still end the segment
        warn_once("middleware-aiohttp-response", "could not read the response: %r", exc)
    seg.close()


_keys: dict[str, Any] = {}


def _request_key() -> Any:
    """The request-storage key for the segment (a ``web.RequestKey`` where aiohttp has it)."""
    key = _keys.get("request")
    if key is None:
        from aiohttp import web

        factory = getattr(web, "RequestKey", None)
        key = _keys["request"] = factory(ENVIRON_KEY, object) if factory else ENVIRON_KEY
    return key


def _app_key() -> Any:
    key = _keys.get("app")
    if key is None:
        from aiohttp import web

        factory = getattr(web, "AppKey", None)
        key = _keys["app"] = factory(_MARK, bool) if factory else _MARK
    return key


async def _add_header(request: Any, response: Any) -> None:
    seg = request.get(_request_key())
    if seg is not None:
        try:
            response.headers[HEADER_NAME] = seg.response_header()
        except Exception as exc:  # never break the response
            warn_once("middleware-aiohttp-prepare", "could not add the trace header: %r", exc)


def trace_aiohttp(
    app: Any,
    tracer: Tracer | None = None,
    *,
    name: str | None = None,
    dynamic_naming: str | None = None,
    include_query: bool = False,
) -> Any:
    """Trace every request of ``app`` (an ``aiohttp.web.Application`` not yet started).

    Puts :func:`xray_middleware` first among the app's middlewares and adds the trace
    header to every response as it is prepared (streamed ones included). Returns ``app``;
    idempotent.
    """
    mark = _app_key()
    if app.get(mark):
        return app
    app.middlewares.insert(
        0,
        xray_middleware(
            tracer, name=name, dynamic_naming=dynamic_naming, include_query=include_query
        ),
    )
    app.on_response_prepare.append(_add_header)
    app[mark] = True
    return app
