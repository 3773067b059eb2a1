"""The CloudWatch Logs JSON 1.1 protocol (logs.md §1) over one keep-alive HTTP connection.

:class:`LogsClient` is what :class:`~fluoroscope.sdk.LogsHandler`'s sender thread talks
through: ``POST <endpoint>/`` with ``X-Amz-Target: Logs_20140328.<Operation>`` and
``Content-Type: application/x-amz-json-1.1``, and either an ``Authorization: Bearer`` token
or an AWS Signature Version 4 made with an access key (:mod:`fluoroscope.sdk._sigv4`, signed
afresh for every request); standard library only (``http.client``).

Contract: :meth:`LogsClient.call` never raises; it returns a :class:`Reply` that says
whether the call succeeded, the error code the server named (``__type`` with anything
before ``#`` and after ``:`` removed, as botocore reads it), and whether trying again
later may help (no HTTP answer, 5xx, 429, throttling). One client is used by one thread
at a time; it reconnects by itself after any failure.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from fluoroscope.sdk._errors import ConfigurationError
from fluoroscope.sdk._serialize import _backend
from fluoroscope.sdk._sigv4 import DEFAULT_REGION, Credentials, sign

if TYPE_CHECKING:
    import http.client

__all__ = ["TARGET_PREFIX", "Endpoint", "LogsClient", "Reply", "parse_endpoint"]

TARGET_PREFIX: Final = "Logs_20140328."
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
CONTENT_TYPE: Final = "application/x-amz-json-1.1"
_RETRYABLE_CODES: Final = frozenset(
    (
        "ThrottlingException",
        "ServiceUnavailableException",
        "LimitExceededException",
        "OperationAbortedException",
    )
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A parsed server address: scheme, host, port and the path requests go to."""

    scheme: str
    host: str
    port: int
    path: str

    @property
    def _host(self) -> str:
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self._host}:{self.port}{self.path.rstrip('/')}"

    @property
    def authority(self) -> str:
        """The ``Host`` header's value: the host, and the port unless the scheme's own."""
        default = _DEFAULT_PORTS[self.scheme]
        return self._host if self.port == default else f"{self._host}:{self.port}"


def parse_endpoint(value: str) -> Endpoint:
    """``http(s)://HOST[:PORT][/prefix]`` or bare ``HOST:PORT`` (meaning http).

    Raises :class:`ConfigurationError` for anything else.
    """
    text = value.strip() if isinstance(value, str) else ""
    if text and "://" not in text:
        text = f"http://{text}"
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or any(c.isspace() for c in text)
    ):
        raise ConfigurationError(f"logs endpoint {value!r}: expected http://HOST:PORT")
    scheme = parts.scheme.lower()
    default_port = _DEFAULT_PORTS[scheme]
    path = (parts.path or "").rstrip("/") + "/"
    return Endpoint(scheme, parts.hostname, port or default_port, path)


@dataclass(frozen=True, slots=True)
class Reply:
    """The outcome of one call: ``ok`` with the decoded ``body``, or an error."""

    ok: bool
    status: int  # 0: no HTTP answer at all
    code: str = ""
    message: str = ""
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def retryable(self) -> bool:
        """True when the same call may succeed later (no answer, 5xx, 429, throttling)."""
        if self.ok:
            return False
        return (
            self.status == 0
            or self.status >= 500
            or self.status == 429
            or self.code in _RETRYABLE_CODES
        )

    def describe(self) -> str:
        """A one-line account of a failure, for the SDK's log."""
        if self.status == 0:
            return f"no answer ({self.message})"
        return f"HTTP {self.status} {self.code}: {self.message}".rstrip(": ")


def _error_reply(status: int, raw: bytes) -> Reply:
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        code = str(payload.get("__type") or payload.get("code") or "")
        code = code.rpartition("#")[2].partition(":")[0]
        message = payload.get("message", payload.get("Message", ""))
        return Reply(False, status, code or f"HTTP{status}", str(message or ""))
    text = raw[:200].decode("utf-8", "replace").strip()
    return Reply(False, status, f"HTTP{status}", text)


class LogsClient:
    """A JSON 1.1 caller of one server over a kept-alive connection (one thread at a time).

    ``token`` goes as ``Authorization: Bearer``; otherwise ``credentials`` sign each
    request (SigV4, service ``logs``, ``region``); with neither, requests go unsigned.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        token: str | None = None,
        credentials: Credentials | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.endpoint = endpoint
        self._credentials = None if token else credentials
        self._region = region
        self._headers = {
            "Content-Type": CONTENT_TYPE,
            "Accept": "application/json",
            "User-Agent": "fluoroscope-sdk-logs",
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._conn: http.client.HTTPConnection | None = None

    def call(self, operation: str, body: dict[str, Any], timeout: float) -> Reply:
        """POST ``body`` as operation ``operation``, waiting at most ``timeout`` seconds
        for each of connect, send and receive. Never raises."""
        import http.client  # here, not at import: it imports ssl, which is slow to load

        try:
            data = _backend()(body)
        except Exception:
            try:
                data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            except (TypeError, ValueError) as exc:
                return Reply(False, 400, "SerializationException", str(exc))
        unsigned = dict(self._headers)
        unsigned["X-Amz-Target"] = TARGET_PREFIX + operation
        headers = unsigned
        for attempt in (0, 1):
            reused = self._conn is not None
            if self._credentials is not None:  # signed now: the signature holds its time
                headers = sign(
                    "POST",
                    self.endpoint.authority,
                    self.endpoint.path,
                    unsigned,
                    data,
                    self._credentials,
                    region=self._region,
                    service="logs",
                )
            try:
                conn = self._connection(timeout)
                conn.request("POST", self.endpoint.path, data, headers)
                response = conn.getresponse()
                raw = response.read()
                status = response.status
                if response.will_close:
                    self.close()
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.close()
                stale = isinstance(
                    exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                )
                if attempt == 0 and reused and stale:
                    continue  # the server closed an idle kept-alive connection: once more
                return Reply(False, 0, type(exc).__name__, str(exc) or type(exc).__name__)
            if 200 <= status < 300:
                try:
                    value = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    value = None
                if not isinstance(value, dict):
                    return Reply(False, status, "InvalidReply", "the reply is not a JSON object")
                return Reply(True, status, body=value)
            return _error_reply(status, raw)
        return Reply(False, 0, "ConnectionError", "the connection failed twice")  # pragma: no cover

    def close(self) -> None:
        """Drop the connection (the next call opens a new one). Never raises."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        import http.client

        conn = self._conn
        if conn is None:
            if self.endpoint.scheme == "https":
                import ssl

                conn = http.client.HTTPSConnection(
                    self.endpoint.host,
                    self.endpoint.port,
                    timeout=timeout,
                    context=ssl.create_default_context(),
                )
            else:
                conn = http.client.HTTPConnection(
                    self.endpoint.host, self.endpoint.port, timeout=timeout
                )
            self._conn = conn
        else:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
        return conn
