"""AWS Signature Version 4 for the SDK's HTTP calls, standard library only.

:func:`sign` returns the headers that make a request signed with an access key, as
botocore signs it: the canonical request (method, URI-encoded path, empty query, the
lower-cased signed headers sorted, the body's SHA-256), the string to sign over the
credential scope ``DATE/REGION/SERVICE/aws4_request``, the derived signing key, and
``Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``.
The host, ``x-amz-date``, the security token (when the credentials have one) and every
header handed in are signed. A Fluoroscope server started with ``--access-key`` checks
such a signature (any region and service); so does AWS.

:class:`Credentials` says where a key came from; :func:`credentials_from_env` reads the
variables every AWS SDK reads (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``; Lambda sets all three). Pure functions; thread-safe.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from fluoroscope.sdk import _env

__all__ = ["DEFAULT_REGION", "Credentials", "credentials_from_env", "region_from_env", "sign"]

DEFAULT_REGION: Final = "us-east-1"
_ALGORITHM: Final = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key: its id, its secret and, for temporary keys, the session token."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key=...)"


def credentials_from_env() -> Credentials | None:
    """The key in ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (and
    ``AWS_SESSION_TOKEN``), or None unless both of the first two are set."""
    key, secret = _env.env("AWS_ACCESS_KEY_ID"), _env.env("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        return None
    return Credentials(key, secret, _env.env("AWS_SESSION_TOKEN"))


def region_from_env() -> str:
    """``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else ``us-east-1``."""
    return _env.env("AWS_REGION") or _env.env("AWS_DEFAULT_REGION") or DEFAULT_REGION


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_path(path: str) -> str:
    return urllib.parse.quote(path or "/", safe="/~")


def sign(
    method: str,
    host: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    *,
    region: str,
    service: str,
    now: float | None = None,
) -> dict[str, str]:
    """The headers to send: ``headers`` plus ``Host``, ``X-Amz-Date``, the session token
    if any, and ``Authorization``. ``host`` is what the ``Host`` header carries
    (``name[:port]``, the port left out when it is the scheme's default); ``path`` has
    no query string."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    out = dict(headers)
    out["Host"] = host
    out["X-Amz-Date"] = stamp
    if credentials.session_token:
        out["X-Amz-Security-Token"] = credentials.session_token
    canonical = {name.lower(): " ".join(str(value).split()) for name, value in out.items()}
    names = sorted(canonical)
    signed_headers = ";".join(names)
    request = "\n".join(
        (
            method.upper(),
            _canonical_path(path),
            "",
            "".join(f"{name}:{canonical[name]}\n" for name in names),
            signed_headers,
            hashlib.sha256(body).hexdigest(),
        )
    )
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join((_ALGORITHM, stamp, scope, hashlib.sha256(request.encode()).hexdigest()))
    key = _hmac(f"AWS4{credentials.secret_access_key}".encode(), stamp[:8])
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"{_ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return out
