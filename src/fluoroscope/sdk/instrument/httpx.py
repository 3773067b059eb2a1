"""``httpx``: one ``remote`` subsegment per ``Client.send`` / ``AsyncClient.send``.

Every request of a client goes through ``send`` (``client.get``, ``client.stream``,
``httpx.get`` …), which is patched class-wide, so clients made before and after
:meth:`HttpxInstrumentor.instrument` are traced. Redirects followed inside one
``send`` belong to its subsegment; the final status is recorded. With
``stream=True`` the subsegment ends when the response headers arrive. Shared rules:
:mod:`fluoroscope.sdk.instrument.outgoing`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluoroscope.sdk.instrument import url_without_query
from fluoroscope.sdk.instrument._patch import Patch
from fluoroscope.sdk.instrument.outgoing import Call, PatchingInstrumentor, begin, content_length

__all__ = ["HttpxInstrumentor"]


def _start(request: Any) -> Call | None:
    try:
        url = request.url
        host = url.host
        call = begin(host or "unknown", host=host, path=url.path, what="trace an httpx call")
    except (AttributeError, TypeError, ValueError):
        return None
    if call is not None:
        for name, value in call.headers():
            request.headers[name] = value
        call.request(request.method, url_without_query(str(url)))
    return call


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        call = _start(request)
        if call is None:
            return original(self, request, *args, **kwargs)
        with call:
            response = original(self, request, *args, **kwargs)
            call.response(
                response.status_code, content_length(response.headers.get("content-length"))
            )
        return response

    return send


def _wrap_async_send(original: Callable[..., Any]) -> Callable[..., Any]:
    async def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        call = _start(request)
        if call is None:
            return await original(self, request, *args, **kwargs)
        with call:
            response = await original(self, request, *args, **kwargs)
            call.response(
                response.status_code, content_length(response.headers.get("content-length"))
            )
        return response

    return send


class HttpxInstrumentor(PatchingInstrumentor):
    """Patches ``httpx.Client.send`` and ``httpx.AsyncClient.send``. Idempotent, reversible."""

    name = "httpx"
    module = "httpx"

    def patches(self) -> list[Patch]:
        import httpx

        return [
            Patch(httpx.Client, "send", _wrap_send),
            Patch(httpx.AsyncClient, "send", _wrap_async_send),
        ]
