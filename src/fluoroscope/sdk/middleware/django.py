"""Django: a ``MIDDLEWARE`` entry that records each request as a segment.

::

    # settings.py
    MIDDLEWARE = [
        "fluoroscope.sdk.middleware.django.XRayMiddleware",   # first
        ...
    ]
    FLUOROSCOPE_TRACER = Tracer(service="orders")   # optional: else the global tracer
    FLUOROSCOPE_MIDDLEWARE = {"dynamic_naming": "*.example.com"}   # optional options

It does what :mod:`fluoroscope.sdk.middleware.wsgi` describes, from inside Django, and
also records the exceptions Django turns into 500 responses (``process_exception``)
as the segment's ``cause``. Streaming responses (``StreamingHttpResponse``,
``FileResponse``) are timed until Django closes them; an *async* streaming response
under ASGI is timed until the view returns it. When the WSGI application is already
wrapped in :class:`~fluoroscope.sdk.middleware.XRayWSGIMiddleware`, this class only
adds the exception (one segment per request either way).

The middleware is synchronous; under Django's ASGI handler Django runs it in a thread
with the context carried over. Django is imported only when the class is instantiated
(by Django, at startup). Options: ``name``, ``dynamic_naming``, ``include_query``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluoroscope.model.trace_header import HEADER_NAME, WSGI_HEADER_NAME
from fluoroscope.sdk._context import CURRENT
from fluoroscope.sdk._entities import Segment
from fluoroscope.sdk._inert import UnsampledSegment
from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk.middleware._common import (
    ENVIRON_KEY,
    RequestNaming,
    begin,
    content_length,
    host_with_port,
)
from fluoroscope.sdk.middleware.wsgi import _Response, _TracedBody

__all__ = ["XRayMiddleware"]


class XRayMiddleware:
    """Django middleware (new style); put it first in ``MIDDLEWARE``.

    Instantiated once by Django with ``get_response``; reads ``FLUOROSCOPE_TRACER``
    and ``FLUOROSCOPE_MIDDLEWARE`` from the settings then. Thread-safe; never raises
    anything of its own.
    """

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from django.conf import settings

        self.get_response = get_response
        self.tracer = getattr(settings, "FLUOROSCOPE_TRACER", None)
        options: dict[str, Any] = dict(getattr(settings, "FLUOROSCOPE_MIDDLEWARE", None) or {})
        self.naming = RequestNaming(options.get("name"), options.get("dynamic_naming"))
        self.include_query = bool(options.get("include_query", False))

    def __call__(self, request: Any) -> Any:
        meta = request.META
        if meta.get(ENVIRON_KEY) is not None:  # an outer XRayWSGIMiddleware traces it
            return self.get_response(request)
        try:
            scheme = request.scheme
            seg = begin(
                self.tracer,
                self.naming,
                header=meta.get(WSGI_HEADER_NAME),
                scheme=scheme,
                host=meta.get("HTTP_HOST")
                or host_with_port(meta.get("SERVER_NAME"), scheme, meta.get("SERVER_PORT")),
                method=request.method or "GET",
                path=request.path,
                query=meta.get("QUERY_STRING"),
                user_agent=meta.get("HTTP_USER_AGENT"),
                forwarded_for=meta.get("HTTP_X_FORWARDED_FOR"),
                remote_addr=meta.get("REMOTE_ADDR"),
                include_query=self.include_query,
            )
        except Exception as exc:  # an odd request object: serve it untraced
            warn_once("middleware-django-request", "could not read the Django request: %r", exc)
            seg = None
        if seg is None:
            return self.get_response(request)
        meta[ENVIRON_KEY] = seg
        token = CURRENT.set(seg)
        try:
            response = self.get_response(request)
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
        return _finish(seg, response)

    def process_exception(self, request: Any, exception: Exception) -> None:
        """Record an exception raised by a view as the segment's ``cause``."""
        seg = request.META.get(ENVIRON_KEY)
        if seg is not None and seg.sampled:
            seg.add_exception(exception)


def _finish(seg: Segment | UnsampledSegment, response: Any) -> Any:
    """Add the response header, record the response, and end the segment (now or when
    a streamed body is closed)."""
    state = _Response()
    streamed = False
    try:
        response[HEADER_NAME] = seg.response_header()
        if seg.sampled:
            state.status = response.status_code
            seg.set_http_response(status=response.status_code)
            if response.has_header("Content-Length"):
                state.length = content_length(response["Content-Length"])
        if response.streaming and not getattr(response, "is_async", False):
            body = _TracedBody(response.streaming_content, seg, state)
            response.streaming_content = body  # Django calls body.close() when done
            streamed = True
        elif seg.sampled and state.length is None and not response.streaming:
            state.length = len(response.content)
        if seg.sampled and state.length is not None and not streamed:
            seg.set_http_response(content_length=state.length)
    except Exception as exc:  # an unusual response object: still end the segment
        warn_once("middleware-django-response", "could not read the Django response: %r", exc)
    if not streamed:
        seg.close()
    return response
