"""LogsHandler: a ``logging.Handler`` that ships records to a server's CloudWatch Logs API.

::

    import logging
    from fluoroscope.sdk import LogsHandler

    logging.getLogger().addHandler(LogsHandler())   # http://127.0.0.1:2000 by default

Each record becomes one log event (see :mod:`fluoroscope.sdk._logs_format`: a JSON line
carrying ``xray_trace_id`` and ``xray_segment_id``, the current trace and entity ids)
in log group ``<service>`` and log stream ``<host name>`` by default, created on first
use (``CreateLogGroup`` / ``CreateLogStream``, an existing one is fine), then sent with
``PutLogEvents`` by a background thread.

Contract (DESIGN §6, as for emitters):

* ``emit`` (called by ``logging`` on the application's thread) formats the record, stamps
  it with the ids of the current context, appends it to a bounded queue and returns: it
  never waits for the network and never raises. A record that does not fit the queue
  (``max_queue`` events or ``max_queue_bytes`` bytes) is dropped and counted.
* The sender thread (started on the first record) wakes every ``send_interval`` seconds,
  or as soon as a full batch is waiting, and sends batches within PutLogEvents' limits
  (logs.md §3.1): at most ``max_batch_count`` (≤ 10,000) events and ``max_batch_bytes``
  (≤ 1,048,576) bytes counting 26 bytes per event, sorted by timestamp, spanning at most
  24 hours. An event longer than a batch allows is shortened (counted as ``truncated``).
* A batch the server does not answer (or answers 5xx / throttling) is tried ``retries``
  more times with a growing pause, then dropped and counted as ``unreachable``; a batch
  the server refuses (4xx, e.g. a missing credential) is dropped as ``rejected``; events
  the server lists in ``rejectedLogEventsInfo`` are counted as ``too_old`` / ``too_new`` /
  ``expired``. A deleted group or stream is created again, once per batch.
* :meth:`LogsHandler.flush` sends what is queued and waits at most ``timeout`` seconds
  (True: all of it settled, and nothing dropped since the previous flush);
  :meth:`LogsHandler.close` flushes within its ``timeout`` and drops (counting ``closed``)
  whatever is still queued then, and every record emitted after it. Both never raise.
* :meth:`LogsHandler.stats` has the counters: events ``sent``, ``batches``, ``queued``,
  ``dropped`` (total) and ``dropped_<reason>`` for each of :data:`DROP_REASONS`,
  ``truncated``. The first drop of each reason is also logged once on the SDK's logger.
* Records logged by the sender thread itself (the SDK's own warnings) are never shipped,
  and the sender's HTTP calls are never traced.

Credentials: ``token`` (or ``FLUOROSCOPE_LOGS_TOKEN``) is sent as ``Authorization:
Bearer``, what a server started with ``--api-key`` accepts. Without a token, requests are
signed with AWS Signature Version 4 when there is an access key: ``credentials=(ID,
SECRET[, SESSION_TOKEN])``, else ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN`` as every AWS SDK reads them (Lambda sets them), for ``region`` (else
``AWS_REGION``, ``AWS_DEFAULT_REGION``, ``us-east-1``) — what a server started with
``--access-key`` accepts (signed as botocore signs). A refused credential drops the
batch as ``rejected``.
In AWS Lambda the thread is frozen between invocations: ``@lambda_handler`` and
``fluoroscope.sdk.flush()`` flush every open handler (:func:`flush_handlers`).
"""

from __future__ import annotations

import collections
import logging
import os
import re
import socket
import threading
import time
import weakref
from typing import Any, Final

from fluoroscope.sdk import _env
from fluoroscope.sdk._context import suppress_instrumentation
from fluoroscope.sdk._emitters import DEFAULT_DAEMON_ADDRESS, parse_daemon_address
from fluoroscope.sdk._errors import ConfigurationError
from fluoroscope.sdk._log import warn_once
from fluoroscope.sdk._logs_format import json_line, text_line
from fluoroscope.sdk._logs_wire import Endpoint, LogsClient, Reply, parse_endpoint
from fluoroscope.sdk._sigv4 import Credentials, credentials_from_env, region_from_env

__all__ = [
    "DROP_REASONS",
    "EVENT_OVERHEAD",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_COUNT",
    "MAX_SPAN_MS",
    "LogsHandler",
    "flush_handlers",
    "take_batch",
]

