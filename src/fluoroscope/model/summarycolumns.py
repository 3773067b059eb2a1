"""Trace summaries column by column: the rows ingest writes to the store's ``traces`` table.

:meth:`TraceState.summarize <fluoroscope.model.tracestate.TraceState.summarize>` appends
one row per changed trace straight into these lists (no
:class:`~fluoroscope.model.summary.TraceSummary` in between: a summary per changed trace
per batch is the largest part of ingest's work); :meth:`SummaryColumns.add` appends a
``TraceSummary`` made by hand. The store turns the lists into Arrow columns. A row holds
what a ``TraceSummary`` holds; the store reads one back.

Layout:

* ``scalars``: one tuple per row, the columns named in :data:`SCALAR_COLUMNS`
  (``response_time`` is -1 while the root runs).
* ``details``: per row, :meth:`TraceSummary.details` - as JSON text when the columns
  were made with an ``encode`` function (ingest encodes each row's at once: thousands of
  small dicts and lists kept until the write cost more in memory traffic than encoding
  them), else as the dict itself. Made with a ``slim`` encoder too (the store's
  batches are), :func:`~fluoroscope.model.tracesummary.summarize` makes only the parts
  the store's details column keeps (:data:`SLIM_PARTS`, each when not empty: what
  ``fluoroscope.store.details`` keeps of the whole), not the others (services,
  resource ARNs, instance ids and zones, columns of the row too).
* list columns: each a flat list of all rows' items, with ``offsets`` per group of
  columns of equal lengths (row ``i``'s items are ``[offsets[i], offsets[i + 1])``):

  - services (``service_names``, ``service_types``) and their facts (``svc_bits``,
    ``svc_root``, ``svc_inferred``, ``svc_min_rt``, ``svc_max_rt``; ingest writes one
    per service, a hand-made summary may have none);
  - ``users``; ``resource_arns``; ``instance_ids``; ``zones``;
  - annotations (``ann_keys``, ``ann_types`` - :data:`ANN_STRING`, :data:`ANN_NUMBER`,
    :data:`ANN_BOOL` - ``ann_strings``, ``ann_numbers``), one item per (key, value);
  - exceptions (``exc_types``, ``exc_messages``, ``exc_services``: index of the owning
    service, -1 if unknown);
  - edges (``edge_src``, ``edge_dst``: 1-based service indices, as ClickHouse arrays
    count; ``edge_bits``, ``edge_min_rt``, ``edge_max_rt``);
  - root causes (:data:`ROOT_CAUSE_COLUMNS`): one item per cause's service (level 0),
    each entity of its path (level 1) and each exception of an entity (level 2),
    categories indexing :data:`ROOT_CAUSE_CATEGORIES`.

Not thread-safe: one owner at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from fluoroscope.model.summary import HttpSummary

if TYPE_CHECKING:
    from fluoroscope.model.rootcause import Cause
    from fluoroscope.model.summary import AnnotationValue, TraceSummary

_INF: Final = float("inf")

__all__ = [
    "ANN_BOOL",
    "ANN_NUMBER",
    "ANN_STRING",
    "LIST_GROUPS",
    "ROOT_CAUSE_CATEGORIES",
    "ROOT_CAUSE_COLUMNS",
    "ROOT_CAUSE_LEVELS",
    "SCALAR_COLUMNS",
    "SLIM_PARTS",
    "Appendable",
    "SummaryColumns",
]

ANN_STRING: Final = 0
ANN_NUMBER: Final = 1
ANN_BOOL: Final = 2
ROOT_CAUSE_CATEGORIES: Final = ("fault", "error", "responsetime")
ROOT_CAUSE_LEVELS: Final = ("service", "entity", "exception")
_NO_HTTP: Final = HttpSummary()

SCALAR_COLUMNS: Final = (
    "ts", "trace_id", "revision", "start_time", "end_time", "duration", "response_time",
    "has_fault", "has_error", "has_throttle", "is_partial", "http_method", "http_url",
    "http_status", "user_agent", "client_ip", "entry_name", "entry_type", "segment_count",
)  # fmt: skip
ROOT_CAUSE_COLUMNS: Final = (
    "rc_cat", "rc_level", "rc_name", "rc_type", "rc_message", "rc_remote", "rc_inferred",
    "rc_coverage",
)  # fmt: skip
LIST_GROUPS: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("services", ("service_names", "service_types", "service_accounts")),
    ("facts", ("svc_bits", "svc_root", "svc_inferred", "svc_min_rt", "svc_max_rt")),
    ("users", ("users",)),
    ("arns", ("resource_arns",)),
    ("annotations", ("ann_keys", "ann_types", "ann_strings", "ann_numbers")),
    ("exceptions", ("exc_types", "exc_messages", "exc_services")),
    ("instances", ("instance_ids",)),
    ("zones", ("zones",)),
    ("edges", ("edge_src", "edge_dst", "edge_bits", "edge_min_rt", "edge_max_rt")),
    ("causes", ROOT_CAUSE_COLUMNS),
)  # fmt: skip
"""(group, its columns) for every list column; a group's columns have equal lengths."""
SLIM_PARTS: Final = ("e", "a", "u", "rc")
"""The parts of a row's details made when its columns have a ``slim`` encoder, in this
order, each only when not empty (``e`` when not None; ``rc`` when a category holds a
cause)."""


