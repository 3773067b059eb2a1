"""Incoming-request middleware: a segment per request, continuing the caller's trace.

::

    from fluoroscope.sdk import Tracer
    from fluoroscope.sdk.middleware import XRayASGIMiddleware, XRayWSGIMiddleware

    tracer = Tracer(service="orders")

    # Flask (wsgi_app wrapped, plus the exceptions Flask turns into 500s as the cause)
    from fluoroscope.sdk.middleware.flask import trace_flask
    trace_flask(app, tracer)

    # FastAPI / Starlette
    app.add_middleware(XRayASGIMiddleware, tracer=tracer)

    # Django: settings.MIDDLEWARE = ["fluoroscope.sdk.middleware.django.XRayMiddleware", ...]
    # (first in the list; the tracer is settings.FLUOROSCOPE_TRACER or the global one)

    # aiohttp.web
    from fluoroscope.sdk.middleware.aiohttp import trace_aiohttp
    trace_aiohttp(app, tracer)

    # any WSGI app
    application = XRayWSGIMiddleware(application, tracer)

Every middleware obeys ``X-Amzn-Trace-Id`` (``Sampled=1``/``0``; ``?`` or none: the
tracer's sampler decides from host, method and path), records ``http.request`` and
``http.response``, sets error/throttle/fault from the status, records unhandled
exceptions as the ``cause``, returns ``X-Amzn-Trace-Id`` to the caller and keeps the
segment current (``contextvars``) while the handler runs. See :mod:`.wsgi` and
:mod:`.asgi` for the exact contract.

Importing this package imports only the standard library; the framework helpers
(:mod:`.flask`, :mod:`.django`, :mod:`.aiohttp`) import their framework when used.
"""

from __future__ import annotations

from fluoroscope.sdk.middleware._common import ENVIRON_KEY
from fluoroscope.sdk.middleware.asgi import XRayASGIMiddleware
from fluoroscope.sdk.middleware.wsgi import XRayWSGIMiddleware

__all__ = ["ENVIRON_KEY", "XRayASGIMiddleware", "XRayWSGIMiddleware"]
