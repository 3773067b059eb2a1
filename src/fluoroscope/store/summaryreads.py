"""Trace summaries read a page at a time (GetTraceSummaries): the window's rows newest
first, read in slices of the window from its newest end until they fill the page
(:mod:`fluoroscope.store.slices`), decoded into
:class:`~fluoroscope.model.summary.TraceSummary` objects, and the page token that
continues further back.

Contract: :class:`SummaryReads` is a part of :class:`~fluoroscope.store.store.Store`
(over :class:`~fluoroscope.store.storebase.StoreBase`), not used alone, and keeps the
store's contract (:mod:`fluoroscope.store.store`). A page token is an opaque string this
module issues; one it did not issue raises
:class:`~fluoroscope.model.errors.InvalidRequest`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
import pyarrow as pa

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.model.summary import HttpSummary, TraceSummary
from fluoroscope.store import slices
from fluoroscope.store.details import DETAILS_READ, RestoredParts
from fluoroscope.store.storebase import _WINDOW_SLACK, StoreBase

__all__ = ["SummaryPage", "SummaryReads"]

_SUMMARY_READ: Final = (
    "trace_id, revision, start_time, duration, response_time, has_fault, has_error, "
    "has_throttle, is_partial, http_method, http_url, http_status, user_agent, client_ip, "
    + DETAILS_READ
)
_DETAILS_AT: Final = _SUMMARY_READ.split(", ").index("details")  # its column


@dataclass(slots=True)
class SummaryPage:
    """One page of summaries, newest first; ``next_token`` continues further back."""

    summaries: list[TraceSummary]
    next_token: str | None
    scanned: int


def _encode_token(start: float, trace_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([start, trace_id])).decode()


def _decode_token(token: str) -> tuple[float, str]:
    try:
        start, trace_id = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        return float(start), str(trace_id)
    except Exception:
        raise InvalidRequest("NextToken is not a token this server issued") from None


class SummaryReads(StoreBase):
    """The store's summary reads (see the module docstring)."""

    def summaries(
        self,
        start: float,
        end: float,
        *,
        by_trace_id: bool = False,
        limit: int = 100,
        token: str | None = None,
        where_clause: str | None = None,
        where_params: Mapping[str, Any] | None = None,
    ) -> SummaryPage:
        """Trace summaries whose start (or, ``by_trace_id``, whose id epoch) lies in
        ``[start, end]``, newest first, ``limit`` per page. ``where_clause`` is an extra SQL
        condition over the ``traces`` columns whose values are all bound through
        ``where_params`` (``{name:Type}`` placeholders whose names must differ from the
        store's own: ``lo hi start end limit last_start last_id floor cut``)."""
        params: dict[str, Any] = {
            "lo": max(int(start) - _WINDOW_SLACK, 0),
            "hi": int(end) + _WINDOW_SLACK,
            "start": float(start),
            "end": float(end),
            "limit": int(limit) + 1,
        }
        conditions = ["ts >= {lo:UInt32}", "ts <= {hi:UInt32}"]
        if by_trace_id:
            params["lo"], params["hi"] = int(start), int(end)
        else:
            conditions.append("start_time >= {start:Float64} AND start_time <= {end:Float64}")
        if token:
            last_start, last_id = _decode_token(token)
            params["last_start"], params["last_id"] = last_start, last_id
            conditions.append("(start_time, trace_id) < ({last_start:Float64}, {last_id:String})")
        if where_clause:
            clash = set(where_params or {}) & (set(params) | {"floor", "cut"})
            if clash:
                raise ValueError(f"filter parameters clash with the store's: {sorted(clash)}")
            conditions.append(f"({where_clause})")
            params.update(where_params or {})
        if by_trace_id:
            table = self._summary_slice(conditions, params)
        else:
            top = min(float(end), params["last_start"]) if token else float(end)
            table = self._sliced(conditions, params, float(start), top, bool(where_clause))
        summaries = _read_summaries(table)
        next_token = None
        if len(summaries) > limit:
            summaries = summaries[:limit]
            last = summaries[-1]
            next_token = _encode_token(last.start_time, last.id)
        return SummaryPage(summaries, next_token, len(summaries))

    def _summary_slice(self, conditions: list[str], params: dict[str, Any]) -> pa.Table:
        return self._t.query_arrow(
            f"SELECT {_SUMMARY_READ} FROM {self._db}.traces FINAL WHERE {' AND '.join(conditions)} "
            "ORDER BY start_time DESC, trace_id DESC LIMIT {limit:UInt32}",
            params,
        )

    def _sliced(
        self,
        conditions: list[str],
        params: dict[str, Any],
        start: float,
        top: float,
        filtered: bool,
    ) -> pa.Table:
        """The page read in slices of ``[start, top]`` from the top, until they hold it
        (:mod:`fluoroscope.store.slices`): the rows one statement over the window gives."""
        wanted = int(params["limit"])
        tables: list[pa.Table] = []
        found = 0
        cut: float | None = None  # the floor of the slice above (the same float: no gap)
        floor = top - slices.first_width(top - start, filtered)
        while True:
            extra, bounds = [], {**params, "limit": wanted - found}
            if floor > start:
                extra.append("start_time >= {floor:Float64}")
                bounds["floor"] = floor
            if cut is not None:
                extra.append("start_time < {cut:Float64}")
                bounds["cut"] = cut
            table = self._summary_slice(conditions + extra, bounds)
            tables.append(table)
            found += table.num_rows
            if found >= wanted or floor <= start:
                break
            cut = floor
            floor = cut - slices.next_width(top - cut, found, wanted)
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _read_summaries(table: pa.Table) -> list[TraceSummary]:
    columns = [table.column(i).to_pylist() for i in range(_DETAILS_AT + 1)]
    restored: RestoredParts | None = None
    out: list[TraceSummary] = []
    loads = orjson.loads
    for row, (
        trace_id, revision, start, duration, response_time, fault, error, throttle, partial,
        method, url, status, agent, client_ip, details,
    ) in enumerate(zip(*columns, strict=True)):  # fmt: skip
        http = None
        if method or url or status:
            http = HttpSummary(url, status, method, agent, client_ip)
        summary = TraceSummary(
            id=trace_id,
            start_time=start,
            duration=duration,
            response_time=response_time if response_time >= 0 else None,
            has_fault=bool(fault),
            has_error=bool(error),
            has_throttle=bool(throttle),
            is_partial=bool(partial),
            http=http,
            revision=revision,
        )
        parts = loads(details)
        summary.restore_details(parts)
        if "s" not in parts:  # written without what the columns hold (store.details)
            if restored is None:
                restored = RestoredParts(table, _DETAILS_AT + 1)
            restored.restore(summary, row)
        out.append(summary)
    return out
