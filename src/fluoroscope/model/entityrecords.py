"""What a cached trace keeps of each entity: one record per segment and subsegment, the
downstream calls and pending edges between them, and the shared values they hold.

Records are small slots objects holding interned strings, nodes and annotation tuples
shared across traces (:func:`shared_node`, :func:`shared_annotations`), outcomes kept as
fields, so a cached :class:`~fluoroscope.model.tracestate.TraceState` costs ~2.4 KB
(``benchmarks/worker_memory.py``: 2,359 bytes on the ingest benchmark's traffic, of
which strings ~670 - ids ~290, the root's URL and client IP ~150 -, the two dicts of
records ~370, the records ~960). Pure data and pure functions; the node
table is shared by threads, one dict operation at a time under the GIL.
"""

from __future__ import annotations

from dataclasses import dataclass
from sys import intern
from typing import Any, Final

from fluoroscope.model.inference import NodeId, as_dict
from fluoroscope.model.stats import Outcome

__all__ = [
    "NO_HTTP",
    "Annotations",
    "CallEdge",
    "Downstream",
    "Edge",
    "Exceptions",
    "Http",
    "PendingEdge",
    "SegmentRecord",
    "Sub",
    "http_facts",
    "segment_node",
    "shared",
    "shared_annotations",
    "shared_node",
]


def shared(value: Any) -> Any:
    """``value``, interned when it is a string: a cached state keeps the names, origins,
    zones, methods, user agents and annotation values of its documents, which repeat
    across traces, and a parsed document holds a string object of its own for each.
    Measured on the ingest benchmark's traces (``benchmarks/worker_memory.py``),
    interning them and sharing the empty ``watch`` cut a cached trace from 6,228 bytes
    to 5,190 (10,000 per worker by default)."""
    return intern(value) if type(value) is str else value


Http = tuple[str, int, str, str, str]
"""A segment's request URL, response status, method, user agent and client IP."""
NO_HTTP: Final[Http] = ("", 0, "", "", "")


def http_facts(http: dict[str, Any], status: int) -> Http:
    """What a summary shows of an http block: kept instead of the block, so a cached
    trace does not hold its documents' request and response objects. ``status``: the
    block's response status (:func:`~fluoroscope.model.inference.http_status`), which
    the caller has worked out already."""
    request = as_dict(http.get("request"))
    if request is None:
        request = {}
    # str(x or "") as summaries always did, without a call for a string
    url = request.get("url")
    method = request.get("method")
    agent = request.get("user_agent")
    client_ip = request.get("client_ip")
    return (
        url if type(url) is str else str(url or ""),
        status,
        intern(method) if type(method) is str else str(method or ""),
        intern(agent) if type(agent) is str else str(agent or ""),
        client_ip if type(client_ip) is str else str(client_ip or ""),
    )


Annotations = tuple[Any, ...]
"""An entity's annotations, flat: key, value, key, value... (``()`` for none): a tuple
of 2n items, where a dict keyed by (entity id, key) took a 56-byte key tuple each."""
Exceptions = tuple[tuple[str, str], ...]
"""An entity's exceptions: (type, message) each (``()`` for none)."""

_MAX_SHARED_ANNOTATIONS: Final = 4_096
_ANNOTATIONS: Final[dict[Annotations, Annotations]] = {}
"""Annotation tuples already kept, by value: entities' annotations repeat across traces
(tiers, regions, counts), and a tuple of 3 pairs is 88 bytes. Bounded (cleared when
full: unique values only churn it, ~0.5 MB at most); only tuples of ``str`` keys and
``str`` or ``int`` values, whose equality is their identity of meaning (``True == 1 ==
1.0`` would hand one entity another's types). Shared by threads: one dict operation at
a time, under the GIL."""


def shared_annotations(annotations: Annotations) -> Annotations:
    """``annotations`` (flat, of ``str`` keys and ``str`` or ``int`` values only: the
    caller checks), or the equal tuple kept before (see :data:`_ANNOTATIONS`)."""
    found = _ANNOTATIONS.get(annotations)
    if found is not None:
        return found
    if len(_ANNOTATIONS) >= _MAX_SHARED_ANNOTATIONS:
        _ANNOTATIONS.clear()
    _ANNOTATIONS[annotations] = annotations
    return annotations


_MAX_SHARED_NODES: Final = 65_536
_NODES: dict[tuple[str, str], NodeId] = {}
"""Nodes already made, by (name, type): one object for every segment and call of a node
(a NodeId is 56 bytes, a cached trace has ~3-4) and no NodeId built for a known one.
Cleared when full (then only shared less). Shared by threads: one dict operation at a
time, under the GIL."""


def shared_node(node: NodeId) -> NodeId:
    """``node``, or the equal node made before (see :data:`_NODES`)."""
    found = _NODES.get(node)
    if found is not None:
        return found
    if len(_NODES) >= _MAX_SHARED_NODES:
        _NODES.clear()
    node = NodeId(shared(node.name), shared(node.type))
    _NODES[node] = node
    return node


def segment_node(name: str, origin: str) -> NodeId:
    """The node of a segment named ``name`` of type ``origin``, shared (:data:`_NODES`)."""
    found = _NODES.get((name, origin))
    if found is not None:
        return found
    return shared_node(NodeId(name, origin))


Edge = tuple[NodeId, NodeId, Outcome]
"""A call between two nodes of a trace: caller, callee, outcome."""

_TUPLE_NEW: Final = tuple.__new__


