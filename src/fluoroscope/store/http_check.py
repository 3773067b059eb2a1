"""Start-up checks for a ClickHouse server reached over HTTP (``--store clickhouse://...``).

clickhouse-connect runs a few set-up queries when a client is created. When nothing listens
it fails with a long urllib3 error; when the server is too old for those queries (or for our
schema) it fails with an engine error that does not say why. These helpers turn both into a
:class:`~fluoroscope.model.errors.StoreUnavailable` that names the address, and the found and
required versions. They block (one short HTTP request at most) and are meant for start-up only.
"""

from __future__ import annotations

import base64
import re
import ssl
import urllib.error
import urllib.request
from typing import Final

from fluoroscope.model.errors import StoreUnavailable

__all__ = ["MIN_SERVER_VERSION", "check_version", "parse_version", "probe_version", "setup_failure"]

# The oldest ClickHouse server we accept: 22.8, the first LTS release that has everything the
# schema and the SQL rely on. Each of these is missing from some older release:
# - Map(K, V) columns (the latency histograms): experimental in 21.1-21.7 behind
#   allow_experimental_map_type, generally available from 21.8;
# - sumMap over Map columns and SimpleAggregateFunction(sumMap, Map(...)) (node_stats,
#   edge_stats), which arrived with Map support in the 21.x series;
# - Arrow input and output of Map and LowCardinality columns (insert_arrow, query_arrow), which
#   kept maturing through 21.x and 22.x;
# - {name:Type} query parameters (absent from 18.16: "Unknown setting param_version"), TTL with
#   ttl_only_drop_parts, and query-level SETTINGS on ALTER ... MODIFY TTL.
# It is a floor we claim, not one tested here: the schema is tested on chDB's engine (26.x), the
# clickhouse:// path on a real server only as far as Debian's 18.16 (refused by this check), and
# clickhouse-connect itself documents testing against 25.x releases.
MIN_SERVER_VERSION: Final = (22, 8)

_VERSION: Final = re.compile(r"\d+(?:\.\d+)+")


def parse_version(text: str) -> tuple[int, ...]:
    """The numeric components of a ClickHouse version string ("24.8.4.13" -> (24, 8, 4, 13)).

    Anything after the leading dotted numbers (e.g. "-testing") is ignored; raises ValueError
    when ``text`` does not start with a dotted version.
    """
    match = _VERSION.match(text.strip())
    if match is None:
        raise ValueError(f"not a ClickHouse version: {text!r}")
    return tuple(int(part) for part in match.group(0).split("."))


def _required() -> str:
    return ".".join(str(part) for part in MIN_SERVER_VERSION)


def check_version(found: str, where: str) -> None:
    """Raise StoreUnavailable unless ``found`` (the server's ``version()``) is at least
    :data:`MIN_SERVER_VERSION`; ``where`` (host:port) names the server in the message."""
    try:
        version = parse_version(found)
    except ValueError:
        raise StoreUnavailable(
            f"ClickHouse at {where} reported version {found!r}, which is not a version this "
            f"server understands; Fluoroscope needs ClickHouse {_required()} or newer"
        ) from None
    if version[: len(MIN_SERVER_VERSION)] < MIN_SERVER_VERSION:
        raise StoreUnavailable(
            f"ClickHouse at {where} is version {found.strip()}, too old: Fluoroscope's schema "
            f"needs ClickHouse {_required()} or newer (Map columns, sumMap over Map, {{name:Type}} "
            "query parameters); upgrade the server, or leave out --store to use the embedded store"
        )


def _unreachable_reason(exc: BaseException) -> str | None:
    """The OS-level reason when ``exc`` or anything that caused it is a failure to connect
    (refused, timed out, unknown host, TLS); None when the server answered."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and not isinstance(current, urllib.error.HTTPError):
            return current.strerror or str(current) or type(current).__name__
        current = current.__cause__ or current.__context__
    return None


def probe_version(
    host: str, port: int, *, secure: bool, username: str, password: str, timeout: float = 5.0
) -> str | None:
    """Ask the server for ``SELECT version()`` with the standard library alone (no proxy).

    Returns the version text, or None when the answer is not a version (an error, an
    authentication failure, not ClickHouse). Raises OSError when nothing answers.
    """
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    url = f"{'https' if secure else 'http'}://{netloc}/?query=SELECT%20version()"
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if secure:
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context()))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            text = response.read(200).decode("utf-8", "replace").strip()
    except urllib.error.HTTPError as exc:
        exc.close()
        return None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, OSError):
            raise exc.reason from exc
        raise OSError(str(exc.reason)) from exc
    return text if _VERSION.fullmatch(text) else None


def setup_failure(
    exc: BaseException, host: str, port: int, *, secure: bool, username: str, password: str
) -> StoreUnavailable:
    """The StoreUnavailable to raise when creating a clickhouse-connect client failed with ``exc``.

    Nothing listening -> "cannot reach ClickHouse at host:port (reason)". A server that answers
    is asked its version: too old -> the version refusal of :func:`check_version`; otherwise the
    original error, prefixed with the address.
    """
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    reason = _unreachable_reason(exc)
    if reason is not None:
        return StoreUnavailable(
            f"cannot reach ClickHouse at {where} ({reason}): is a ClickHouse server listening "
            "there on its HTTP port?"
        )
    try:
        found = probe_version(host, port, secure=secure, username=username, password=password)
    except OSError as probe_error:
        found = None
        detail = f"{exc} (then: {probe_error})"
    else:
        detail = str(exc)
    if found is not None:
        try:
            check_version(found, where)
        except StoreUnavailable as refusal:
            return refusal
    return StoreUnavailable(
        f"ClickHouse at {where} answered, but the connection could not be set up: {detail.strip()}"
    )
