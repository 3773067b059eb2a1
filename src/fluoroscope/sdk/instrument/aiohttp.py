"""``aiohttp`` client: one ``remote`` subsegment per ``ClientSession`` request.

``ClientSession._request`` (behind ``session.get``, ``session.request`` …) is
patched class-wide, so sessions made before and after
:meth:`AiohttpInstrumentor.instrument` are traced; no ``TraceConfig`` needs to be
passed. The subsegment ends when the response headers arrived (reading the body is
not included); redirects followed inside one request belong to it. Connection
errors are recorded as a fault with the exception as cause. The caller's
``headers`` are copied, never modified. Shared rules:
:mod:`fluoroscope.sdk.instrument.outgoing`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fluoroscope.sdk.instrument import url_without_query
from fluoroscope.sdk.instrument._patch import Patch
from fluoroscope.sdk.instrument.outgoing import PatchingInstrumentor, begin

__all__ = ["AiohttpInstrumentor"]


def _wrap_request(original: Callable[..., Any]) -> Callable[..., Any]:
    async def _request(self: Any, method: str, str_or_url: Any, **kwargs: Any) -> Any:
        try:
            import yarl
            from multidict import CIMultiDict

            build = getattr(self, "_build_url", None)
            url = build(str_or_url) if build is not None else yarl.URL(str_or_url)
            host = url.host
            call = begin(host or "unknown", host=host, path=url.path, what="trace an aiohttp call")
        except (AttributeError, TypeError, ValueError, ImportError):
            call = None
        if call is None:
            return await original(self, method, str_or_url, **kwargs)
        extra = call.headers()
        if extra:
            headers = CIMultiDict(kwargs.get("headers") or ())
            for name, value in extra:
                headers[name] = value
            kwargs["headers"] = headers
        call.request(method.upper(), url_without_query(str(url)))
        with call:
            response = await original(self, method, str_or_url, **kwargs)
            call.response(response.status, response.content_length)
        return response

    return _request


class AiohttpInstrumentor(PatchingInstrumentor):
    """Patches ``aiohttp.ClientSession._request``. Idempotent, reversible."""

    name = "aiohttp"
    module = "aiohttp"

    def patches(self) -> list[Patch]:
        import aiohttp

        return [Patch(aiohttp.ClientSession, "_request", _wrap_request)]
