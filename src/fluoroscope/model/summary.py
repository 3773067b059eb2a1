"""Trace-level read models: the summary of a trace and a whole trace's documents.

These are what ``query`` returns and what ``server`` renders into X-Ray JSON; they
know nothing of the wire shapes. :class:`TraceSummary` also round-trips through the
store's ``details`` column via :meth:`TraceSummary.details_json` /
:meth:`TraceSummary.from_row`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AnnotationValue",
    "CauseEntity",
    "EdgeFacts",
    "HttpSummary",
    "RootCause",
    "ServiceFacts",
    "ServiceId",
    "Trace",
    "TraceSummary",
]

AnnotationValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class ServiceId:
    """A node of the trace: ``name`` and ``type`` (``""`` when unknown), with account."""

    name: str
    type: str = ""
    account_id: str = ""


@dataclass(slots=True)
class ServiceFacts:
    """What a trace shows of one service (aligned with :attr:`TraceSummary.services`):
    its ERROR/FAULT/THROTTLE bits over its segments, whether it is the entry point or an
    inferred downstream, and the range of its segments' response times."""

    bits: int = 0
    root: bool = False
    inferred: bool = False
    min_response_time: float = 0.0
    max_response_time: float = 0.0


@dataclass(frozen=True, slots=True)
class EdgeFacts:
    """A call between two services of the trace (indices into ``services``), seen from the
    caller: the OR of the calls' outcome bits and the range of their durations."""

    source: int
    dest: int
    bits: int
    min_response_time: float
    max_response_time: float


@dataclass(frozen=True, slots=True)
class CauseEntity:
    """One step of a root cause's path: an entity, the exceptions it recorded (type,
    message), whether the failure came from a remote call, and (response-time causes)
    its share of the root's response time."""

    name: str
    exceptions: tuple[tuple[str, str], ...] = ()
    remote: bool = False
    coverage: float | None = None


@dataclass(frozen=True, slots=True)
class RootCause:
    """The service (index into ``services``) a fault, error or delay comes from, and the
    path from its segment down to the entity responsible."""

    service: int
    path: tuple[CauseEntity, ...]
    inferred: bool = False
    client_impacting: bool = False


@dataclass(frozen=True, slots=True)
class HttpSummary:
    """The root segment's HTTP request and response."""

    url: str = ""
    status: int = 0
    method: str = ""
    user_agent: str = ""
    client_ip: str = ""


@dataclass(slots=True)
class TraceSummary:
    """One trace's summary (X-Ray ``TraceSummary``), owned by the caller."""

    id: str
    start_time: float
    duration: float
    response_time: float | None
    has_fault: bool
    has_error: bool
    has_throttle: bool
    is_partial: bool
    http: HttpSummary | None
    revision: int
    services: list[ServiceId] = field(default_factory=list)
    entry_point: int | None = None  # index into ``services``
    annotations: dict[str, list[tuple[AnnotationValue, list[int]]]] = field(default_factory=dict)
    users: list[tuple[str, list[int]]] = field(default_factory=list)
    resource_arns: list[str] = field(default_factory=list)
    instance_ids: list[str] = field(default_factory=list)
    availability_zones: list[str] = field(default_factory=list)
    facts: list[ServiceFacts] = field(default_factory=list)
    exceptions: list[tuple[str, str, int]] = field(default_factory=list)  # (type, message, service)
    edges: list[EdgeFacts] = field(default_factory=list)
    fault_root_causes: list[RootCause] = field(default_factory=list)
    error_root_causes: list[RootCause] = field(default_factory=list)
    response_time_root_causes: list[RootCause] = field(default_factory=list)

    def details(self) -> dict[str, Any]:
        """The summary's detail parts as plain JSON types, for :meth:`restore_details`
        (the store's ``details`` column keeps those its other columns do not hold)."""
        return {
            "s": [[s.name, s.type, s.account_id] for s in self.services],
            "e": self.entry_point,
            "a": [
                [key, value, ids]
                for key, values in self.annotations.items()
                for value, ids in values
            ]
            if self.annotations
            else [],
            "u": [[name, ids] for name, ids in self.users] if self.users else [],
            "r": self.resource_arns,
            "i": self.instance_ids,
            "z": self.availability_zones,
            "rc": [
                [_cause_json(c) for c in causes] if causes else []
                for causes in (
                    self.fault_root_causes,
                    self.error_root_causes,
                    self.response_time_root_causes,
                )
            ],
        }

    def restore_details(self, details: dict[str, Any]) -> None:
        """Fill the detail fields from :meth:`details` output (read path); a part left
        out is left empty (the store fills services, resource ARNs, instance ids and
        zones from its columns when their details lack them)."""
        self.services = [ServiceId(n, t, a) for n, t, a in details.get("s", [])]
        self.entry_point = details.get("e")
        annotations: dict[str, list[tuple[AnnotationValue, list[int]]]] = {}
        for key, value, ids in details.get("a", []):
            annotations.setdefault(key, []).append((value, ids))
        self.annotations = annotations
        self.users = [(name, ids) for name, ids in details.get("u", [])]
        self.resource_arns = list(details.get("r", []))
        self.instance_ids = list(details.get("i", []))
        self.availability_zones = list(details.get("z", []))
        causes = details.get("rc") or [[], [], []]
        self.fault_root_causes = [_cause_from_json(c) for c in causes[0]]
        self.error_root_causes = [_cause_from_json(c) for c in causes[1]]
        self.response_time_root_causes = [_cause_from_json(c) for c in causes[2]]


def _cause_json(cause: RootCause) -> list[Any]:
    return [
        cause.service,
        int(cause.inferred),
        int(cause.client_impacting),
        [
            [
                e.name,
                [list(x) for x in e.exceptions] if e.exceptions else [],
                int(e.remote),
                e.coverage,
            ]
            for e in cause.path
        ],
    ]


def _cause_from_json(data: list[Any]) -> RootCause:
    service, inferred, impacting, path = data
    return RootCause(
        service,
        tuple(
            CauseEntity(name, tuple((t, m) for t, m in exceptions), bool(remote), coverage)
            for name, exceptions, remote, coverage in path
        ),
        bool(inferred),
        bool(impacting),
    )


@dataclass(slots=True)
class Trace:
    """A whole trace: one merged document per segment (subsegments nested), plus the
    inferred segments of its downstream calls. ``documents`` are owned by the caller."""

    id: str
    duration: float
    documents: list[dict[str, Any]]
    limit_exceeded: bool = False
