"""What every outgoing-call instrumentation shares: one :class:`Call` per request.

The HTTP-client and AWS-SDK instrumentations (``requests``, ``httpx``, ``urllib3``,
``http.client``, ``aiohttp``, ``botocore``) all follow the same steps::

    call = begin(host, "remote", what="trace an HTTP call")
    if call is None:                       # not ours to trace: call through untouched
        return original(...)
    for name, value in call.headers():     # X-Amzn-Trace-Id (+ traceparent if enabled)
        request_headers[name] = value
    call.request(method, url_without_query(url))
    with call:                             # the subsegment is current; nested libs pass
        response = original(...)
        call.response(status, content_length)

Decisions (documented here once for all of them):

* **One subsegment per logical call.** While a call is in flight, :data:`ACTIVE` is
  set in the context, and every other instrumented layer underneath (``requests`` →
  ``urllib3`` → ``http.client``; ``botocore`` → ``urllib3``) calls straight through.
* **No segment** → the ``context_missing`` policy of the global tracer (or of
  ``AWS_XRAY_CONTEXT_MISSING`` when no global tracer was set): ``log`` (once, the
  default), ``ignore``, or ``raise`` (:class:`~fluoroscope.sdk.ContextMissingError`
  from the call, before anything is sent). Nothing is injected.
* **Unsampled** → the header is still injected (``Sampled=0``) and nothing is emitted.
* **Inside a remote/aws subsegment the application opened itself** → the header
  names that subsegment as the parent; no second subsegment is made.
* **URLs** are recorded without query string and fragment (they often carry
  secrets), as aws-xray-sdk does.
* **The SDK's own I/O** (under :func:`~fluoroscope.sdk.instrument.suppress_instrumentation`)
  and the X-Ray API (paths ``/GetSamplingRules``, ``/SamplingTargets``,
  ``/TraceSegments``, ``/TelemetryRecords``; more with :func:`add_ignored`) are never
  traced and get no header.
* **W3C** ``traceparent`` is injected next to ``X-Amzn-Trace-Id`` only after
  :func:`set_traceparent(True) <set_traceparent>`.

Everything here runs on application threads, never blocks, and never raises except
the ``raise`` policy's :class:`~fluoroscope.sdk.ContextMissingError`.
"""

from __future__ import annotations

import contextvars
import fnmatch
import importlib.util
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

from fluoroscope.model.trace_header import HEADER_NAME, TRACEPARENT_HEADER_NAME
from fluoroscope.sdk import _env
from fluoroscope.sdk._context import CURRENT, SUPPRESSED
from fluoroscope.sdk._entities import Entity, Subsegment, sanitize_name
from fluoroscope.sdk._errors import ContextMissingError
from fluoroscope.sdk._inert import NOOP
from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk._tracer import open_subsegment
from fluoroscope.sdk.instrument._patch import Patch

__all__ = [
    "ACTIVE",
    "Call",
    "PatchingInstrumentor",
    "add_ignored",
    "begin",
    "clear_ignored",
    "content_length",
    "is_ignored",
    "pass_through",
    "set_traceparent",
]

ACTIVE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "fluoroscope_outgoing_call", default=False
)
"""True while an instrumented outgoing call runs; lower layers then call through."""

XRAY_API_PATHS: Final = (
    "/GetSamplingRules",
    "/SamplingTargets",
    "/TraceSegments",
    "/TelemetryRecords",
)
_NESTED_NAMESPACES: Final = frozenset(("remote", "aws"))

_settings_lock = threading.Lock()
_traceparent = [False]
_ignored: list[tuple[str | None, str | None]] = []


def set_traceparent(enabled: bool) -> None:
    """Also inject a W3C ``traceparent`` header into outgoing calls (default off)."""
    _traceparent[0] = bool(enabled)


def add_ignored(hostname: str | None = None, path: str | None = None) -> None:
    """Never trace calls to ``hostname`` and/or ``path`` (``fnmatch`` patterns).

    Like aws-xray-sdk's ``httplib.add_ignored``: with both given, both must match.
    """
    if hostname is None and path is None:
        return
    with _settings_lock:
        _ignored.append((hostname, path))


def clear_ignored() -> None:
    """Forget the patterns given to :func:`add_ignored` (the X-Ray API stays ignored)."""
    with _settings_lock:
        _ignored.clear()


def is_ignored(host: str | None, path: str | None) -> bool:
    """True for the X-Ray API and for the patterns given to :func:`add_ignored`."""
    if path:
        for api in XRAY_API_PATHS:
            if path.startswith(api):
                return True
    for host_pattern, path_pattern in _ignored:
        if host_pattern is not None and not fnmatch.fnmatchcase(host or "", host_pattern):
            continue
        if path_pattern is not None and not fnmatch.fnmatchcase(path or "", path_pattern):
            continue
        return True
    return False


