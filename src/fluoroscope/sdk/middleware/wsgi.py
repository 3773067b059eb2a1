"""WSGI middleware: one segment per incoming request (Flask, Django, any WSGI app).

::

    from fluoroscope.sdk import Tracer
    from fluoroscope.sdk.middleware import XRayWSGIMiddleware

    app.wsgi_app = XRayWSGIMiddleware(app.wsgi_app, Tracer(service="orders"))  # Flask
    application = XRayWSGIMiddleware(get_wsgi_application())                   # Django

For each request the middleware:

* continues the trace from ``HTTP_X_AMZN_TRACE_ID`` (reference: xray-protocol §1.3):
  ``Sampled=1``/``0`` are obeyed; ``Sampled=?`` or no header lets the tracer's sampler
  decide, given the ``Host`` header, the method and the path;
* makes the segment current (a ``ContextVar``) while the app runs and while each body
  chunk is produced, so handlers, streamed generators and instrumented clients see it;
* records ``http.request`` (method; url ``scheme://host/path``, the query string left
  out unless ``include_query=True`` since it may carry secrets; user agent; client ip,
  from the first ``X-Forwarded-For`` entry with ``x_forwarded_for: true``, else
  ``REMOTE_ADDR``) and ``http.response`` (status, which sets error/throttle/fault; content
  length from the header, else the bytes actually sent);
* on an exception from the app: status 500 unless a response had started, ``fault``, the
  exception as ``cause`` with its frames, and the exception re-raised;
* adds ``X-Amzn-Trace-Id`` to the response (``Root=…;Sampled=0|1`` when the request said
  ``Sampled=?``, else ``Root=…``);
* ends the segment when the server closes the response iterable (so streamed bodies are
  timed in full) and sends it.

An unsampled request costs one small object, two ``ContextVar`` operations and the
response header; nothing is recorded or sent. The middleware never raises anything of
its own: when tracing cannot start, the request is served untraced (logged once).
The segment is also put in ``environ["fluoroscope.segment"]`` for framework hooks; a
second tracing middleware seeing it there passes the request on (one segment each).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Final

from fluoroscope.model.trace_header import HEADER_NAME, WSGI_HEADER_NAME
from fluoroscope.sdk._context import CURRENT
from fluoroscope.sdk._entities import Entity
from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk._tracer import Tracer
from fluoroscope.sdk.middleware._common import (
    ENVIRON_KEY,
    RequestNaming,
    begin,
    content_length,
    host_with_port,
)

__all__ = ["XRayWSGIMiddleware"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_HEADER_LOWER: Final = HEADER_NAME.lower()


class _Response:
    """What one traced request has seen of its response so far."""

    __slots__ = ("length", "started", "status")

    def __init__(self) -> None:
        self.started = False
        self.status: int | None = None
        self.length: int | None = None


class XRayWSGIMiddleware:
    """Wraps a WSGI application so every request is recorded as a segment.

    ``tracer``: the tracer to use (default: :func:`fluoroscope.sdk.get_tracer` at each
    request). ``name``: the segment name (default: the tracer's service).
    ``dynamic_naming``: a ``Host`` pattern (``*``/``?``) whose matching requests are
    named after their host. ``include_query``: keep the query string in ``http.request.url``.

    Thread-safe: one instance serves every request, on any server thread.
    """

    def __init__(
        self,
        app: WSGIApp,
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

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if ENVIRON_KEY in environ:  # an outer tracing middleware already has this request
            return self.app(environ, start_response)
        scheme = environ.get("wsgi.url_scheme") or "http"
        host = environ.get("HTTP_HOST") or host_with_port(
            environ.get("SERVER_NAME"), scheme, environ.get("SERVER_PORT")
        )
        seg = begin(
            self.tracer,
            self.naming,
            header=environ.get(WSGI_HEADER_NAME),
            scheme=scheme,
            host=host,
            method=environ.get("REQUEST_METHOD") or "GET",
            path=(environ.get("SCRIPT_NAME") or "") + (environ.get("PATH_INFO") or ""),
            query=environ.get("QUERY_STRING"),
            user_agent=environ.get("HTTP_USER_AGENT"),
            forwarded_for=environ.get("HTTP_X_FORWARDED_FOR"),
            remote_addr=environ.get("REMOTE_ADDR"),
            include_query=self.include_query,
        )
        if seg is None:
            return self.app(environ, start_response)
        environ[ENVIRON_KEY] = seg
        sampled = seg.sampled
        response = _Response()
        trace_header = (HEADER_NAME, seg.response_header())

        def traced_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            response.started = True
            try:
                headers = [h for h in headers if h[0].lower() != _HEADER_LOWER]
                headers.append(trace_header)
                if sampled:
                    _record_start(seg, response, status, headers)
            except Exception as exc:  # odd headers from the app: pass them on untouched
                warn_once("middleware-wsgi-headers", "could not read WSGI response: %r", exc)
            if exc_info is None:
                return start_response(status, headers)
            return start_response(status, headers, exc_info)

        token = CURRENT.set(seg)
        try:
            body = self.app(environ, traced_start_response)
        except Exception as exc:
            if sampled:
                if not response.started:
                    seg.set_http_response(status=500)
                seg.add_exception(exc)
            seg.close()
            raise
        except BaseException:
            seg.close()
            raise
        finally:
            CURRENT.reset(token)
        if not sampled and isinstance(body, list | tuple):
            return body  # nothing to time, nothing runs later: skip the wrapper
        return _TracedBody(body, seg, response)


def _record_start(
    seg: Entity, response: _Response, status: str, headers: list[tuple[str, str]]
) -> None:
    try:
        code = int(status.split(" ", 1)[0])
    except ValueError:
        code = None
    if code is not None and code != response.status:
        response.status = code
        seg.set_http_response(status=code)
    for key, value in headers:
        if key.lower() == "content-length":
            response.length = content_length(value)
            break


class _TracedBody:
    """The app's response iterable, with the segment current while each chunk is made.

    Counts the bytes sent; ends the segment when the server calls :meth:`close`.
    """

    __slots__ = ("_body", "_done", "_it", "_response", "_seg", "_sent")

    def __init__(self, body: Iterable[bytes], seg: Entity, response: _Response) -> None:
        self._body = body
        self._it: Iterator[bytes] | None = None
        self._seg = seg
        self._response = response
        self._sent = 0
        self._done = False

    def __iter__(self) -> _TracedBody:
        return self

    def __next__(self) -> bytes:
        seg = self._seg
        token = CURRENT.set(seg)
        try:
            it = self._it
            if it is None:
                it = self._it = iter(self._body)
            chunk = next(it)
        except StopIteration:
            self._done = True
            raise
        except Exception as exc:
            seg.add_exception(exc)
            raise
        finally:
            CURRENT.reset(token)
        self._sent += len(chunk)
        return chunk

    def close(self) -> None:
        """Close the app's iterable, then record the response and send the segment."""
        seg = self._seg
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                token = CURRENT.set(seg)
                try:
                    close()
                finally:
                    CURRENT.reset(token)
        except Exception as exc:
            seg.add_exception(exc)
            raise
        finally:
            if seg.sampled:
                length = self._response.length
                if length is None and self._done:
                    length = self._sent
                if length is not None:
                    seg.set_http_response(content_length=length)
            seg.close()