class Appendable(Protocol):
    """Where rows' details go: a list, or a column that packs them (the store's)."""

    def append(self, value: Any, /) -> None: ...


class SummaryColumns:
    """Summary rows of one batch (see the module docstring for the layout).

    Each list column is an attribute of the same name; :meth:`end_row` closes a row."""

    __slots__ = (
        "_data",
        "_encode",
        "_end_data",
        "_row_ends",
        "_slim",
        "ann_keys",
        "ann_numbers",
        "ann_strings",
        "ann_types",
        "details",
        "edge_bits",
        "edge_dst",
        "edge_max_rt",
        "edge_min_rt",
        "edge_src",
        "exc_messages",
        "exc_services",
        "exc_types",
        "instance_ids",
        "offsets",
        "rc_cat",
        "rc_coverage",
        "rc_inferred",
        "rc_level",
        "rc_message",
        "rc_name",
        "rc_remote",
        "rc_type",
        "resource_arns",
        "scalars",
        "service_accounts",
        "service_names",
        "service_types",
        "svc_bits",
        "svc_inferred",
        "svc_max_rt",
        "svc_min_rt",
        "svc_root",
        "users",
        "zones",
    )

    def __init__(
        self,
        encode: Callable[[dict[str, Any]], bytes] | None = None,
        details: Appendable | None = None,
        slim: Callable[[dict[str, Any]], bytes] | None = None,
    ) -> None:
        """``encode``: turns a row's details into JSON text as the row ends (see the
        module docstring); without it they stay dicts. ``details``: where they go
        (default a list; the store passes a column that packs the texts together: one
        offering ``appender()`` - its buffer and its offsets' ``append``, as the
        store's ``BinaryColumn`` - gets each text added to the buffer directly).
        ``slim`` (with ``encode`` only): an encoder of details holding only
        :data:`SLIM_PARTS`, each not empty, that writes the text ``encode`` writes of
        the whole details (``encode`` leaving the other parts out); rows may then end
        with :meth:`end_slim_row`, whose details
        :func:`~fluoroscope.model.tracesummary.summarize` makes of those parts alone."""
        self._encode = encode
        self._slim = slim if encode is not None else None
        self.scalars: list[tuple[Any, ...]] = []
        self.details: Appendable = [] if details is None else details
        self.offsets: dict[str, list[int]] = {group: [0] for group, _ in LIST_GROUPS}
        # encoded texts appended straight into a packing column's buffer where it offers
        # one (``appender()``, as the store's does): no method call into it per row
        self._data: bytearray | None = None
        self._end_data: Callable[[int], None] | None = None
        appender = getattr(details, "appender", None) if encode is not None else None
        if appender is not None:
            self._data, self._end_data = appender()
        self.service_names: list[str] = []
        self.service_types: list[str] = []
        self.service_accounts: list[str] = []
        self.svc_bits: list[int] = []
        self.svc_root: list[int] = []
        self.svc_inferred: list[int] = []
        self.svc_min_rt: list[float] = []
        self.svc_max_rt: list[float] = []
        self.users: list[str] = []
        self.resource_arns: list[str] = []
        self.ann_keys: list[str] = []
        self.ann_types: list[int] = []
        self.ann_strings: list[str] = []
        self.ann_numbers: list[float] = []
        self.exc_types: list[str] = []
        self.exc_messages: list[str] = []
        self.exc_services: list[int] = []
        self.instance_ids: list[str] = []
        self.zones: list[str] = []
        self.edge_src: list[int] = []
        self.edge_dst: list[int] = []
        self.edge_bits: list[int] = []
        self.edge_min_rt: list[float] = []
        self.edge_max_rt: list[float] = []
        self.rc_cat: list[int] = []
        self.rc_level: list[int] = []
        self.rc_name: list[str] = []
        self.rc_type: list[str] = []
        self.rc_message: list[str] = []
        self.rc_remote: list[int] = []
        self.rc_inferred: list[int] = []
        self.rc_coverage: list[float] = []
        # end_row appends each group's length (its first column's) to its offsets
        # through these (the dict's own lists), not a dict lookup per group per row
        self._row_ends: list[tuple[list[int], list[Any]]] = [
            (self.offsets[group], getattr(self, columns[0])) for group, columns in LIST_GROUPS
        ]

    def __len__(self) -> int:
        return len(self.scalars)

    @property
    def encoded(self) -> bool:
        """True when ``details`` holds JSON text rather than dicts."""
        return self._encode is not None

    @property
    def slim(self) -> bool:
        """True when rows may end with :meth:`end_slim_row`."""
        return self._slim is not None

    def end_slim_row(self, scalars: tuple[Any, ...], details: dict[str, Any]) -> None:
        """:meth:`end_row` for ``details`` holding only :data:`SLIM_PARTS`, each not
        empty (only when :attr:`slim`)."""
        slim = self._slim
        assert slim is not None
        self._close(scalars, slim(details))

    def end_row(self, scalars: tuple[Any, ...], details: dict[str, Any]) -> None:
        """Close the row whose list items were appended since the previous row's end."""
        encode = self._encode
        if encode is None:
            self._close(scalars, details)
        else:
            self._close(scalars, encode(details))

    def _close(self, scalars: tuple[Any, ...], details: bytes | dict[str, Any]) -> None:
        """End a row: its ``scalars``, its ``details`` (their text, or the dict itself
        when the columns are not encoded) and where its list columns' items end."""
        self.scalars.append(scalars)
        data, end_data = self._data, self._end_data
        if data is not None and end_data is not None and type(details) is bytes:
            data += details
            end_data(len(data))
        else:
            self.details.append(details)
        for ends, column in self._row_ends:
            ends.append(len(column))

    def add(self, ts: int, summary: TraceSummary) -> None:
        """Append ``summary`` as a row, stored under the trace's epoch ``ts``."""
        s = summary
        http = s.http or _NO_HTTP
        services = s.services
        entry = services[s.entry_point] if s.entry_point is not None else None
        for service in services:
            self.service_names.append(service.name)
            self.service_types.append(service.type)
            self.service_accounts.append(service.account_id)
        for f in s.facts:
            self.svc_bits.append(f.bits)
            self.svc_root.append(int(f.root))
            self.svc_inferred.append(int(f.inferred))
            self.svc_min_rt.append(f.min_response_time)
            self.svc_max_rt.append(f.max_response_time)
        self.users.extend([name for name, _ in s.users])
        self.resource_arns.extend(s.resource_arns)
        for key, pairs in s.annotations.items():
            for value, _ in pairs:
                self.add_annotation(key, value)
        for kind, message, where in s.exceptions:
            self.exc_types.append(kind)
            self.exc_messages.append(message)
            self.exc_services.append(where)
        self.instance_ids.extend(s.instance_ids)
        self.zones.extend(s.availability_zones)
        for edge in s.edges:
            self.edge_src.append(edge.source + 1)
            self.edge_dst.append(edge.dest + 1)
            self.edge_bits.append(edge.bits)
            self.edge_min_rt.append(edge.min_response_time)
            self.edge_max_rt.append(edge.max_response_time)
        groups = (s.fault_root_causes, s.error_root_causes, s.response_time_root_causes)
        for category, causes in enumerate(groups):
            for cause in causes:
                service = services[cause.service]
                path = tuple((e.name, e.exceptions, e.remote, e.coverage) for e in cause.path)
                self.add_cause(
                    category,
                    (cause.service, path, cause.inferred, cause.client_impacting),
                    service.name,
                    service.type,
                )
        self.end_row(
            (
                ts, s.id, s.revision, s.start_time, s.start_time + s.duration, s.duration,
                s.response_time if s.response_time is not None else -1.0,
                int(s.has_fault), int(s.has_error), int(s.has_throttle), int(s.is_partial),
                http.method, http.url, http.status, http.user_agent, http.client_ip,
                entry.name if entry else "", entry.type if entry else "",
                len(services),
            ),
            s.details(),
        )  # fmt: skip

    def new_service(self, name: str, type_: str) -> None:
        """Append a service of the row in the making, its facts zero (its quickest
        response time infinite, for the caller to lower)."""
        self.service_names.append(name)
        self.service_types.append(type_)
        self.svc_bits.append(0)
        self.svc_root.append(0)
        self.svc_inferred.append(0)
        self.svc_min_rt.append(_INF)
        self.svc_max_rt.append(0.0)

    def add_annotation(self, key: str, value: AnnotationValue) -> None:
        """Append one (key, value) item of the row's annotations."""
        self.ann_keys.append(key)
        if isinstance(value, bool):
            self.ann_types.append(ANN_BOOL)
            self.ann_strings.append("")
            self.ann_numbers.append(float(value))
        elif isinstance(value, (int, float)):  # (a tuple: ``int | float`` is built per call)
            self.ann_types.append(ANN_NUMBER)
            self.ann_strings.append("")
            self.ann_numbers.append(float(value))
        else:
            self.ann_types.append(ANN_STRING)
            self.ann_strings.append(str(value))
            self.ann_numbers.append(0.0)

    def add_cause(self, category: int, cause: Cause, name: str, type_: str) -> list[Any]:
        """Append one root cause's items (its service, named ``name`` and typed ``type_``,
        each entity of its path and each exception an entity recorded) and return its
        JSON for ``details`` (as :meth:`TraceSummary.details` writes it)."""
        service, path, inferred, impacting = cause
        as_int = 1 if inferred else 0
        any_remote = 0
        for step in path:
            if step[2]:
                any_remote = 1
                break
        cat, level, names, types = self.rc_cat, self.rc_level, self.rc_name, self.rc_type
        messages, remotes, inferreds = self.rc_message, self.rc_remote, self.rc_inferred
        coverages = self.rc_coverage
        cat.append(category)
        level.append(0)
        names.append(name)
        types.append(type_)
        messages.append("")
        remotes.append(any_remote)
        inferreds.append(as_int)
        coverages.append((path[-1][3] or 0.0) if path else 0.0)
        steps: list[list[Any]] = []
        for step_name, exceptions, remote, coverage in path:
            step_remote = 1 if remote else 0
            cat.append(category)
            level.append(1)
            names.append(step_name)
            types.append("")
            messages.append("")
            remotes.append(step_remote)
            inferreds.append(as_int)
            coverages.append(coverage or 0.0)
            for kind, message in exceptions:
                cat.append(category)
                level.append(2)
                names.append(kind)
                types.append("")
                messages.append(message)
                remotes.append(step_remote)
                inferreds.append(0)
                coverages.append(0.0)
            steps.append(
                [
                    step_name,
                    [list(x) for x in exceptions] if exceptions else [],
                    step_remote,
                    coverage,
                ]
            )
        return [service, as_int, 1 if impacting else 0, steps]

    def list_column(self, name: str) -> list[Any]:
        """All rows' items of list column ``name``, flat."""
        values: list[Any] = getattr(self, name)
        return values

    def scalar_column(self, name: str) -> list[Any]:
        """All rows' values of scalar column ``name``."""
        i = SCALAR_COLUMNS.index(name)
        return [row[i] for row in self.scalars]
