"""Logs Insights queries run asynchronously: StartQuery, GetQueryResults, StopQuery.

Contract: :class:`LogQueries` takes compiled queries (:class:`QueryPlan`: engine SQL,
its parameters, the result's field names) and runs each in a worker thread of its own
pool - never on the caller's thread - through ``execute(sql, params, settings)`` (the
log store's ``query``), with the engine's ``max_execution_time`` set to ``time_limit``
so that no query, however slow its data or expression, holds the engine longer. The
engine's regular expressions are RE2, so no pattern can backtrack.

- :meth:`LogQueries.start` returns the query's id at once, status ``Scheduled``; at most
  ``max_active`` queries may be scheduled or running together (more:
  :class:`TooManyQueries`), of which ``workers`` actually run at a time.
- A query's status moves ``Scheduled`` -> ``Running`` -> ``Complete`` (results kept),
  ``Failed`` (the engine refused it), ``Timeout`` (it ran past ``time_limit``, or waited
  to start longer than ``queue_limit``) or ``Cancelled`` (:meth:`LogQueries.stop`; a
  running statement cannot be interrupted, so its results are dropped when it ends).
- Results are rows of ``(field, value)`` pairs with values as text, as GetQueryResults
  returns them: times as ``YYYY-MM-DD HH:MM:SS.mmm`` (UTC), absent values left out.
- An ended query is kept ``keep_seconds`` and then forgotten (its id is then unknown:
  :class:`QueryNotFound`); at most ``keep_max`` ended queries are kept, oldest
  forgotten first.

Every method is safe to call from several threads at once and returns at once.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

import pyarrow as pa

from fluoroscope.model.errors import InvalidRequest, ResourceNotFound, StoreError, Throttled

__all__ = [
    "ACTIVE_STATUSES",
    "LogQueries",
    "QueryEnded",
    "QueryNotFound",
    "QueryPlan",
    "QuerySnapshot",
    "TooManyQueries",
    "format_value",
]

SCHEDULED: Final = "Scheduled"
RUNNING: Final = "Running"
COMPLETE: Final = "Complete"
FAILED: Final = "Failed"
CANCELLED: Final = "Cancelled"
TIMEOUT: Final = "Timeout"
ACTIVE_STATUSES: Final = frozenset((SCHEDULED, RUNNING))

DEFAULT_TIME_LIMIT: Final = 20.0
"""CloudWatch Logs gives a query 60 minutes; here the engine may be the one of the
whole server (embedded chDB runs one statement at a time, trace inserts included), so
a query gets 20 s, which scans hundreds of millions of events (a day of 10M events takes
well under a second)."""
DEFAULT_QUEUE_LIMIT: Final = 600.0
DEFAULT_KEEP_SECONDS: Final = 3600.0
DEFAULT_KEEP_MAX: Final = 500
MAX_ACTIVE: Final = 100  # CloudWatch Logs' limit of concurrent queries per account

Execute = Callable[[str, Mapping[str, Any], Mapping[str, Any]], pa.Table]


class QueryNotFound(ResourceNotFound):
    """No query with that id is known (never started, or forgotten)."""


class TooManyQueries(Throttled):
    """``max_active`` queries are already scheduled or running."""


class QueryEnded(InvalidRequest):
    """StopQuery on a query that has already ended."""


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """A compiled query: ``sql`` with ``params`` returns one column per name of
    ``fields``, in order; ``stats`` says it aggregates. ``scanned``: optionally, SQL
    and parameters counting the events and bytes the query's window holds (two
    columns), for its statistics. ``settings``: engine settings the statement needs
    (the compiler's), applied under the runner's own time limit."""

    sql: str
    params: Mapping[str, Any]
    fields: Sequence[str]
    stats: bool = False
    scanned: tuple[str, Mapping[str, Any]] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QuerySnapshot:
    """What GetQueryResults and DescribeQueries report of one query."""

    id: str
    text: str
    groups: tuple[str, ...]
    status: str
    created: float  # epoch seconds
    duration: float | None  # seconds spent running, once ended
    results: list[list[tuple[str, str]]]
    statistics: dict[str, float]
    error: str


@dataclass(slots=True)
class _Query:
    id: str
    text: str
    groups: tuple[str, ...]
    plan: QueryPlan
    created: float
    status: str = SCHEDULED
    started: float | None = None
    ended: float | None = None  # monotonic, for forgetting
    duration: float | None = None
    results: list[list[tuple[str, str]]] = field(default_factory=list)
    statistics: dict[str, float] = field(default_factory=dict)
    error: str = ""
    future: Future[None] | None = None


def format_value(value: Any) -> str | None:
    """A result value as GetQueryResults gives it (None: the field is absent)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is None else value.astimezone(UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if value != value:  # NaN: an aggregate over nothing
            return None
        return repr(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return "[" + ",".join(format_value(v) or "" for v in value) + "]"
    return str(value)


def _rows(table: pa.Table, fields: Sequence[str]) -> list[list[tuple[str, str]]]:
    names = list(fields) if len(fields) == table.num_columns else table.column_names
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    rows: list[list[tuple[str, str]]] = []
    for index in range(table.num_rows):
        row: list[tuple[str, str]] = []
        for name, column in zip(names, columns, strict=True):
            text = format_value(column[index])
            if text is not None:
                row.append((name, text))
        rows.append(row)
    return rows


class LogQueries:
    """The asynchronous query runner; see the module docstring."""

    def __init__(
        self,
        execute: Execute,
        *,
        workers: int = 2,
        max_active: int = MAX_ACTIVE,
        time_limit: float = DEFAULT_TIME_LIMIT,
        queue_limit: float = DEFAULT_QUEUE_LIMIT,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        keep_max: int = DEFAULT_KEEP_MAX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._execute = execute
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="log-query")
        self.max_active = max_active
        self.time_limit = time_limit
        self.queue_limit = queue_limit
        self.keep_seconds = keep_seconds
        self.keep_max = keep_max
        self._clock = clock
        self._lock = threading.Lock()
        self._queries: dict[str, _Query] = {}
        self._closed = False

    # -- the operations --------------------------------------------------------------

    def start(self, text: str, groups: Sequence[str], plan: QueryPlan) -> str:
        """Schedule ``plan`` (compiled from ``text`` over ``groups``); its id."""
        query = _Query(uuid.uuid4().hex, text, tuple(groups), plan, self._clock())
        with self._lock:
            self._forget()
            if self._closed:
                raise StoreError("the server is stopping")
            active = sum(q.status in ACTIVE_STATUSES for q in self._queries.values())
            if active >= self.max_active:
                raise TooManyQueries(
                    f"{active} queries are already scheduled or running; the limit is "
                    f"{self.max_active}"
                )
            self._queries[query.id] = query
            query.future = self._pool.submit(self._run, query, time.monotonic())
        return query.id

    def get(self, query_id: str) -> QuerySnapshot:
        with self._lock:
            self._forget()
            query = self._queries.get(query_id)
            if query is None:
                raise QueryNotFound(f"Query does not exist: {query_id[:256]}")
            return self._snapshot(query)

    def stop(self, query_id: str) -> bool:
        """Cancel a scheduled or running query; :class:`QueryEnded` if it had ended."""
        with self._lock:
            self._forget()
            query = self._queries.get(query_id)
            if query is None:
                raise QueryNotFound(f"Query does not exist: {query_id[:256]}")
            if query.status not in ACTIVE_STATUSES:
                raise QueryEnded(f"Query {query_id} has already ended ({query.status})")
            if query.future is not None:
                query.future.cancel()  # only a query not yet started is cancelled this way
            self._end(query, CANCELLED)
            return True

    def describe(
        self, *, group: str | None = None, status: str | None = None
    ) -> list[QuerySnapshot]:
        """The known queries, newest first, of ``group`` and in ``status`` when given."""
        with self._lock:
            self._forget()
            chosen = [
                self._snapshot(q)
                for q in self._queries.values()
                if (group is None or group in q.groups) and (status is None or q.status == status)
            ]
        chosen.sort(key=lambda s: (-s.created, s.id))
        return chosen

    def close(self) -> None:
        """Cancel what has not started, wait for what runs (bounded by the time limit)."""
        with self._lock:
            self._closed = True
            for query in self._queries.values():
                if query.status == SCHEDULED:
                    self._end(query, CANCELLED)
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- inside ------------------------------------------------------------------------

    def _snapshot(self, query: _Query) -> QuerySnapshot:
        return QuerySnapshot(
            id=query.id,
            text=query.text,
            groups=query.groups,
            status=query.status,
            created=query.created,
            duration=query.duration,
            results=list(query.results),
            statistics=dict(query.statistics),
            error=query.error,
        )

    def _end(self, query: _Query, status: str) -> None:
        """Under the lock."""
        query.status = status
        query.ended = time.monotonic()
        if query.started is not None:
            query.duration = query.ended - query.started
        query.future = None
        if status != COMPLETE:
            query.results = []

    def _forget(self) -> None:
        """Drop ended queries older than ``keep_seconds``, and the oldest beyond
        ``keep_max`` (under the lock)."""
        now = time.monotonic()
        ended = [q for q in self._queries.values() if q.ended is not None]
        ended.sort(key=lambda q: q.ended or 0.0)
        excess = len(ended) - self.keep_max
        for index, query in enumerate(ended):
            if index < excess or now - (query.ended or now) > self.keep_seconds:
                del self._queries[query.id]

    def _run(self, query: _Query, submitted: float) -> None:
        with self._lock:
            if query.status != SCHEDULED:
                return
            if time.monotonic() - submitted > self.queue_limit:
                query.error = f"the query waited over {self.queue_limit:.0f} s to start"
                self._end(query, TIMEOUT)
                return
            query.status = RUNNING
            query.started = time.monotonic()
        settings = {"max_execution_time": max(1, round(self.time_limit))}
        status, error = COMPLETE, ""
        rows: list[list[tuple[str, str]]] = []
        statistics: dict[str, float] = {}
        try:
            table = self._execute(
                query.plan.sql, query.plan.params, {**query.plan.settings, **settings}
            )
            rows = _rows(table, query.plan.fields)
            statistics = self._statistics(query, len(rows), settings)
        except StoreError as exc:
            text = str(exc)
            timed_out = "TIMEOUT_EXCEEDED" in text or "Timeout exceeded" in text
            status = TIMEOUT if timed_out else FAILED
            error = (
                f"the query ran past its time limit of {self.time_limit:.0f} s"
                if timed_out
                else text.splitlines()[0][:500]
                if text
                else "the engine refused the query"
            )
        except Exception as exc:  # a bug must fail the query, not the worker thread
            status, error = FAILED, f"{type(exc).__name__}: {exc}"[:500]
        with self._lock:
            if query.status != RUNNING:  # stopped meanwhile: the results are dropped
                return
            query.results = rows
            query.statistics = statistics
            query.error = error
            self._end(query, status)

    def _statistics(
        self, query: _Query, count: int, settings: Mapping[str, Any]
    ) -> dict[str, float]:
        statistics = {
            "resultCount": float(count),
            "logGroupsScanned": float(len(query.groups)),
        }
        if not query.plan.stats:
            statistics["recordsMatched"] = float(count)
        if query.plan.scanned is not None:
            sql, params = query.plan.scanned
            try:
                table = self._execute(sql, params, settings)
            except StoreError:
                return statistics
            if table.num_rows and table.num_columns >= 2:
                statistics["recordsScanned"] = float(table.column(0)[0].as_py() or 0)
                statistics["bytesScanned"] = float(table.column(1)[0].as_py() or 0)
        return statistics
