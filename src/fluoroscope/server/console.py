"""The web console's static files, served beside the X-Ray API.

``GET /`` answers the console's page; ``GET /console/...`` its ES modules, stylesheets and
vendored libraries (``fluoroscope/console/static``, shipped in the package; no build
step). The console reads only the public API, so serving it is all the server does.

Every answer carries a Content-Security-Policy that allows scripts, styles and requests
from this origin only, no inline script or style attribute, no plugins, no framing: a
segment's strings are rendered as text by the console, and this policy is the second
wall should a rendering path ever treat one as markup.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "console_routes"]

STATIC_DIR: Final = Path(__file__).resolve().parents[1] / "console" / "static"

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

_HEADERS: Final = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


class _Secured:
    """Adds the console's security headers to every response of ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode("latin-1").lower() not in _HEADERS
                ]
                headers.extend((k.encode(), v.encode()) for k, v in _HEADERS.items())
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_secured)


async def _index(request: Request) -> Response:
    response = FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")
    response.headers.update(_HEADERS)
    return response


def console_routes() -> list[BaseRoute]:
    """``GET /`` (the page) and ``/console`` (its files, gzipped for clients that accept
    it: a console opened from another machine loads a third of the bytes), both with the
    security headers.

    Raises nothing at import; a missing static directory (a broken install) makes
    :class:`StaticFiles` fail when the routes are built, not on the first request.
    """
    return [
        Route("/", _index, methods=["GET", "HEAD"]),
        Mount(
            "/console",
            app=_Secured(GZipMiddleware(StaticFiles(directory=STATIC_DIR), minimum_size=1024)),
            name="console",
        ),
    ]
