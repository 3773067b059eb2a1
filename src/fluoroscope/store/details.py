"""The trace summaries' ``details`` column: what a row writes there, and how a read
gives a summary back what it left out.

A summary's details (:meth:`TraceSummary.details
<fluoroscope.model.summary.TraceSummary.details>`, or the same dict ingest's
:func:`~fluoroscope.model.tracesummary.summarize` makes) hold its services (``s``: name,
type, account), entry point (``e``), annotations (``a``), users (``u``), resource ARNs
(``r``), instance ids (``i``), availability zones (``z``) and root causes (``rc``). Four
of them are columns of the same row too, written from the same lists
(:class:`~fluoroscope.model.summarycolumns.SummaryColumns`): ``s`` is ``service_names``,
``service_types`` and ``service_accounts`` item by item, ``r`` is ``resource_arns``, ``i``
``instance_ids`` and ``z`` ``zones``. :func:`encode_details` writes details without
them (and without the parts that are empty); a read selects :data:`DETAILS_READ` and
:class:`RestoredParts` puts them back from the columns, the same values, so the summary
read is the one written.

Rows written before (migration 34) hold all of them in their details: those are read
from their details as before (a row's details win when they hold ``s``), so a store
written before reads the same, and so does one holding rows of both layouts.

Measured on 1M spans (``benchmarks/query.py``), one merged part: the details held ~583
bytes a row, ~409 of them repeating those columns. Pure; thread-safe, but a
:class:`RestoredParts` belongs to its caller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from fluoroscope.model.summary import ServiceId, TraceSummary

__all__ = ["COLUMN_KEYS", "DETAILS_READ", "RestoredParts", "encode_details", "encode_slim_details"]

COLUMN_KEYS: Final = frozenset({"s", "r", "i", "z"})
"""The details' keys the row's columns hold too, left out of what is written."""

_dumps = orjson.dumps


def encode_details(details: dict[str, Any]) -> bytes:
    """``details`` as the JSON text a row stores: its entry point, annotations, users
    and root causes, each left out when it holds nothing (what a read takes a missing
    key for); not :data:`COLUMN_KEYS`. Once per summary row written: a few lookups, not
    a loop over the keys (measured: 0.69 against 1.1 µs a row; ``orjson.dumps`` of the
    whole dict 0.44)."""
    kept: dict[str, Any] = {}
    entry = details.get("e")
    if entry is not None:
        kept["e"] = entry
    annotations = details.get("a")
    if annotations:
        kept["a"] = annotations
    users = details.get("u")
    if users:
        kept["u"] = users
    causes = details.get("rc")
    if causes and (causes[0] or causes[1] or causes[2]):
        kept["rc"] = causes
    return _dumps(kept)


encode_slim_details: Final[Callable[[dict[str, Any]], bytes]] = _dumps
"""What :func:`encode_details` writes, given the details it keeps alone (the
``SummaryColumns`` ``slim`` encoder: ``SLIM_PARTS``, each only when not empty, in that
order): their JSON text as they are - ``orjson.dumps`` itself, no call in between.
Ingest's summaries make only those (:func:`~fluoroscope.model.tracesummary.summarize`),
not the lists the columns hold nor a second dict."""


_LISTS: Final = (
    "service_names", "service_types", "service_accounts", "resource_arns", "instance_ids", "zones",
)  # fmt: skip
DETAILS_READ: Final = "details, " + ", ".join(_LISTS)
"""The select-list items a summary's details are read from (in this order): the
``details`` column, then the columns :class:`RestoredParts` takes the rest from."""


class RestoredParts:
    """The parts a page's details leave out, from its columns (:data:`DETAILS_READ`'s
    after ``details``, at ``first`` onwards in ``table``): each column flattened and
    converted to Python at once, a row's items sliced out by its offsets. Measured on
    pages of 1,000 summaries (1M spans, one merged part): the engine reads the columns
    for the page's rows only (lazily, after ORDER BY ... LIMIT) and converts them to
    Arrow in ~2-4 ms; building the same JSON in the engine for the Python side to parse
    (``toJSONString``) cost ~1-2 ms more there, to save about as much here."""

    __slots__ = ("_columns",)

    def __init__(self, table: pa.Table, first: int) -> None:
        self._columns: list[tuple[list[int], list[str]]] = []
        for at in range(first, first + len(_LISTS)):
            column = table.column(at)
            lists = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
            values = lists.flatten()
            if pa.types.is_dictionary(values.type):  # (LowCardinality, as a transport may)
                values = values.cast(pa.string())
            offsets = lists.offsets  # (flatten() starts at the first list's first item)
            if offsets[0].as_py():
                offsets = pc.subtract(offsets, offsets[0])
            self._columns.append((offsets.to_pylist(), values.to_pylist()))

    def restore(self, summary: TraceSummary, row: int) -> None:
        """Give ``summary`` (read from row ``row``, its details lacking them) its
        services, resource ARNs, instance ids and zones."""
        names, types, accounts, arns, instances, zones = (
            values[offsets[row] : offsets[row + 1]] for offsets, values in self._columns
        )
        summary.services = [
            ServiceId(name, type_, account)
            for name, type_, account in zip(names, types, accounts, strict=True)
        ]
        summary.resource_arns = arns
        summary.instance_ids = instances
        summary.availability_zones = zones