EVENT_OVERHEAD: Final = 26
MAX_BATCH_BYTES: Final = 1_048_576
MAX_BATCH_COUNT: Final = 10_000
MAX_SPAN_MS: Final = 24 * 3600 * 1000
DROP_REASONS: Final = (
    "queue_full",
    "unreachable",
    "rejected",
    "too_old",
    "too_new",
    "expired",
    "closed",
    "unformattable",
)
_GROUP_RE: Final = re.compile(r"[\.\-_/#A-Za-z0-9]{1,512}")
_TAKE_CHUNK: Final = 256  # events moved out of the queue per lock acquisition

Event = tuple[int, bytes]  # (timestamp in ms, UTF-8 message)

_open: weakref.WeakSet[LogsHandler] = weakref.WeakSet()  # handlers not closed yet
_open_lock = threading.Lock()


def flush_handlers(timeout: float | None = 2.0) -> bool:
    """Flush every open :class:`LogsHandler`, all within ``timeout`` seconds together;
    True when each one's ``flush`` was. Never raises."""
    deadline = None if timeout is None else time.monotonic() + timeout
    with _open_lock:
        handlers = list(_open)
    ok = True
    for handler in handlers:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        ok = handler.flush(left) and ok
    return ok


def take_batch(
    queue: collections.deque[Event],
    lock: threading.Lock | threading.Condition,
    max_count: int = MAX_BATCH_COUNT,
    max_bytes: int = MAX_BATCH_BYTES,
) -> tuple[list[Event], int]:
    """Move the next batch out of ``queue``: returns it (sorted by timestamp) and its bytes.

    At most ``max_count`` events whose sizes plus 26 bytes each sum to at most
    ``max_bytes`` (an event larger than that alone is taken alone: callers keep events
    below it); events more than 24 hours after the batch's first are put back at the
    front of the queue, in order. ``lock`` guards the queue; it is held only briefly.
    """
    batch: list[Event] = []
    size = 0
    full = False
    while not full:
        with lock:
            if not queue:
                break
            for _ in range(_TAKE_CHUNK):
                if not queue or len(batch) >= max_count:
                    full = True
                    break
                cost = len(queue[0][1]) + EVENT_OVERHEAD
                if batch and size + cost > max_bytes:
                    full = True
                    break
                batch.append(queue.popleft())
                size += cost
    if not batch:
        return batch, 0
    batch.sort(key=lambda event: event[0])
    first = batch[0][0]
    if batch[-1][0] - first > MAX_SPAN_MS:
        cut = next(i for i, event in enumerate(batch) if event[0] - first > MAX_SPAN_MS)
        later = batch[cut:]
        del batch[cut:]
        with lock:
            queue.extendleft(reversed(later))
        size -= sum(len(event[1]) + EVENT_OVERHEAD for event in later)
    return batch, size


def _credentials(given: tuple[str, ...] | None) -> Credentials | None:
    """``given`` as :class:`Credentials` (checked), else the environment's key, if any."""
    if given is None:
        return credentials_from_env()
    if (
        not isinstance(given, tuple)
        or len(given) not in (2, 3)
        or not all(isinstance(part, str) and part for part in given)
    ):
        raise ConfigurationError(
            "credentials must be (ACCESS_KEY_ID, SECRET_ACCESS_KEY[, SESSION_TOKEN])"
        )
    return Credentials(*given)


def _service_name(service: str | None) -> str:
    if service:
        return service
    from fluoroscope.sdk._tracer import _global

    if _global:
        return _global[0].service
    return (
        _env.env(_env.AWS_XRAY_TRACING_NAME)
        or _env.env(_env.AWS_LAMBDA_FUNCTION_NAME)
        or "python-app"
    )


def _default_endpoint() -> Endpoint:
    for name in (_env.FLUOROSCOPE_LOGS_ENDPOINT, _env.LOGS_ENDPOINT_URL):
        value = _env.env(name)
        if value is not None:
            try:
                return parse_endpoint(value)
            except ConfigurationError as exc:
                warn_once(f"logs-env-{name}", "ignoring %s: %s", name, exc)
    raw = _env.env(_env.AWS_XRAY_DAEMON_ADDRESS)
    address = parse_daemon_address(DEFAULT_DAEMON_ADDRESS)
    if raw is not None:
        try:
            address = parse_daemon_address(raw)
        except ConfigurationError as exc:
            warn_once("logs-env-daemon", "ignoring %s: %s", _env.AWS_XRAY_DAEMON_ADDRESS, exc)
    host, port = address.tcp
    return Endpoint("http", host, port, "/")


