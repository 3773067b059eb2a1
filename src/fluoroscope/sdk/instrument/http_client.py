"""``http.client`` (and so ``urllib.request``): one ``remote`` subsegment per request.

``HTTPConnection.request`` opens the subsegment and sends the header; the matching
``HTTPConnection.getresponse`` records the status and closes it (so it spans the
request until the response headers arrived). Both are patched class-wide (covering
``HTTPSConnection`` and ``urllib.request.urlopen``). A request that fails to send
(connection refused, timeout) is recorded as a fault with the exception as cause.
Code that drives ``putrequest``/``putheader`` itself (urllib3 does) is not traced
here; urllib3 has its own instrumentation. Shared rules:
:mod:`fluoroscope.sdk.instrument.outgoing`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit

from fluoroscope.sdk.instrument import url_without_query
from fluoroscope.sdk.instrument._patch import Patch
from fluoroscope.sdk.instrument.outgoing import Call, PatchingInstrumentor, begin, content_length
from fluoroscope.sdk.instrument.urllib3 import with_headers

__all__ = ["HttpClientInstrumentor"]

_PENDING: Final = "_fluoroscope_call"


def _full_url(conn: Any, url: str) -> str:
    if "://" in url:
        return url
    import http.client

    https = isinstance(conn, http.client.HTTPSConnection)
    host = getattr(conn, "_tunnel_host", None) or conn.host
    port = getattr(conn, "_tunnel_port", None) or conn.port
    default = 443 if https else 80
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{'https' if https else 'http'}://{netloc}{url}"


def _finish(call: Call, exc: BaseException | None = None) -> None:
    if exc is not None:
        call.fail(exc)
    call.close()


def _wrap_request(original: Callable[..., Any]) -> Callable[..., Any]:
    def request(
        self: Any, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        stale = self.__dict__.pop(_PENDING, None)
        if stale is not None:  # the previous request never read its response
            _finish(stale)
        try:
            full = _full_url(self, url)
            parts = urlsplit(full)
            call = begin(
                parts.hostname or "unknown",
                host=parts.hostname,
                path=parts.path,
                what="trace an http.client call",
            )
        except (AttributeError, TypeError, ValueError):
            call = None
        if call is None:
            return original(self, method, url, body, {} if headers is None else headers, **kwargs)
        extra = call.headers()
        if extra:
            headers = with_headers(headers, extra)
        call.request(method, url_without_query(full))
        try:
            result = original(self, method, url, body, {} if headers is None else headers, **kwargs)
        except BaseException as exc:
            _finish(call, exc if isinstance(exc, Exception) else None)
            raise
        self.__dict__[_PENDING] = call
        return result

    return request


def _wrap_getresponse(original: Callable[..., Any]) -> Callable[..., Any]:
    def getresponse(self: Any) -> Any:
        call: Call | None = self.__dict__.pop(_PENDING, None)
        if call is None:
            return original(self)
        try:
            response = original(self)
        except BaseException as exc:
            _finish(call, exc if isinstance(exc, Exception) else None)
            raise
        call.response(response.status, content_length(response.getheader("content-length")))
        call.close()
        return response

    return getresponse


class HttpClientInstrumentor(PatchingInstrumentor):
    """Patches ``http.client.HTTPConnection.request`` and ``.getresponse``. Idempotent."""

    name = "http.client"
    module = "http.client"

    def patches(self) -> list[Patch]:
        import http.client

        return [
            Patch(http.client.HTTPConnection, "request", _wrap_request),
            Patch(http.client.HTTPConnection, "getresponse", _wrap_getresponse),
        ]