# The records' ``__init__`` is written out (``init=False``): compiled by mypyc, the one
# ``dataclass`` generates at import would run as interpreted Python, a frame per record
# made (``slot_tp_init`` under ``benchmarks/ingest_cpu.py``'s assemble stage).


@dataclass(slots=True, init=False)
class SegmentRecord:
    node: NodeId
    parent_id: str
    start: float
    end: float
    in_progress: bool
    bits: int
    # what a summary shows of the segment's http block, if any; dropped once the
    # segment has a known parent (only the root's is shown, and it is never the root)
    http: Http | None
    user: str
    resource_arn: str
    account_id: str
    instance_id: str
    availability_zone: str
    annotations: Annotations
    exceptions: Exceptions
    # the call to it counted as an edge once its caller was known (its own node then);
    # kept when a later copy replaces the segment
    called: CallEdge | None

    def __init__(
        self,
        node: NodeId,
        parent_id: str,
        start: float,
        end: float,
        in_progress: bool,
        bits: int,
        http: Http | None,
        user: str,
        resource_arn: str,
        account_id: str,
        instance_id: str,
        availability_zone: str,
        annotations: Annotations,
        exceptions: Exceptions,
        edge: CallEdge | Edge | None,
    ) -> None:
        self.node = node
        self.parent_id = parent_id
        self.start = start
        self.end = end
        self.in_progress = in_progress
        self.bits = bits
        self.http = http
        self.user = user
        self.resource_arn = resource_arn
        self.account_id = account_id
        self.instance_id = instance_id
        self.availability_zone = availability_zone
        self.annotations = annotations
        self.exceptions = exceptions
        if edge is None or isinstance(edge, CallEdge):
            self.called = edge
        else:  # an Edge tuple
            self.called = CallEdge(edge[0], edge[1], edge[2])

    @property
    def edge(self) -> Edge | None:
        """The call to this segment counted as an edge, if any (a new tuple each time)."""
        called = self.called
        return None if called is None else called.edge


@dataclass(slots=True, init=False)
class CallEdge:
    """A call to a segment counted as an edge: its caller, the segment's node then, the
    outcome. As fields (compiled: the floats and the int in the record itself): 88
    bytes where an :data:`Edge` tuple, its Outcome and two floats were 176
    (``benchmarks/worker_memory.py``)."""

    caller: NodeId
    node: NodeId
    start: float
    end: float
    bits: int

    def __init__(self, caller: NodeId, node: NodeId, outcome: Outcome) -> None:
        self.caller = caller
        self.node = node
        self.start = outcome.start
        self.end = outcome.end
        self.bits = outcome.bits

    @property
    def edge(self) -> Edge:
        """As an :data:`Edge` (a new tuple each time)."""
        return (self.caller, self.node, _TUPLE_NEW(Outcome, (self.start, self.end, self.bits)))


@dataclass(slots=True, init=False)
class Downstream:
    """A completed downstream call, waiting for its owner or standing as an inferred node.

    Its outcome is kept as fields (compiled: a float or an int in the record itself), not
    as an :class:`~fluoroscope.model.stats.Outcome`: the tuple and its two floats were 112
    bytes a call kept, ~1.8 calls a cached trace (``benchmarks/worker_memory.py``)."""

    node: NodeId
    start: float
    end: float
    bits: int
    inferred: bool  # counted as an inferred node (retract if a real callee appears)
    caller: NodeId | None

    def __init__(
        self,
        node: NodeId,
        outcome: Outcome | None,
        inferred: bool = False,
        caller: NodeId | None = None,
        start: float = 0.0,
        end: float = 0.0,
        bits: int = 0,
    ) -> None:
        """``outcome``, or ``None`` and the outcome's ``start``, ``end`` and ``bits``
        (the merge has them: building an Outcome costs a compiled caller ~1,000
        instructions, a tuple subtype made through ``tuple.__new__``)."""
        self.node = node
        if outcome is not None:
            start, end, bits = outcome
        self.start = start
        self.end = end
        self.bits = bits
        self.inferred = inferred
        self.caller = caller

    @property
    def outcome(self) -> Outcome:
        """The call's outcome (a new tuple each time)."""
        return _TUPLE_NEW(Outcome, (self.start, self.end, self.bits))


@dataclass(slots=True, init=False)
class Sub:
    """What a trace keeps of a subsegment: root-cause analysis' needs, its parent, its
    facts, and the downstream call it made (kept when a later copy replaces it)."""

    name: str
    bits: int
    start: float
    end: float
    remote: bool
    parent: str
    complete: bool  # seen complete (counted)
    annotations: Annotations
    exceptions: Exceptions
    call: Downstream | None  # set when first seen complete, if it called downstream

    def __init__(
        self,
        name: str,
        bits: int,
        start: float,
        end: float,
        remote: bool,
        parent: str,
        complete: bool,
        annotations: Annotations,
        exceptions: Exceptions,
        call: Downstream | None,
    ) -> None:
        self.name = name
        self.bits = bits
        self.start = start
        self.end = end
        self.remote = remote
        self.parent = parent
        self.complete = complete
        self.annotations = annotations
        self.exceptions = exceptions
        self.call = call


@dataclass(slots=True, init=False)
class PendingEdge:
    """A completed segment whose parent entity has not arrived yet."""

    sid: str
    node: NodeId
    outcome: Outcome

    def __init__(self, sid: str, node: NodeId, outcome: Outcome) -> None:
        self.sid = sid
        self.node = node
        self.outcome = outcome
