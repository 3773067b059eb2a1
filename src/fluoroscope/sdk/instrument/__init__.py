"""Instrumentations: one module per library, each exposing an :class:`Instrumentor`.

``instrument_all()`` instruments every supported library that is installed;
``instrument("requests", "httpx")`` picks some; ``uninstrument_all()`` reverses.
The registry maps names to ``module:Class`` strings, so nothing is imported until it
is instrumented; a module not written yet, or a library not installed, is skipped.
``futures`` (context carried into every ``ThreadPoolExecutor.submit``) is opt-in.

Writing an instrumentation
--------------------------
Follow ``logging.py``. A module defines one class with a ``name``, ``available()``
(is the library importable?), and idempotent, reversible ``instrument()`` /
``uninstrument()`` (keep the originals; restore them only if still yours —
:class:`Patch` does exactly that for ``owner.attribute`` replacements). Patch
functions must never raise anything of their own and must not change the library's
behaviour when tracing is off. Then add it to :data:`REGISTRY`. The core API to use:

* outgoing calls (HTTP clients, AWS SDK)::

      sub = start_call(host, namespace="remote")   # or "aws"; NOOP when not tracing
      with sub:                                    # current while the call runs
          header = sub.trace_header()               # None when there is no trace
          if header: request_headers[HEADER_NAME] = header
          # optionally also: request_headers[TRACEPARENT_HEADER_NAME] = sub.traceparent()
          sub.set_http_request(method="GET", url=url_without_query(url))
          response = original(...)                  # exceptions: recorded as the
          sub.set_http_response(status=response.status, content_length=n)  # cause
          sub.set_aws(operation="PutItem", region="us-east-1", request_id=rid)

  ``start_call`` returns :data:`NOOP` inside another remote/aws subsegment (so
  ``requests`` → ``urllib3`` → ``http.client`` is recorded once) and while
  :func:`suppress_instrumentation` is active (the SDK's own I/O). Call
  ``sub.add_exception(exc, remote=True)`` for errors the remote side returned;
  ``set_http_response(status=…)`` sets error/throttle/fault from the status. Without
  ``with``, call ``sub.close()`` when done (e.g. in aiohttp trace callbacks).
* incoming requests (WSGI/ASGI middleware)::

      seg = start_request(tracer, header=environ.get(WSGI_HEADER_NAME),
                          name=None, host=host, method=method, path=path)
      with seg:
          seg.set_http_request(method=..., url=..., user_agent=..., client_ip=...)
          ... call the app ...
          seg.set_http_response(status=..., content_length=...)
      response_headers.append((HEADER_NAME, seg.response_header()))

  ``tracer`` is the app's tracer or ``get_tracer()``. The header decides sampling
  (``Sampled=1/0``), else the tracer's sampler with host/method/path.
"""

from __future__ import annotations

import importlib
import threading
from typing import Final, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

from fluoroscope.model.trace_header import (
    HEADER_NAME,
    TRACEPARENT_HEADER_NAME,
    WSGI_HEADER_NAME,
    TraceHeader,
)
from fluoroscope.sdk import _env
from fluoroscope.sdk._context import SUPPRESSED, current_entity, suppress_instrumentation
from fluoroscope.sdk._entities import Entity, Segment, Subsegment, sanitize_name
from fluoroscope.sdk._inert import NOOP, UnsampledSegment
from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk._sampling import SamplingRequest
from fluoroscope.sdk._tracer import Tracer, get_tracer, open_subsegment
from fluoroscope.sdk.instrument._patch import Patch

__all__ = [
    "DEFAULT",
    "HEADER_NAME",
    "NOOP",
    "OPT_IN",
    "REGISTRY",
    "TRACEPARENT_HEADER_NAME",
    "WSGI_HEADER_NAME",
    "Instrumentor",
    "Patch",
    "current_entity",
    "current_trace_header",
    "get_instrumentor",
    "get_tracer",
    "instrument",
    "instrument_all",
    "start_call",
    "start_request",
    "suppress_instrumentation",
    "uninstrument_all",
    "url_without_query",
]


@runtime_checkable
class Instrumentor(Protocol):
    """Patches one library so its calls are traced.

    ``instrument()`` and ``uninstrument()`` are idempotent and reversible, called
    from application setup code (any thread, not concurrently with each other),
    may import the library, and never raise for a missing library (they return
    False / do nothing). The patches must not trace the SDK's own I/O.
    """

    name: str

    def available(self) -> bool:
        """True when the library can be imported."""
        ...

    def instrument(self) -> bool:
        """Patch the library; True when it is (now or already) instrumented."""
        ...

    def uninstrument(self) -> None:
        """Restore the library as it was."""
        ...

    @property
    def instrumented(self) -> bool:
        """True while the patches are in place."""
        ...