def _group_name(explicit: str | None, service: str) -> str:
    if explicit is not None:
        if not _GROUP_RE.fullmatch(explicit) or explicit.startswith("aws/"):
            raise ConfigurationError(
                f"log group {explicit!r}: 1-512 of A-Z a-z 0-9 . - _ / #, not starting aws/"
            )
        return explicit
    value = _env.env(_env.FLUOROSCOPE_LOG_GROUP)
    if value is not None and _GROUP_RE.fullmatch(value) and not value.startswith("aws/"):
        return value
    if value is not None:
        warn_once(
            "logs-env-group",
            "ignoring %s=%r: not a log group name",
            _env.FLUOROSCOPE_LOG_GROUP,
            value,
        )
    name = re.sub(r"[^\.\-_/#A-Za-z0-9]", "_", service)[:512] or "python-app"
    return "_" + name if name.startswith("aws/") else name


def _stream_name(explicit: str | None) -> str:
    if explicit is not None:
        if not 0 < len(explicit) <= 512 or ":" in explicit or "*" in explicit:
            raise ConfigurationError(f"log stream {explicit!r}: 1-512 characters, no ':' or '*'")
        return explicit
    value = _env.env(_env.FLUOROSCOPE_LOG_STREAM)
    if value is None:
        value = socket.gethostname() or "localhost"
    return re.sub(r"[:*]", "_", value)[:512] or "localhost"


