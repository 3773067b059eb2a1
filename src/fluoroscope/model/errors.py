"""The project's exception tree; every error the project raises derives from one root.

::

    FluoroscopeError
    ├── InvalidDocument        a segment document breaks the schema (carries the offending id)
    ├── InvalidRequest         an API request is malformed or out of range
    │   ├── ResourceNotFound   a named resource (group, rule, ...) does not exist
    │   └── ApiError           refused with one of X-Ray's other named errors (code, status)
    ├── Throttled              a bounded queue is full; the caller may retry later
    ├── StoreError             the store failed to execute a statement
    │   ├── StoreUnavailable   the store cannot be reached or opened
    │   └── StoreUnwritable    the store's disk is full or read-only; retry later
    └── (in fluoroscope.sdk._errors, for the SDK's own callers)
        └── TracingError
            ├── ContextMissingError     no current segment and context_missing="raise"
            └── ConfigurationError      (also a ValueError)
                └── SamplingRulesError  a sampling rules file that cannot be used

Validation never uses ``assert``; it raises one of these with a message that says
what was wrong and where.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "FluoroscopeError",
    "InvalidDocument",
    "InvalidRequest",
    "ResourceNotFound",
    "StoreError",
    "StoreUnavailable",
    "StoreUnwritable",
    "Throttled",
]


class FluoroscopeError(Exception):
    """Root of every exception raised by Fluoroscope."""


class InvalidDocument(FluoroscopeError):
    """A segment document was rejected.

    ``doc_id`` is the document's ``id`` when one could be read (else ``""``), and
    ``code`` a short machine-readable reason used as ``ErrorCode`` in
    ``UnprocessedTraceSegments``.
    """

    def __init__(self, message: str, *, doc_id: str = "", code: str = "InvalidDocument") -> None:
        super().__init__(message)
        self.doc_id = doc_id
        self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidRequest(FluoroscopeError):
    """An API request was malformed; maps to X-Ray's ``InvalidRequestException``."""


class ResourceNotFound(InvalidRequest):
    """A named resource does not exist; maps to ``ResourceNotFoundException``."""


class ApiError(InvalidRequest):
    """A request refused with one of X-Ray's named errors other than
    ``InvalidRequestException`` (``RuleLimitExceededException``,
    ``TooManyTagsException``, the resource-policy errors, ...): ``code`` is the error's
    name, ``status`` its HTTP status."""

    def __init__(self, message: str, *, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class Throttled(FluoroscopeError):
    """A bounded buffer is full; maps to ``ThrottledException`` (HTTP 429, retryable)."""


class StoreError(FluoroscopeError):
    """The store failed to execute a statement."""


class StoreUnavailable(StoreError):
    """The store cannot be opened or reached."""


class StoreUnwritable(StoreError):
    """The store refuses writes for now: its disk is full, or it is read-only. Reads
    still work, and writes succeed again once the cause is gone, without a restart;
    maps to ``ServiceUnavailable`` (HTTP 503, retryable).

    ``reason`` is ``"disk full"`` or ``"read-only"``."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