REGISTRY: Final[dict[str, str]] = {
    "logging": "fluoroscope.sdk.instrument.logging:LoggingInstrumentor",
    "botocore": "fluoroscope.sdk.instrument.botocore:BotocoreInstrumentor",
    "requests": "fluoroscope.sdk.instrument.requests:RequestsInstrumentor",
    "httpx": "fluoroscope.sdk.instrument.httpx:HttpxInstrumentor",
    "urllib3": "fluoroscope.sdk.instrument.urllib3:Urllib3Instrumentor",
    "http.client": "fluoroscope.sdk.instrument.http_client:HttpClientInstrumentor",
    "aiohttp": "fluoroscope.sdk.instrument.aiohttp:AiohttpInstrumentor",
    "futures": "fluoroscope.sdk.instrument.futures:FuturesInstrumentor",
}
"""Every known instrumentation, by name → ``module:Class``."""

OPT_IN: Final = frozenset({"futures"})
"""Instrumentations that :func:`instrument_all` leaves out unless named in ``include``."""

DEFAULT: Final = tuple(name for name in REGISTRY if name not in OPT_IN)

_instances: dict[str, Instrumentor] = {}
_lock = threading.Lock()


def get_instrumentor(name: str) -> Instrumentor | None:
    """The (shared) instrumentor for ``name``, or None when its module does not exist."""
    with _lock:
        found = _instances.get(name)
        if found is not None:
            return found
        target = REGISTRY.get(name)
        if target is None:
            return None
        module_name, _, class_name = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        created: Instrumentor = getattr(module, class_name)()
        _instances[name] = created
        return created


def instrument(*names: str) -> dict[str, bool]:
    """Instrument the named libraries; returns name → instrumented. Never raises."""
    done: dict[str, bool] = {}
    if not _env.env_enabled():
        return dict.fromkeys(names, False)
    for name in names:
        try:
            inst = get_instrumentor(name)
            done[name] = bool(inst is not None and inst.available() and inst.instrument())
        except Exception as exc:
            warn_once(f"instrument:{name}", "could not instrument %s: %r", name, exc)
            done[name] = False
    return done


def instrument_all(
    *, exclude: tuple[str, ...] = (), include: tuple[str, ...] = ()
) -> dict[str, bool]:
    """Instrument every supported, installed library (plus opt-in ``include``).

    Returns name → instrumented for each one tried. Idempotent; does nothing when
    ``AWS_XRAY_SDK_ENABLED`` is false. Never raises.
    """
    names = [n for n in (*DEFAULT, *include) if n not in exclude and n in REGISTRY]
    return instrument(*dict.fromkeys(names))


def uninstrument_all() -> None:
    """Reverse every instrumentation made so far. Never raises."""
    with _lock:
        active = list(_instances.values())
    for inst in active:
        try:
            inst.uninstrument()
        except Exception as exc:
            warn_once(f"uninstrument:{inst.name}", "could not uninstrument %s: %r", inst.name, exc)


_NESTED_NAMESPACES: Final = frozenset(("remote", "aws"))


def start_call(name: str, namespace: str = "remote") -> Entity:
    """Open the subsegment for one outgoing call (``remote`` or ``aws``); never raises.

    Returns :data:`NOOP` when there is no current entity, when the current entity is
    itself a remote/aws call (a lower-level library under an instrumented one), or
    while instrumentation is suppressed; an unsampled stand-in when not sampled.
    Either way the result has the full :class:`Entity` interface.
    """
    parent = current_entity()
    if parent is None or SUPPRESSED.get():
        return NOOP
    if isinstance(parent, Subsegment) and parent.namespace in _NESTED_NAMESPACES:
        return NOOP
    return open_subsegment(sanitize_name(name), namespace, parent)


def start_request(
    tracer: Tracer | None = None,
    *,
    header: str | bytes | TraceHeader | None = None,
    name: str | None = None,
    host: str | None = None,
    method: str | None = None,
    path: str | None = None,
) -> Segment | UnsampledSegment:
    """Begin the segment for one incoming request (for middleware); never raises.

    ``header`` is the incoming ``X-Amzn-Trace-Id``; ``name`` defaults to the
    tracer's service. Enter the result with ``with``/``async with`` and return
    ``seg.response_header()`` to the caller.
    """
    active = tracer or get_tracer()
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    return active.segment(
        name,
        trace_header=header,
        request=SamplingRequest(
            service=name or active.service, host=host, method=method, path=path
        ),
    )


def current_trace_header() -> str | None:
    """The ``X-Amzn-Trace-Id`` value for a call made from the current entity, or None.

    None outside any trace; ``Sampled=0`` inside an unsampled one (still propagated).
    For libraries that only inject the header without recording a subsegment.
    """
    entity = current_entity()
    return None if entity is None else entity.trace_header()


def url_without_query(url: str) -> str:
    """``url`` without its query string and fragment (they may carry secrets)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.split("?", 1)[0]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