class Call:
    """One outgoing call: the entity that records it and the headers to send.

    ``owned`` is True when this call opened a (sampled) subsegment of its own, which
    ``with call:`` makes current and closes (recording an exception that escapes as
    its ``cause``, ``fault: true``). Otherwise the entity is only used for the header.
    Used by one thread or task at a time, entered at most once.
    """

    __slots__ = ("_failed", "_token", "entity", "owned")

    def __init__(self, entity: Entity, owned: bool) -> None:
        self.entity = entity
        self.owned = owned
        self._token: contextvars.Token[bool] | None = None
        self._failed: BaseException | None = None

    def headers(self) -> list[tuple[str, str]]:
        """The propagation headers for this call (empty when there is nothing to send)."""
        header = self.entity.trace_header()
        if header is None:
            return []
        out = [(HEADER_NAME, header)]
        if _traceparent[0]:
            parent = self.entity.traceparent()
            if parent is not None:
                out.append((TRACEPARENT_HEADER_NAME, parent))
        return out

    def request(self, method: str | None, url: str | None) -> None:
        """Record ``http.request`` (``url`` already stripped of its query)."""
        if self.owned:
            self.entity.set_http_request(method=method, url=url)

    def response(self, status: int | None, content_length: int | None = None) -> None:
        """Record ``http.response``; the status sets error/throttle/fault."""
        if self.owned:
            self.entity.set_http_response(status=status, content_length=content_length)

    def fail(self, exc: BaseException, *, remote: bool = False) -> None:
        """Record ``exc`` as the cause (``remote``: the callee returned it).

        Under ``with``, an exception recorded here is not recorded again on exit.
        """
        if self.owned:
            self._failed = exc
            self.entity.add_exception(exc, remote=remote)

    def close(self) -> None:
        """End the call (for calls not run under ``with``); idempotent."""
        if self.owned:
            self.entity.close()

    def __enter__(self) -> Call:
        self._token = ACTIVE.set(True)
        if self.owned:
            self.entity.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                ACTIVE.reset(token)
            except ValueError:  # exited in another context than entered
                ACTIVE.set(False)
        if self.owned:
            if exc is not None and exc is self._failed:
                self.entity.__exit__(None, None, None)
            else:
                self.entity.__exit__(exc_type, exc, tb)


def pass_through() -> Call:
    """A call that must not be traced at any layer (ignored URLs, X-Ray's own calls).

    It sends no header and records nothing, but marks the call active so the layers
    underneath call straight through too. A new one per call (it holds a token).
    """
    return Call(NOOP, owned=False)


def begin(
    name: str,
    namespace: str = "remote",
    *,
    host: str | None = None,
    path: str | None = None,
    what: str = "trace an outgoing call",
) -> Call | None:
    """Start tracing one outgoing call; None when this layer must just call through.

    None: another instrumented call is in flight in this context (a lower layer),
    instrumentation is suppressed (the SDK's own I/O), or there is no segment (the
    ``context_missing`` policy is applied first, which may raise). A call whose
    ``host``/``path`` is ignored returns a :func:`pass_through` call. Otherwise a
    :class:`Call` whose entity is a new ``namespace`` subsegment named ``name``
    (sampled), or a stand-in that only carries the header (unsampled, or inside
    a remote/aws subsegment the application opened itself).
    """
    if ACTIVE.get() or SUPPRESSED.get():
        return None
    if (path is not None or _ignored) and is_ignored(host, path):
        return pass_through()
    parent = CURRENT.get()
    if parent is None:
        context_missing(what)
        return None
    if isinstance(parent, Subsegment) and parent.namespace in _NESTED_NAMESPACES:
        return Call(parent, owned=False)
    entity = open_subsegment(sanitize_name(name), namespace, parent)
    return Call(entity, owned=entity.sampled)


def context_missing(what: str) -> None:
    """Apply the ``context_missing`` policy: the global tracer's, else the environment's.

    Never creates the global tracer (so a later ``set_tracer`` still works).
    """
    from fluoroscope.sdk._tracer import _global, _policy

    if _global:
        _global[0]._missing(what)
        return
    policy = _policy(_env.env(_env.AWS_XRAY_CONTEXT_MISSING), explicit=False) or "log"
    if policy == "raise":
        raise ContextMissingError(f"cannot {what}: no segment is active in this context")
    if policy == "log":
        warn_once(
            "context-missing",
            "cannot %s: no segment is active in this context (logged once; "
            "set context_missing='ignore' to silence)",
            what,
        )


def content_length(value: object) -> int | None:
    """A ``Content-Length`` header value as an int, or None."""
    if value is None:
        return None
    try:
        length = int(str(value).strip())
    except ValueError:
        return None
    return length if length >= 0 else None


class PatchingInstrumentor:
    """Base of the instrumentors that replace a few attributes of one library.

    Subclasses set ``name`` and ``module`` (the import name) and implement
    :meth:`patches`, which imports the library and lists the :class:`Patch` es.
    ``instrument()`` applies them all (or none: a library whose attributes moved is
    left alone and False returned); ``uninstrument()`` reverts them. Both are
    idempotent and serialized by a lock.
    """

    name: str = ""
    module: str = ""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._applied: list[Patch] | None = None

    def available(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except (ImportError, ValueError):
            return False

    @property
    def instrumented(self) -> bool:
        return self._applied is not None

    def patches(self) -> list[Patch]:
        """Import the library and describe the patches (not applied yet)."""
        raise NotImplementedError

    def instrument(self) -> bool:
        with self._lock:
            if self._applied is not None:
                return True
            patches = self.patches()
            applied: list[Patch] = []
            for patch in patches:
                if not patch.apply():
                    for done in reversed(applied):
                        done.revert()
                    return False
                applied.append(patch)
            self._applied = applied
            self._instrumented()
            return True

    def uninstrument(self) -> None:
        with self._lock:
            if self._applied is None:
                return
            for patch in reversed(self._applied):
                patch.revert()
            self._applied = None
            self._uninstrumented()

    def _instrumented(self) -> None:
        """Hook run after the patches went in (under the lock)."""

    def _uninstrumented(self) -> None:
        """Hook run after the patches came out (under the lock)."""


Wrapper = Callable[[Callable[..., Any]], Callable[..., Any]]
"""Makes the replacement for one original function."""
