"""``GET /openapi.json``: the OpenAPI 3.1 description of the server's HTTP API.

The description is a data file shipped in this package (``openapi.json``), generated
from botocore's X-Ray service model and this server's routes by
``scripts/generate_openapi.py`` (a test checks it is up to date), so the server needs
no botocore at run time. It is read once, when the app is built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["OPENAPI_PATH", "openapi_endpoint"]

OPENAPI_PATH: Final = Path(__file__).resolve().parent / "openapi.json"


def openapi_endpoint() -> Callable[[Request], Awaitable[Response]]:
    """The ``GET /openapi.json`` handler."""
    document = OPENAPI_PATH.read_bytes()

    async def endpoint(request: Request) -> Response:
        return Response(document, media_type="application/json")

    return endpoint
