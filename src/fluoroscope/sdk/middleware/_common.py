"""What the WSGI and ASGI middlewares share: naming, the request fields, the start.

Each middleware extracts the same few strings from its request (the header, scheme,
host, method, path, query, user agent, ``X-Forwarded-For``, peer address) and hands
them to :func:`begin`, which starts the segment (the header or the sampler decides)
and, when it is sampled, records ``http.request`` (reference: xray-protocol §2.4).

Everything here runs on the request path, is cheap, and never raises: a failure to
start tracing is logged once and the request goes on untraced.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from fluoroscope.sdk._entities import Segment
from fluoroscope.sdk._inert import UnsampledSegment
from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk._tracer import Tracer, get_tracer
from fluoroscope.sdk.instrument import start_request

__all__ = [
    "ENVIRON_KEY",
    "RequestNaming",
    "begin",
    "client_address",
    "content_length",
    "host_with_port",
    "request_url",
]

ENVIRON_KEY: Final = "fluoroscope.segment"
"""Where the request's segment is kept: the key in the WSGI ``environ`` and the ASGI ``scope``.

Its presence also tells a second tracing middleware that the request is already traced."""

_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}


class RequestNaming:
    """Chooses each request segment's name.

    ``name`` is the fixed name (default: the tracer's service). With ``dynamic_naming``
    (a pattern of ``*`` and ``?``, case-insensitive, e.g. ``"*.example.com"``), a
    request whose ``Host`` header matches is named after that host instead, like
    aws-xray-sdk's ``dynamic_naming``. Immutable, thread-safe.
    """

    __slots__ = ("_match", "name")

    def __init__(self, name: str | None = None, dynamic_naming: str | None = None) -> None:
        self.name = name
        self._match: Callable[[str], bool] | None = (
            _wildcard(dynamic_naming) if dynamic_naming else None
        )

    def __call__(self, host: str | None) -> str | None:
        """The segment name for a request to ``host`` (None: the tracer's service)."""
        if host and self._match is not None and self._match(host):
            return host
        return self.name


def _wildcard(pattern: str) -> Callable[[str], bool]:
    """A case-insensitive matcher for ``pattern`` (``*``: any run, ``?``: one character)."""
    regex = re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
        re.IGNORECASE | re.DOTALL,
    )
    return lambda value: regex.fullmatch(value) is not None


def request_url(
    scheme: str, host: str | None, path: str, query: str | None, *, include_query: bool
) -> str:
    """``scheme://host/path`` (plus ``?query`` only when ``include_query``)."""
    url = f"{scheme}://{host or 'localhost'}{path or '/'}"
    if include_query and query:
        url += "?" + query
    return url


def host_with_port(host: str | None, scheme: str, port: object) -> str | None:
    """A ``host[:port]`` from a server name and port, omitting the scheme's default port."""
    if not host:
        return None
    port_text = str(port) if port is not None else ""
    if not port_text or _DEFAULT_PORTS.get(scheme) == port_text:
        return host
    return f"{host}:{port_text}"


def client_address(forwarded_for: str | None, remote_addr: str | None) -> tuple[str | None, bool]:
    """The client's address and whether it came from ``X-Forwarded-For`` (its first entry)."""
    if forwarded_for:
        first = forwarded_for.split(",", 1)[0].strip()
        if first:
            return first, True
    return remote_addr or None, False


def begin(
    tracer: Tracer | None,
    naming: RequestNaming,
    *,
    header: str | None,
    scheme: str,
    host: str | None,
    method: str,
    path: str,
    query: str | None,
    user_agent: str | None,
    forwarded_for: str | None,
    remote_addr: str | None,
    include_query: bool,
) -> Segment | UnsampledSegment | None:
    """Start the segment for one request and record ``http.request`` if it is sampled.

    ``header`` decides sampling when it says ``Sampled=1`` or ``0``; otherwise the
    tracer's sampler does, given host, method and path. Returns None (and logs once)
    only when tracing could not start at all; the caller then serves the request
    untraced. The segment is not made current here.
    """
    try:
        active = tracer if tracer is not None else get_tracer()
        if not active.enabled:
            return None
        seg = start_request(
            active, header=header, name=naming(host), host=host, method=method, path=path
        )
        if seg.sampled:
            client_ip, forwarded = client_address(forwarded_for, remote_addr)
            seg.set_http_request(
                method=method,
                url=request_url(scheme, host, path, query, include_query=include_query),
                user_agent=user_agent or None,
                client_ip=client_ip,
                x_forwarded_for=True if forwarded else None,
            )
        return seg
    except Exception as exc:  # tracing must never break the request
        warn_once("middleware-begin", "could not start the request segment: %r", exc)
        return None


def content_length(value: str | bytes | None) -> int | None:
    """A ``Content-Length`` header value as an int, or None when absent or not a number."""
    if value is None:
        return None
    try:
        length = int(value)
    except ValueError:
        return None
    return length if length >= 0 else None