class LogsHandler(logging.Handler):
    """Sends records to a CloudWatch Logs API in the background (see the module docstring).

    - ``endpoint``: the server's base URL; else ``FLUOROSCOPE_LOGS_ENDPOINT``, else
      ``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS``, else ``http://`` + the TCP part of
      ``AWS_XRAY_DAEMON_ADDRESS`` (default ``127.0.0.1:2000``, the server's address).
    - ``log_group``: else ``FLUOROSCOPE_LOG_GROUP``, else the service name: ``service``,
      else the global tracer's, else ``AWS_XRAY_TRACING_NAME`` or the Lambda function's
      name, else ``python-app`` (characters a group name cannot hold become ``_``).
    - ``log_stream``: else ``FLUOROSCOPE_LOG_STREAM``, else the host name.
    - ``token``: else ``FLUOROSCOPE_LOGS_TOKEN``; sent as a Bearer token.

    Construction validates explicit arguments (raising :class:`ConfigurationError`),
    reads the environment, and starts no thread and opens no socket.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        log_group: str | None = None,
        log_stream: str | None = None,
        service: str | None = None,
        token: str | None = None,
        credentials: tuple[str, str] | tuple[str, str, str] | None = None,
        region: str | None = None,
        level: int = logging.NOTSET,
        max_queue: int = 20_000,
        max_queue_bytes: int = 16 << 20,
        send_interval: float = 1.0,
        max_batch_count: int = MAX_BATCH_COUNT,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        timeout: float = 5.0,
        retries: int = 2,
    ) -> None:
        super().__init__(level)
        if not 1 <= max_batch_count <= MAX_BATCH_COUNT:
            raise ConfigurationError(f"max_batch_count must be 1-{MAX_BATCH_COUNT}")
        if not EVENT_OVERHEAD + 64 <= max_batch_bytes <= MAX_BATCH_BYTES:
            raise ConfigurationError(
                f"max_batch_bytes must be {EVENT_OVERHEAD + 64}-{MAX_BATCH_BYTES}"
            )
        if max_queue < 1 or max_queue_bytes < max_batch_bytes or retries < 0:
            raise ConfigurationError(
                "max_queue ≥ 1, max_queue_bytes ≥ max_batch_bytes, retries ≥ 0"
            )
        if not send_interval > 0 or not timeout > 0:
            raise ConfigurationError("send_interval and timeout must be positive")
        self.endpoint = parse_endpoint(endpoint) if endpoint is not None else _default_endpoint()
        self.service = _service_name(service)
        self.log_group = _group_name(log_group, self.service)
        self.log_stream = _stream_name(log_stream)
        self._token = token if token is not None else _env.env(_env.FLUOROSCOPE_LOGS_TOKEN)
        self._credentials = _credentials(credentials)
        self._region = region or region_from_env()
        self._max_queue = max_queue
        self._max_queue_bytes = max_queue_bytes
        self._interval = send_interval
        self._max_count = max_batch_count
        self._max_bytes = max_batch_bytes
        self._event_limit = max_batch_bytes - EVENT_OVERHEAD
        self._timeout = timeout
        self._retries = retries
        self._setup_state()
        with _open_lock:
            _open.add(self)

    def _setup_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: collections.deque[Event] = collections.deque()
        self._queued_bytes = 0
        self._accepted = 0  # events ever put in the queue
        self._settled = 0  # of those, events sent or dropped
        self._dropped_seen = 0  # drops when a flush last returned
        self._counts: dict[str, int] = dict.fromkeys(
            ("sent", "batches", "truncated", *(f"dropped_{r}" for r in DROP_REASONS)), 0
        )
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._sender_ident: int | None = None
        self._client = LogsClient(
            self.endpoint, token=self._token, credentials=self._credentials, region=self._region
        )
        self._ready = False
        self._closed = False
        self._deadline: float | None = None

    # -- application side ------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        """Format ``record`` and queue it; never blocks on the network, never raises."""
        if threading.get_ident() == self._sender_ident:
            return  # the sender's own warnings: shipping them could loop
        try:
            if self.formatter is None:
                data, cut = json_line(record, self.service, self._event_limit)
            else:
                data, cut = text_line(record, self.format(record), self._event_limit)
            stamp_ms = int(record.created * 1000)
        except Exception as exc:
            self._drop(1, "unformattable", f"{type(exc).__name__}: {exc}", queued=False)
            return
        cond = self._cond
        with cond:
            if cut:
                self._counts["truncated"] += 1
            if self._closed:
                reason = "closed"
            elif (
                len(self._queue) >= self._max_queue
                or self._queued_bytes + len(data) > self._max_queue_bytes
            ):
                reason = "queue_full"
            else:
                self._queue.append((stamp_ms, data))
                self._queued_bytes += len(data) + EVENT_OVERHEAD
                self._accepted += 1
                reason = ""
                wake = len(self._queue) >= self._max_count or self._queued_bytes >= self._max_bytes
        if reason:
            why = "the queue is full" if reason == "queue_full" else "the handler is closed"
            self._drop(1, reason, why, queued=False)
            return
        if self._thread is None:
            self._start()
        elif wake:
            self._wake.set()

    def flush(self, timeout: float | None = 5.0) -> bool:  # type: ignore[override]
        """Send what is queued now; wait at most ``timeout`` seconds for it to be settled.

        True when every record queued before the call was sent or dropped, and no record
        was dropped since the previous ``flush`` returned (or since the handler was made).
        Never raises.
        """
        if threading.get_ident() == self._sender_ident:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        cond = self._cond
        with cond:
            target = self._accepted
            pending = self._settled < target
        if pending and (self._thread is None or not self._thread.is_alive()):
            return False
        if pending:
            self._wake.set()
        with cond:
            while self._settled < target:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                cond.wait(left)
            dropped = self._dropped_total()
            clean = dropped == self._dropped_seen
            self._dropped_seen = dropped
            return clean

    def close(self, timeout: float | None = 5.0) -> None:
        """Flush within ``timeout`` seconds, stop the sender, drop what is left. Idempotent."""
        try:
            deadline = None if timeout is None else time.monotonic() + timeout
            with self._cond:
                already = self._closed
                self._closed = True
                self._deadline = deadline
            if not already:
                self._closing.set()
                self._wake.set()
                thread = self._thread
                if thread is not None and thread is not threading.current_thread():
                    thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
                with self._cond:
                    left = len(self._queue)
                    self._queue.clear()
                    self._queued_bytes = 0
                if left:
                    self._drop(left, "closed", "closed before they could be sent")
                if thread is None or not thread.is_alive():
                    self._client.close()
        finally:
            with _open_lock:
                _open.discard(self)
            super().close()

    def stats(self) -> dict[str, int]:
        """Counters: ``sent``, ``batches``, ``queued``, ``truncated``, ``dropped`` and
        ``dropped_<reason>`` for each reason in :data:`DROP_REASONS`."""
        with self._cond:
            counts = dict(self._counts)
            counts["queued"] = len(self._queue)
            counts["dropped"] = self._dropped_total()
        return counts

    def __repr__(self) -> str:
        return (
            f"LogsHandler({self.endpoint.url}, group={self.log_group!r}, "
            f"stream={self.log_stream!r})"
        )

    # -- bookkeeping -----------------------------------------------------------------

    def _dropped_total(self) -> int:
        return sum(v for k, v in self._counts.items() if k.startswith("dropped_"))

    def _drop(self, count: int, reason: str, why: str, *, queued: bool = True) -> None:
        """Count ``count`` dropped records (``queued``: they had been accepted in the queue)."""
        with self._cond:
            self._counts[f"dropped_{reason}"] += count
            if queued:
                self._settled += count
                self._cond.notify_all()
        warn_once(
            f"logs-drop-{reason}",
            "log records for %s dropped (%s): %s; further drops are counted in "
            "LogsHandler.stats(), not logged",
            self.log_group,
            reason,
            why,
        )

    def _delivered(self, batch: list[Event], reply: Reply) -> None:
        info = reply.body.get("rejectedLogEventsInfo")
        count = len(batch)
        old = expired = new = 0
        if isinstance(info, dict):
            old = _index(info.get("tooOldLogEventEndIndex"), count)
            expired = max(0, _index(info.get("expiredLogEventEndIndex"), count) - old)
            start = info.get("tooNewLogEventStartIndex")
            if start is not None:
                new = max(0, count - max(old + expired, _index(start, count)))
        with self._cond:
            self._counts["sent"] += count - old - expired - new
            self._counts["batches"] += 1
            self._settled += count - old - expired - new
            self._cond.notify_all()
        for reason, n in (("too_old", old), ("expired", expired), ("too_new", new)):
            if n:
                self._drop(n, reason, "listed in rejectedLogEventsInfo")

    # -- sender side -----------------------------------------------------------------

    def _start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="fluoroscope-logs", daemon=True)
            self._thread = thread
        ref = weakref.ref(self)

        def after_fork() -> None:
            handler = ref()
            if handler is not None:
                handler._setup_state()

        try:
            thread.start()
        except RuntimeError:  # interpreter shutting down: nothing can be sent any more
            with self._cond:
                self._thread = None
            return
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=after_fork)

    def _run(self) -> None:
        self._sender_ident = threading.get_ident()
        with suppress_instrumentation():
            while True:
                if not self._closing.is_set():
                    self._wake.wait(self._interval)
                    self._wake.clear()
                try:
                    self._send_queued()
                except Exception as exc:  # never let the sender die
                    warn_once("logs-sender", "log sender failed: %r", exc)
                if self._closing.is_set() and (not self._queue or self._past_deadline()):
                    return

    def _past_deadline(self) -> bool:
        deadline = self._deadline
        return deadline is not None and time.monotonic() >= deadline

    def _send_queued(self) -> None:
        while self._queue and not (self._closing.is_set() and self._past_deadline()):
            batch, size = take_batch(self._queue, self._cond, self._max_count, self._max_bytes)
            if not batch:
                return
            with self._cond:
                self._queued_bytes -= size
            self._deliver(batch)

    def _call_timeout(self) -> float | None:
        """Seconds a call may take now (None: the close deadline has passed)."""
        deadline = self._deadline if self._closing.is_set() else None
        if deadline is None:
            return self._timeout
        left = deadline - time.monotonic()
        return min(self._timeout, left) if left > 0.001 else None

    def _deliver(self, batch: list[Event]) -> None:
        body = {
            "logGroupName": self.log_group,
            "logStreamName": self.log_stream,
            "logEvents": [{"timestamp": ts, "message": data.decode()} for ts, data in batch],
        }
        attempts = 0
        recreated = False
        pause = 0.2
        while True:
            timeout = self._call_timeout()
            if timeout is None:
                self._drop(len(batch), "closed", "closed before they could be sent")
                return
            reply = self._prepare(timeout) if not self._ready else None
            if reply is None:
                reply = self._client.call("PutLogEvents", body, timeout)
                if reply.ok:
                    self._delivered(batch, reply)
                    return
                if reply.code == "ResourceNotFoundException" and not recreated:
                    recreated = True
                    self._ready = False
                    continue
            if reply.retryable and attempts < self._retries:
                attempts += 1
                wait = pause
                if self._closing.is_set():
                    left = self._call_timeout()
                    wait = min(pause, left or 0.0)
                self._closing.wait(wait)
                pause = min(pause * 2, 5.0)
                continue
            reason = "unreachable" if reply.retryable else "rejected"
            self._drop(len(batch), reason, f"{self.endpoint.url}: {reply.describe()}")
            return

    def _prepare(self, timeout: float) -> Reply | None:
        """Create the group and the stream (existing ones are fine); a retryable failure
        is returned, any other is left for PutLogEvents to report."""
        for operation, body in (
            ("CreateLogGroup", {"logGroupName": self.log_group}),
            (
                "CreateLogStream",
                {"logGroupName": self.log_group, "logStreamName": self.log_stream},
            ),
        ):
            reply = self._client.call(operation, body, timeout)
            if not reply.ok and reply.code != "ResourceAlreadyExistsException":
                if reply.retryable:
                    return reply
                warn_once(
                    f"logs-{operation}", "%s %s failed: %s", operation, self.log_group,
                    reply.describe(),
                )  # fmt: skip
        self._ready = True
        return None


def _index(value: Any, count: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, min(count, value))
    return 0
