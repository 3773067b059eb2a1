"""Flask: trace every request of an app, including the exceptions Flask answers with 500.

::

    from fluoroscope.sdk.middleware.flask import trace_flask

    app = Flask(__name__)
    trace_flask(app, tracer)            # tracer optional: the global one by default

Flask catches an unhandled exception in a view and answers 500 itself, so a plain WSGI
middleware sees only the status. :func:`trace_flask` wraps ``app.wsgi_app`` in
:class:`~fluoroscope.sdk.middleware.XRayWSGIMiddleware` and listens to Flask's
``got_request_exception`` signal to record the exception (with its frames) as the
segment's ``cause``. Flask is imported only when :func:`trace_flask` is called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk._tracer import Tracer
from fluoroscope.sdk.middleware._common import ENVIRON_KEY
from fluoroscope.sdk.middleware.wsgi import XRayWSGIMiddleware

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["trace_flask"]

_MARK = "fluoroscope_traced"


def _record_exception(sender: object, exception: BaseException, **extra: Any) -> None:
    from flask import request

    try:
        seg = request.environ.get(ENVIRON_KEY)
        if seg is not None and seg.sampled and isinstance(exception, Exception):
            seg.add_exception(exception)
    except Exception as exc:  # never break Flask's own error handling
        warn_once("middleware-flask-exception", "could not record a Flask exception: %r", exc)


def trace_flask(
    app: Flask,
    tracer: Tracer | None = None,
    *,
    name: str | None = None,
    dynamic_naming: str | None = None,
    include_query: bool = False,
) -> Flask:
    """Trace every request of ``app``; returns ``app``. Idempotent (a second call does nothing).

    Options as for :class:`~fluoroscope.sdk.middleware.XRayWSGIMiddleware`. Call it at
    setup, before serving; it replaces ``app.wsgi_app``.
    """
    from flask import got_request_exception

    if app.extensions.get(_MARK):
        return app
    app.wsgi_app = XRayWSGIMiddleware(  # type: ignore[method-assign]
        app.wsgi_app,
        tracer,
        name=name,
        dynamic_naming=dynamic_naming,
        include_query=include_query,
    )
    got_request_exception.connect(_record_exception, app, weak=False)
    app.extensions[_MARK] = True
    return app
