"""``urllib3``: one ``remote`` subsegment per ``HTTPConnectionPool.urlopen``.

``PoolManager``, ``urllib3.request`` and ``HTTPSConnectionPool`` all end in
``HTTPConnectionPool.urlopen``, patched class-wide. Retries and same-host redirects
urllib3 follows inside one ``urlopen`` belong to its subsegment; a redirect a
``PoolManager`` follows to another pool is a subsegment of its own. When urllib3 is
called by ``requests`` or ``botocore`` (instrumented too) it records nothing. The
caller's ``headers`` mapping is copied, never modified. Shared rules:
:mod:`fluoroscope.sdk.instrument.outgoing`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from fluoroscope.sdk.instrument import url_without_query
from fluoroscope.sdk.instrument._patch import Patch
from fluoroscope.sdk.instrument.outgoing import PatchingInstrumentor, begin, content_length

__all__ = ["Urllib3Instrumentor"]


def with_headers(headers: Mapping[str, str] | None, extra: list[tuple[str, str]]) -> dict[str, str]:
    """A copy of ``headers`` as a dict with ``extra`` set (replacing any case variant)."""
    out = dict(headers) if headers else {}
    for name, value in extra:
        lowered = name.lower()
        for key in [k for k in out if k.lower() == lowered]:
            del out[key]
        out[name] = value
    return out


def _wrap_urlopen(original: Callable[..., Any]) -> Callable[..., Any]:
    def urlopen(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        try:
            if "://" in url:
                full = url
            else:
                port = self.port
                default = 443 if self.scheme == "https" else 80
                netloc = self.host if port in (None, default) else f"{self.host}:{port}"
                full = f"{self.scheme}://{netloc}{url}"
            parts = urlsplit(full)
            call = begin(
                parts.hostname or "unknown",
                host=parts.hostname,
                path=parts.path,
                what="trace a urllib3 call",
            )
        except (AttributeError, TypeError, ValueError):
            call = None
        if call is None:
            return original(self, method, url, *args, **kwargs)
        extra = call.headers()
        if extra:
            if len(args) >= 2:  # urlopen(method, url, body, headers, ...)
                given = args[1]
                args = (
                    args[0],
                    with_headers(self.headers if given is None else given, extra),
                    *args[2:],
                )
            else:
                given = kwargs.get("headers")
                kwargs["headers"] = with_headers(self.headers if given is None else given, extra)
        call.request(method, url_without_query(full))
        with call:
            response = original(self, method, url, *args, **kwargs)
            call.response(response.status, content_length(response.headers.get("content-length")))
        return response

    return urlopen


class Urllib3Instrumentor(PatchingInstrumentor):
    """Patches ``urllib3.HTTPConnectionPool.urlopen``. Idempotent, reversible."""

    name = "urllib3"
    module = "urllib3"

    def patches(self) -> list[Patch]:
        import urllib3

        return [Patch(urllib3.HTTPConnectionPool, "urlopen", _wrap_urlopen)]
