"""``requests``: one ``remote`` subsegment per ``Session.send`` (so per ``requests.get``).

``Session.send`` is patched class-wide, so sessions created before and after
:meth:`RequestsInstrumentor.instrument` are traced. Redirects followed inside one
``send`` belong to its subsegment (they carry the same header); the final status
is recorded. The ``urllib3`` and ``http.client`` layers underneath record nothing
for these calls. See :mod:`fluoroscope.sdk.instrument.outgoing` for the rules
shared by every HTTP client (no segment, unsampled, ignored URLs, traceparent).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from fluoroscope.sdk.instrument import url_without_query
from fluoroscope.sdk.instrument._patch import Patch
from fluoroscope.sdk.instrument.outgoing import PatchingInstrumentor, begin, content_length

__all__ = ["RequestsInstrumentor"]


def _wrap_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        try:
            url = str(request.url)
            parts = urlsplit(url)
            call = begin(
                parts.hostname or "unknown",
                host=parts.hostname,
                path=parts.path,
                what="trace a requests call",
            )
        except (ValueError, AttributeError, TypeError):
            call = None
        if call is None:
            return original(self, request, **kwargs)
        for name, value in call.headers():
            request.headers[name] = value
        call.request(request.method, url_without_query(url))
        with call:
            response = original(self, request, **kwargs)
            call.response(
                response.status_code, content_length(response.headers.get("content-length"))
            )
        return response

    return send


class RequestsInstrumentor(PatchingInstrumentor):
    """Patches ``requests.Session.send``. Idempotent, reversible."""

    name = "requests"
    module = "requests"

    def patches(self) -> list[Patch]:
        import requests

        return [Patch(requests.Session, "send", _wrap_send)]
