"""Access control of the HTTP surface: who may call the API, and from which page.

:class:`AccessControl` is a pure ASGI middleware in front of every HTTP route (the X-Ray
API at the URL root, ``/api/status`` and the console). It applies :class:`AccessPolicy`:

- **Host** (every listener, loopback included): a ``Host`` header must name this server -
  an IP literal (a page can only send one when it is itself served from that address,
  so DNS rebinding cannot produce it), ``localhost``, the listen address's name, the
  machine's host name when listening beyond loopback, or a name allowed explicitly
  (``--allowed-host``; ``*`` turns the check off). The port is not compared. Refused: 403.
- **Origin** (every listener): a request carrying an ``Origin`` header must come from a
  page of this very host (its authority equals the ``Host`` header); ``null`` and every
  other origin are refused with 403. Requests without ``Origin`` (non-browser clients)
  pass.
- **Content type** (every listener): a ``POST`` with a body must declare JSON
  (``application/json``, ``application/x-amz-json-1.0``/``1.1``, ``*/*+json``) or protobuf
  (OTLP); a bodiless one may omit it. A cross-site form can send none of these without a
  CORS preflight, which this server never grants. Refused: 415.
- **Credentials** (when access keys or API keys are configured; then on every address):
  every request but the console's static files (``GET``/``HEAD`` of ``/`` and
  ``/console/...``, which hold no data) must carry either ``Authorization: Bearer TOKEN``
  with a configured API key, or an AWS Signature Version 4 made with a configured access
  key. The signature is recomputed with botocore's own SigV4 code (canonical request,
  string to sign, signing key) over the headers the client signed and the body as
  received, and compared in constant time; ``x-amz-date`` must be within 15 minutes of
  this server's clock, as AWS requires; any region and service in the credential scope
  are accepted (the key is what proves the caller). A signed request's body is read once
  here, at most ``max_body`` bytes (a larger one is refused without being read whole),
  and replayed to the application. Refused: 403 with AWS's error codes
  (``MissingAuthenticationTokenException``, ``IncompleteSignatureException``,
  ``UnrecognizedClientException``, ``InvalidSignatureException``).

Every refusal is counted by reason in :attr:`AccessPolicy.failures` (a ``Counter``:
``missing``, ``malformed``, ``unknown_key``, ``bad_signature``, ``expired``,
``bad_token``, ``foreign_host``, ``foreign_origin``, ``content_type``) and answered in
X-Ray's error shape (``{"__type", "message"}`` and ``x-amzn-ErrorType``); an
oversized signed body is answered 413 and not counted there.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import re
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fluoroscope.server.xray import json_response

__all__ = ["MAX_CLOCK_SKEW_SECONDS", "AccessControl", "AccessPolicy"]

MAX_CLOCK_SKEW_SECONDS: Final = 15 * 60
_HASH_IN_THREAD: Final = 1 << 20
_SIGV4_TIME: Final = "%Y%m%dT%H%M%SZ"
_AUTH_RE: Final = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,"
    r"\s*Signature=([0-9a-fA-F]{64})\s*"
)
_JSON_TYPES: Final = frozenset(
    ("application/json", "application/x-amz-json-1.0", "application/x-amz-json-1.1")
)
_PROTOBUF_TYPES: Final = frozenset(("application/x-protobuf", "application/protobuf"))


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _host_name(authority: str) -> str:
    """The name part of a ``Host`` value (``[::1]:2000`` -> ``[::1]``), lowercased."""
    authority = authority.strip().lower()
    if authority.startswith("["):
        end = authority.find("]")
        return authority[: end + 1] if end > 0 else authority
    return authority.rpartition(":")[0] if authority.count(":") == 1 else authority


@dataclass(slots=True)
class AccessPolicy:
    """What :class:`AccessControl` lets through; see the module docstring.

    ``access_keys`` maps an access key id to its secret; ``api_keys`` are bearer tokens;
    credentials are required as soon as either is non-empty. ``allowed_hosts`` are the
    names (no port, lowercase) a ``Host`` header may carry besides IP literals; ``"*"``
    allows any. ``failures`` counts refusals by reason.
    """

    access_keys: Mapping[str, str] = field(default_factory=dict)
    api_keys: tuple[str, ...] = ()
    allowed_hosts: frozenset[str] = frozenset({"localhost"})
    max_skew_seconds: float = MAX_CLOCK_SKEW_SECONDS
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def requires_credentials(self) -> bool:
        return bool(self.access_keys or self.api_keys)

    @classmethod
    def build(
        cls,
        listen_host: str,
        *,
        wide: bool,
        access_keys: Iterable[tuple[str, str]] = (),
        api_keys: Iterable[str] = (),
        allowed_hosts: Iterable[str] = (),
    ) -> AccessPolicy:
        """The policy of a server listening on ``listen_host``; ``wide`` says it listens
        beyond loopback (then the machine's host name is one of its names too)."""
        names = {"localhost"}
        if listen_host and not _is_ip(listen_host):
            names.add(listen_host.lower())
        if wide:
            names.add(socket.gethostname().lower())
        names.update(_host_name(h) if h != "*" else "*" for h in allowed_hosts)
        return cls(dict(access_keys), tuple(api_keys), frozenset(names))

    def describe(self, *, insecure: bool = False) -> str:
        """What the HTTP listener requires, for the start-up banner; ``insecure`` says
        it listens beyond loopback without credentials (``--insecure-no-auth``)."""
        if not self.requires_credentials:
            if insecure:
                return "OPEN TO ANYONE WHO CAN REACH IT, no credentials (--insecure-no-auth)"
            return "no credentials required (loopback; --access-key/--api-key require them)"
        kinds = []
        if self.access_keys:
            kinds.append(f"SigV4 with {len(self.access_keys)} access key(s)")
        if self.api_keys:
            kinds.append(f"Bearer with {len(self.api_keys)} API key(s)")
        return "credentials required: " + " or ".join(kinds)


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.reason = status, code, message, reason


def _forbidden(code: str, message: str, reason: str) -> _Refused:
    return _Refused(403, code, message, reason)


class _SignedHeadersOnly(SigV4Auth):  # type: ignore[misc]  # botocore is untyped
    """botocore's SigV4 signer, told which headers the client signed (botocore itself
    would pick them by its own rules, which other SDKs need not follow)."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: set[str]):
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        chosen = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed:
                chosen[name.lower()] = value
        return chosen


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class AccessControl:
    """ASGI middleware applying ``policy`` to every HTTP request of ``app``.

    ``max_body`` bounds the body read here to verify a signature; ``clock`` gives the
    time the signature's date is checked against.
    """

    def __init__(
        self,
        app: ASGIApp,
        policy: AccessPolicy,
        max_body: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.policy = policy
        self.max_body = max_body
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            self._check_browser(scope)
            if self.policy.requires_credentials and not self._public(scope):
                receive = await self._authenticate(scope, receive)
        except _Refused as refused:
            if refused.reason:
                self.policy.failures[refused.reason] += 1
            response = json_response(
                {"__type": refused.code, "message": refused.message}, refused.status
            )
            response.headers["x-amzn-ErrorType"] = refused.code
            await response(scope, receive, send)
            return
        except _Disconnected:
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _public(scope: Scope) -> bool:
        path: str = scope["path"]
        return scope["method"] in ("GET", "HEAD") and (path == "/" or path.startswith("/console/"))

    def _check_browser(self, scope: Scope) -> None:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        host = _header(headers, b"host")
        if host is not None:
            name = _host_name(host)
            allowed = self.policy.allowed_hosts
            if not (_is_ip(name) or name in allowed or "*" in allowed):
                raise _forbidden(
                    "AccessDeniedException",
                    f"Host {host[:100]!r} is not a name of this server "
                    "(allow it with --allowed-host)",
                    "foreign_host",
                )
        origin = _header(headers, b"origin")
        if origin is not None:
            authority = urlsplit(origin.strip()).netloc.lower() if "://" in origin else ""
            if not authority or host is None or authority != host.strip().lower():
                raise _forbidden(
                    "AccessDeniedException",
                    f"cross-origin request from {origin[:100]!r} refused",
                    "foreign_origin",
                )
        if scope["method"] == "POST":
            declared = _header(headers, b"content-type")
            if declared is None:
                length = _header(headers, b"content-length")
                chunked = _header(headers, b"transfer-encoding") is not None
                if not chunked and (length is None or length.strip() == "0"):
                    return
                kind = ""
            else:
                kind = declared.partition(";")[0].strip().lower()
            if not (kind in _JSON_TYPES or kind in _PROTOBUF_TYPES or kind.endswith("+json")):
                raise _Refused(
                    415,
                    "UnsupportedMediaTypeException",
                    f"a POST must declare Content-Type: application/json, got {kind or 'none'!r}",
                    "content_type",
                )

    async def _authenticate(self, scope: Scope, receive: Receive) -> Receive:
        """``receive``, or one replaying the body read here; raises _Refused."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        authorization = _header(headers, b"authorization")
        if authorization is None or not authorization.strip():
            raise _forbidden(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token: sign the request with SigV4 or send "
                "Authorization: Bearer API_KEY",
                "missing",
            )
        scheme, _, rest = authorization.strip().partition(" ")
        if scheme.lower() == "bearer":
            token = rest.strip().encode()
            if any(hmac.compare_digest(token, key.encode()) for key in self.policy.api_keys):
                return receive
            raise _forbidden("UnrecognizedClientException", "The API key is not valid", "bad_token")
        if scheme != "AWS4-HMAC-SHA256":
            raise _forbidden(
                "IncompleteSignatureException",
                "Authorization must be AWS4-HMAC-SHA256 ... or Bearer TOKEN",
                "malformed",
            )
        return await self._verify_sigv4(scope, receive, authorization.strip())

    async def _verify_sigv4(self, scope: Scope, receive: Receive, authorization: str) -> Receive:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        match = _AUTH_RE.fullmatch(authorization)
        scope_parts = match.group(1).split("/") if match else []
        if not match or len(scope_parts) != 5 or scope_parts[4] != "aws4_request":
            raise _forbidden(
                "IncompleteSignatureException",
                "Authorization header requires Credential=KEY/DATE/REGION/SERVICE/aws4_request, "
                "SignedHeaders and Signature",
                "malformed",
            )
        key_id, day, region, service, _ = scope_parts
        signed = set(match.group(2).lower().split(";"))
        present = {k.decode("latin-1").lower() for k, _ in headers}
        stamp = _header(headers, b"x-amz-date")
        if not {"host", "x-amz-date"} <= signed or not signed <= present or stamp is None:
            raise _forbidden(
                "IncompleteSignatureException",
                "the signature must cover host and x-amz-date, and every signed header must "
                "be present",
                "malformed",
            )
        try:
            when = datetime.strptime(stamp.strip(), _SIGV4_TIME).replace(tzinfo=UTC).timestamp()
        except ValueError:
            raise _forbidden(
                "IncompleteSignatureException",
                f"X-Amz-Date {stamp[:40]!r} is not YYYYMMDDTHHMMSSZ",
                "malformed",
            ) from None
        secret = self.policy.access_keys.get(key_id)
        if secret is None:
            raise _forbidden(
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
                "unknown_key",
            )
        now = self.clock()
        if abs(now - when) > self.policy.max_skew_seconds:
            minutes = self.policy.max_skew_seconds / 60
            raise _forbidden(
                "InvalidSignatureException",
                f"Signature expired: {stamp.strip()} is not within {minutes:g} min. of "
                f"{datetime.fromtimestamp(now, UTC).strftime(_SIGV4_TIME)}",
                "expired",
            )
        body = await self._read_body(scope, receive)
        if len(body) > _HASH_IN_THREAD:  # hashing 16 MiB takes ~30 ms: not on the loop
            digest = await asyncio.to_thread(lambda: hashlib.sha256(body).hexdigest())
        else:
            digest = hashlib.sha256(body).hexdigest()
        declared_hash = _header(headers, b"x-amz-content-sha256")
        if declared_hash is not None and not hmac.compare_digest(
            declared_hash.strip().lower().encode(), digest.encode()
        ):
            raise _forbidden(
                "InvalidSignatureException",
                "X-Amz-Content-SHA256 does not match the body (unsigned payloads are refused)",
                "bad_signature",
            )
        query = scope.get("query_string", b"").decode("latin-1")
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        host = _header(headers, b"host") or ""
        request = AWSRequest(
            method=scope["method"], url=f"http://{host}{raw_path}" + (f"?{query}" if query else "")
        )
        for name, value in headers:
            request.headers[name.decode("latin-1")] = value.decode("latin-1")
        if declared_hash is None:  # botocore takes the payload hash from here when present
            request.headers["X-Amz-Content-SHA256"] = digest
        request.context["timestamp"] = stamp.strip()
        signer = _SignedHeadersOnly(Credentials(key_id, secret), service, region, signed)
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        if day != stamp.strip()[:8] or not hmac.compare_digest(
            expected.encode(), match.group(3).lower().encode()
        ):
            raise _forbidden(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method.",
                "bad_signature",
            )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope["headers"], b"content-length")
        limit = self.max_body
        if declared and declared.strip().isdigit() and int(declared) > limit:
            raise _Refused(
                413,
                "InvalidRequestException",
                f"request body of {declared.strip()} bytes exceeds the {limit}-byte limit",
                "",
            )
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Refused(
                    413,
                    "InvalidRequestException",
                    f"request body exceeds the {limit}-byte limit",
                    "",
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


class _Disconnected(Exception):
    """The client went away while its body was being read."""
