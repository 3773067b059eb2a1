"""Forwarding batches to the server: ``Forwarder.forward(batch) -> Result``.

:class:`HttpForwarder` sends a batch as one PutTraceSegments call (``POST
{server}/TraceSegments``, body ``{"TraceSegmentDocuments": [...]}``) over a keep-alive
connection pool (httpx), and every request through :class:`Credentials`: a bearer token
when one is configured, else a SigV4 signature (botocore's signer, service ``xray``) when
AWS credentials are, else unsigned.

How outcomes map to a :class:`Result`:

- 200: ``accepted`` = the documents the server took; those it listed in
  ``UnprocessedTraceSegments`` are in ``rejected`` by error code (never retried).
- no connection, a timeout, 429, 502, 503, 504: retryable and ``unreachable`` (the server
  is away or busy: keep waiting, however long).
- any other 5xx: retryable, not ``unreachable`` (the caller bounds how often it tries:
  a batch the server keeps failing on must not block the rest).
- any other answer (400, 401, 403, 404, ...): fatal; the batch cannot succeed as it is.

:func:`backoff` gives the pause before a retry: exponential, capped, with jitter.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import httpx
import orjson

__all__ = ["Credentials", "Forwarder", "HttpForwarder", "Result", "backoff"]

_UNREACHABLE_STATUSES: Final = frozenset((429, 502, 503, 504))
USER_AGENT: Final = "fluoroscope-daemon"


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of forwarding one batch.

    ``retryable`` False and ``reason`` empty: done (``accepted`` + the sum of
    ``rejected`` = the batch's size). ``retryable`` True: nothing was taken, try again
    later; ``unreachable`` says the server is away or busy rather than failing on this
    batch. ``retryable`` False with a ``reason``: fatal, the batch is to be dropped.
    """

    accepted: int = 0
    rejected: Mapping[str, int] = field(default_factory=dict)
    retryable: bool = False
    unreachable: bool = False
    reason: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.retryable and not self.reason


class Forwarder(Protocol):
    """Sends batches of segment documents on.

    ``forward`` is a coroutine called from the daemon's event loop, possibly several at
    once; it never raises (apart from cancellation) and never keeps ``batch``.
    ``aclose`` ends it; no call may follow.
    """

    async def forward(self, batch: Sequence[bytes]) -> Result: ...

    async def aclose(self) -> None: ...


def backoff(attempt: int, base: float = 0.1, cap: float = 2.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): exponential from
    ``base``, at most ``cap``, with jitter (uniform in the upper half)."""
    ceiling = min(cap, base * (2 ** min(attempt - 1, 30)))
    return random.uniform(ceiling / 2, ceiling)


class Credentials:
    """How requests to the server are authenticated: ``token`` (bearer) if given, else
    SigV4 with ``access_key``/``secret_key`` (and ``session_token``) for ``region``,
    else nothing. :meth:`headers` is pure apart from the signature's clock."""

    def __init__(
        self,
        *,
        token: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.token = token or None
        self._signer: Any = None
        if not self.token and access_key and secret_key:
            from botocore.auth import SigV4Auth
            from botocore.credentials import Credentials as AwsCredentials

            aws = AwsCredentials(access_key, secret_key, session_token or None)
            self._signer = SigV4Auth(aws, "xray", region)

    @property
    def kind(self) -> str:
        """``bearer``, ``sigv4`` or ``none``."""
        return "bearer" if self.token else "sigv4" if self._signer is not None else "none"

    def headers(
        self, method: str, url: str, body: bytes, headers: Mapping[str, str]
    ) -> dict[str, str]:
        """``headers`` plus what authenticates a request of ``method`` to ``url`` with
        ``body``."""
        out = dict(headers)
        if self.token:
            out["Authorization"] = f"Bearer {self.token}"
        elif self._signer is not None:
            from botocore.awsrequest import AWSRequest

            request = AWSRequest(method=method, url=url, data=body, headers=out)
            self._signer.add_auth(request)
            out = dict(request.headers.items())
        return out


class HttpForwarder:
    """PutTraceSegments to ``server`` (``http(s)://host:port``, maybe with a path
    prefix) over one httpx connection pool of ``connections`` keep-alive connections.
    ``timeout`` bounds each request. See the module docstring for the outcomes."""

    def __init__(
        self,
        server: str,
        credentials: Credentials | None = None,
        *,
        timeout: float = 30.0,
        connections: int = 8,
    ) -> None:
        self.server = server.rstrip("/")
        self.credentials = credentials or Credentials()
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            limits=httpx.Limits(
                max_connections=connections + 2, max_keepalive_connections=connections + 2
            ),
            trust_env=False,
        )

    async def request(
        self, path: str, body: bytes, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """POST ``body`` to ``path`` on the server, authenticated; raises httpx errors."""
        url = f"{self.server}{path}"
        sent = self.credentials.headers(
            "POST",
            url,
            body,
            {"Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
        )
        return await self.client.post(url, content=body, headers=sent)

    async def forward(self, batch: Sequence[bytes]) -> Result:
        body = orjson.dumps(
            {"TraceSegmentDocuments": [doc.decode("utf-8", "replace") for doc in batch]}
        )
        try:
            response = await self.request("/TraceSegments", body)
        except httpx.TimeoutException as exc:
            return Result(retryable=True, unreachable=True, reason="timeout", detail=str(exc))
        except httpx.HTTPError as exc:  # connection refused or reset, protocol errors
            return Result(retryable=True, unreachable=True, reason="connection", detail=str(exc))
        except (OSError, ValueError) as exc:  # e.g. an address that does not resolve
            return Result(retryable=True, reason="error", detail=repr(exc))
        status = response.status_code
        if status == 200:
            try:
                unprocessed = orjson.loads(response.content).get("UnprocessedTraceSegments", [])
                rejected = Counter(
                    str(item.get("ErrorCode") or "Unknown") if isinstance(item, dict) else "Unknown"
                    for item in unprocessed
                )
            except (orjson.JSONDecodeError, AttributeError):
                return Result(reason="bad_answer", detail=response.text[:200])
            taken = max(0, len(batch) - sum(rejected.values()))
            return Result(accepted=taken, rejected=dict(rejected))
        detail = f"HTTP {status}: {response.text[:200]}"
        if status in _UNREACHABLE_STATUSES:
            return Result(retryable=True, unreachable=True, reason=f"http_{status}", detail=detail)
        if status >= 500:
            return Result(retryable=True, reason=f"http_{status}", detail=detail)
        return Result(reason=f"http_{status}", detail=detail)

    async def aclose(self) -> None:
        await self.client.aclose()
