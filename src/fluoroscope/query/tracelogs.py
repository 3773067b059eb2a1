"""One trace's log lines, each tagged with the part of the trace that wrote it.

:func:`trace_logs` is the single answer to "which lines belong to this trace", used by
the console's Logs pane (``GET /api/traces/{id}/logs``), ``fluoroscope trace --logs``
and ``fluoroscope logs trace``. From the stored trace it takes (reference logs.md §6):

* the candidate log groups: every segment's ``aws.cloudwatch_logs[].log_group`` (a name
  or an ARN ``arn:…:log-group:<name>``), and ``/aws/lambda/<function>`` for each Lambda
  segment (``origin`` ``AWS::Lambda`` / ``AWS::Lambda::Function``, the function named
  by ``resource_arn`` / ``aws.function_arn``, else the segment's name);
* the invocations: each Lambda segment's ``aws.request_id`` and each API Gateway
  segment's ``aws.api_gateway.request_id``;
* the time window: the earliest start minus :data:`PADDING_SECONDS` to the latest end
  plus it.

A line belongs to the trace when (a) it carries the trace id (extracted at ingest, X-Ray
or W3C form); (b) it carries only a request id, of an invocation whose own lines name
the trace (same group and stream: a Lambda REPORT line's ``XRAY TraceId``), whatever
order they arrived in; (c) it carries only a request id that one of the trace's
segments names, and it was written in that segment's function group, or a candidate
group, inside the window; or (d) it sits in a group a segment names in ``aws.cloudwatch_logs``
inside the window and its text contains the trace id (either form) although ingest found
no id in it (the X-Ray console's own ``filter @message like`` query, kept to the groups
the application declares: in Lambda's and API Gateway's groups ingest reads every id); or (e) it carries no id at all and
sits in the stream of one of the trace's Lambda invocations between that invocation's
``START`` and ``END`` lines (a function instance runs one invocation at a time: what
``print`` wrote, an uncaught error's traceback). A line that carries another
trace's id never belongs. (a)-(c) read the log store's trace index (``log_index``, by
trace id and request id, never a scan of time), then the lines it points at; (d) reads
only the declared groups' window (the events table is ordered by group then time) and
(e) only the invocations' streams between the first and last indexed line there. Two
statements in all (one when the index has nothing and no group is declared).

Each line comes back tagged: ``entity_id`` (the segment or subsegment it belongs to:
the one whose id it carries, else the Lambda function segment - or Lambda's own
segment, or the API Gateway segment - whose request id it carries, else the only
segment whose function group or ``cloudwatch_logs`` group it was written to),
``segment_id`` (the segment owning that entity), ``service`` (that segment's name) and
``origin``; empty strings when that cannot be told. Lines are in (timestamp, seq) order.

Blocking (store reads); thread-safe; raises :class:`~fluoroscope.model.errors.InvalidRequest`
for a malformed trace id and :class:`~fluoroscope.model.errors.StoreError` when the
engine fails. A trace that is not stored still has the lines that carry its id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from fluoroscope.store.logs import LogStore, normalize_trace_id, pointed
from fluoroscope.store.store import Store

__all__ = [
    "MAX_LINES",
    "PADDING_SECONDS",
    "TraceLine",
    "TraceLogs",
    "TraceParts",
    "trace_logs",
    "trace_parts",
]

PADDING_SECONDS: Final = 300.0
"""Added before the trace's first start and after its last end: the window of (c)/(d)."""
MAX_LINES: Final = 10_000
"""The most lines one answer holds (``truncated`` says when more were found)."""

_LAMBDA_ORIGINS: Final = frozenset({"AWS::Lambda", "AWS::Lambda::Function"})
_APIGW_ORIGIN: Final = "AWS::ApiGateway::Stage"


@dataclass(frozen=True, slots=True)
class TraceLine:
    """One log line of a trace and the part of the trace it belongs to."""

    timestamp: int  # epoch ms
    ingestion_time: int
    seq: int
    log_group: str
    stream: str
    message: str
    level: str = ""
    type: str = ""  # Lambda platform line kind (START, END, REPORT, ...) or ''
    request_id: str = ""
    json: str = ""  # the message's first JSON object, or ''
    entity_id: str = ""
    segment_id: str = ""
    service: str = ""
    origin: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "ingestionTime": self.ingestion_time,
            "eventId": str(self.seq),
            "logGroup": self.log_group,
            "logStream": self.stream,
            "message": self.message,
            "level": self.level,
            "type": self.type,
            "requestId": self.request_id,
            "json": self.json,
            "entityId": self.entity_id,
            "segmentId": self.segment_id,
            "service": self.service,
            "origin": self.origin,
        }


@dataclass(slots=True)
class TraceParts:
    """What of a stored trace locates its lines (see the module docstring)."""

    start: float = 0.0  # epoch seconds; 0 when the trace is not stored
    end: float = 0.0
    groups: set[str] = field(default_factory=set)
    declared: set[str] = field(default_factory=set)  # named in aws.cloudwatch_logs
    # request id -> entity id of the segment its lines belong to
    requests: dict[str, str] = field(default_factory=dict)
    # request id -> the group its lines are written to (function / execution log group)
    request_groups: dict[str, str] = field(default_factory=dict)
    # log group -> entity ids of the segments that write to it
    group_entities: dict[str, list[str]] = field(default_factory=dict)
    # entity id (segment or subsegment) -> (owning segment id, its name, its origin)
    owners: dict[str, tuple[str, str, str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TraceLogs:
    trace_id: str
    lines: list[TraceLine]
    truncated: bool
    groups: list[str]  # the candidate groups searched, sorted
    start_ms: int  # the window searched (0, 0 when the trace is not stored)
    end_ms: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "traceId": self.trace_id,
            "lines": [line.as_dict() for line in self.lines],
            "truncated": self.truncated,
            "logGroups": self.groups,
            "startTime": self.start_ms,
            "endTime": self.end_ms,
        }


def _group_name(value: object) -> str:
    text = str(value or "").strip()
    if text.startswith("arn:") and ":log-group:" in text:
        text = text.split(":log-group:", 1)[1]
        if text.endswith(":*"):
            text = text[:-2]
    return text


def _function_name(doc: Mapping[str, Any]) -> str:
    aws = doc.get("aws") if isinstance(doc.get("aws"), dict) else {}
    for arn in (doc.get("resource_arn"), (aws or {}).get("function_arn")):
        if isinstance(arn, str) and ":function:" in arn:
            return arn.split(":function:", 1)[1].split(":", 1)[0]
    return str(doc.get("name") or "")


def _walk(doc: Mapping[str, Any], owner: tuple[str, str, str], out: dict[str, Any]) -> None:
    for sub in doc.get("subsegments") or ():
        if isinstance(sub, dict) and isinstance(sub.get("id"), str):
            out[sub["id"]] = owner
            _walk(sub, owner, out)


def trace_parts(documents: Iterable[Mapping[str, Any]]) -> TraceParts:
    """The groups, request ids, window and entity owners of a trace's segment
    documents (as :func:`~fluoroscope.query.traces.get_traces` assembles them)."""
    parts = TraceParts()
    starts: list[float] = []
    ends: list[float] = []
    lambda_segments: dict[str, Mapping[str, Any]] = {}
    function_by_parent: dict[str, str] = {}
    for doc in documents:
        seg_id = doc.get("id")
        if not isinstance(seg_id, str):
            continue
        origin = str(doc.get("origin") or "")
        owner = (seg_id, str(doc.get("name") or ""), origin)
        parts.owners[seg_id] = owner
        _walk(doc, owner, parts.owners)
        if isinstance(doc.get("start_time"), int | float):
            starts.append(float(doc["start_time"]))
        if isinstance(doc.get("end_time"), int | float):
            ends.append(float(doc["end_time"]))
        if doc.get("inferred"):
            continue
        aws = doc.get("aws") if isinstance(doc.get("aws"), dict) else {}
        for entry in (aws or {}).get("cloudwatch_logs") or ():
            if isinstance(entry, dict):
                name = _group_name(entry.get("log_group") or entry.get("arn"))
                if name:
                    parts.groups.add(name)
                    parts.declared.add(name)
                    parts.group_entities.setdefault(name, []).append(seg_id)
        if origin in _LAMBDA_ORIGINS:
            group = f"/aws/lambda/{_function_name(doc)}"
            parts.groups.add(group)
            parts.group_entities.setdefault(group, []).append(seg_id)
            lambda_segments[seg_id] = doc
            if origin == "AWS::Lambda::Function" and isinstance(doc.get("parent_id"), str):
                function_by_parent[doc["parent_id"]] = seg_id
        gateway = (aws or {}).get("api_gateway")
        if origin == _APIGW_ORIGIN and isinstance(gateway, dict) and gateway.get("request_id"):
            # its execution log group: every line there carries its request id
            group = (
                f"API-Gateway-Execution-Logs_{gateway.get('rest_api_id')}/{gateway.get('stage')}"
            )
            parts.groups.add(group)
            parts.requests[str(gateway["request_id"])] = seg_id
            parts.request_groups[str(gateway["request_id"])] = group
    for seg_id, doc in lambda_segments.items():
        aws = doc.get("aws") if isinstance(doc.get("aws"), dict) else {}
        request_id = (aws or {}).get("request_id")
        if isinstance(request_id, str) and request_id:
            # the function's own segment (where the handler ran) when it is there
            parts.requests[request_id] = function_by_parent.get(seg_id, seg_id)
            parts.request_groups[request_id] = f"/aws/lambda/{_function_name(doc)}"
    if starts:
        parts.start = min(starts)
        parts.end = max(ends or starts)
    return parts


_COLUMNS: Final = (
    "log_group, stream, toUnixTimestamp64Milli(ts) AS t, toUnixTimestamp64Milli(ingest_ts) "
    "AS it, seq, message, trace_id, segment_id, request_id, level, type, json"
)


def _read(
    logs: LogStore, key: str, parts: TraceParts, start_ms: int, end_ms: int, limit: int
) -> list[tuple[Any, ...]]:
    """Two statements: the trace index's entries of (a)-(c), then the lines they point
    at together with, when the trace's window is known, the candidates of (e) (id-less
    lines of the invocations' streams in the candidate groups, between the first and
    the last entry there) and (d) (in the declared groups' window).

    Measured on 10M events over one hour (60 traces, engine CPU p50, a loaded machine):
    one statement choosing the events by ``(log_group, ts, seq) IN (subquery)`` and (e)
    over the whole window of the candidate groups took 62.8 ms (the window alone 47 ms);
    the entries read first, the events chosen by constant key conditions and (e) kept
    to the entries' own time span take the time reported by benchmarks/trace_logs.py."""
    db = f"`{logs.database}`"
    entries = logs.trace_index(key, parts.requests)
    windowed = bool(parts.groups) and end_ms > start_ms
    params: dict[str, Any] = {"k": key, "lim": limit + 1}
    selects = []
    if entries:
        selects.append(
            f"(SELECT {_COLUMNS} FROM {db}.log_events WHERE {pointed(entries, params)} "
            "ORDER BY ts, seq LIMIT {lim:UInt32})"
        )
    window = (
        "AND ts >= fromUnixTimestamp64Milli({lo:Int64}, 'UTC') "
        "AND ts < fromUnixTimestamp64Milli({hi:Int64}, 'UTC') AND trace_id = '' "
    )
    # (e): an id-less line inside an invocation lies between its START and END lines,
    # which carry its request id: read the streams of the entries of the trace's id or
    # of its segments' request ids, between the first and last entry of those streams.
    firsts = {f"r:{rid}" for rid in parts.requests} | {key}
    pairs = {
        f"{e.log_group}:{e.stream}"  # group names have no ':'
        for e in entries
        if e.key in firsts and e.log_group in parts.groups
    }
    times = [e.timestamp for e in entries if f"{e.log_group}:{e.stream}" in pairs]
    if windowed and pairs and max(times) >= start_ms and min(times) < end_ms:
        params.update(
            lo=start_ms,
            hi=end_ms,
            eg=sorted({p.split(":", 1)[0] for p in pairs}),
            ep=sorted(pairs),
            ea=min(times),
            eb=max(times),
        )
        selects.append(
            f"(SELECT {_COLUMNS} FROM {db}.log_events WHERE log_group IN {{eg:Array(String)}} "
            f"{window}AND ts BETWEEN fromUnixTimestamp64Milli({{ea:Int64}}, 'UTC') "
            "AND fromUnixTimestamp64Milli({eb:Int64}, 'UTC') AND request_id = '' "
            "AND concat(log_group, ':', stream) IN {ep:Array(String)} "
            "ORDER BY ts, seq LIMIT {lim:UInt32})"
        )
    if parts.declared and end_ms > start_ms:
        params.update(declared=sorted(parts.declared), w3c=key[2:10] + key[11:])
        params.update(lo=start_ms, hi=end_ms)
        selects.append(
            f"(SELECT {_COLUMNS} FROM {db}.log_events "
            f"WHERE log_group IN {{declared:Array(String)}} {window}"
            "AND (position(message, {k:String}) > 0 OR position(message, {w3c:String}) > 0) "
            "ORDER BY ts, seq LIMIT {lim:UInt32})"
        )
    if not selects:
        return []
    table = logs.query(" UNION ALL ".join(selects), params, {"max_execution_time": 10})
    return list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))


def trace_logs(
    store: Store,
    logs: LogStore,
    trace_id: str,
    *,
    documents: Sequence[Mapping[str, Any]] | None = None,
    limit: int = MAX_LINES,
) -> TraceLogs:
    """The lines of ``trace_id`` (see the module docstring), at most ``limit``.
    ``documents``: the trace's assembled segment documents when the caller has them
    (else they are read from ``store``)."""
    key = normalize_trace_id(trace_id)
    if documents is None:
        from fluoroscope.query.traces import get_traces

        found, _ = get_traces(store, [key])
        documents = found[0].documents if found else []
    parts = trace_parts(documents)
    start_ms = end_ms = 0
    if parts.start:
        start_ms = int((parts.start - PADDING_SECONDS) * 1000)
        end_ms = int((parts.end + PADDING_SECONDS) * 1000) + 1
    rows = _read(logs, key, parts, start_ms, end_ms, limit)
    spans = _spans(rows, key)
    if spans and not (parts.groups and end_ms > start_ms):
        rows += _between(logs, spans, limit)  # (e) when the window scan did not read them
    inside: dict[int, str] = {}  # seq of an id-less line -> the invocation it sits in
    for row in rows:
        if not row[6] and not row[8]:
            for group, stream, rid, lo, hi in spans:
                if row[0] == group and row[1] == stream and lo <= row[2] <= hi:
                    inside[row[4]] = rid
                    break

    # (b): the invocations whose own lines name this trace
    invocations = {(r[0], r[1], r[8]) for r in rows if r[6] == key and r[8]}
    seen: set[int] = set()
    lines: list[TraceLine] = []
    for group, stream, t, it, seq, message, tid, sid, rid, level, kind, js in sorted(
        rows, key=lambda r: (r[2], r[4])
    ):
        if seq in seen:
            continue
        if tid and tid != key:
            continue  # another trace's line
        if seq in inside:
            rid = inside[seq]
        elif not tid:
            home = parts.request_groups.get(rid) if rid else None
            mine = (
                (group, stream, rid) in invocations
                or (
                    home is not None
                    and (group == home or group in parts.groups)
                    and (not start_ms or start_ms <= t < end_ms)
                )
                or (group in parts.declared and start_ms <= t < end_ms and _mentions(message, key))
            )
            if not mine:
                continue
        seen.add(seq)
        entity = _entity(parts, group, sid, rid)
        owner = parts.owners.get(entity, ("", "", ""))
        lines.append(
            TraceLine(
                t,
                it,
                seq,
                group,
                stream,
                message,
                level,
                kind,
                rid,
                js,
                entity,
                owner[0],
                owner[1],
                owner[2],
            )
        )
    return TraceLogs(key, lines[:limit], len(lines) > limit, sorted(parts.groups), start_ms, end_ms)


Span = tuple[str, str, str, int, int]  # group, stream, request id, START ms, END ms


def _spans(rows: list[tuple[Any, ...]], key: str) -> list[Span]:
    """The trace's invocations whose START and END lines were read."""
    marks: dict[tuple[str, str, str], dict[str, int]] = {}
    for group, stream, t, _, _, _, tid, _, rid, _, kind, _ in rows:
        if kind in ("START", "END") and rid and tid in ("", key):
            marks.setdefault((group, stream, rid), {})[kind] = t
    return [(g, s, r, m["START"], m["END"]) for (g, s, r), m in marks.items() if len(m) == 2]


def _between(logs: LogStore, spans: list[Span], limit: int) -> list[tuple[Any, ...]]:
    """(e) read on its own: the id-less lines between START and END of ``spans``."""
    params: dict[str, Any] = {"lim": limit + 1}
    ors = []
    for i, (group, stream, _, lo, hi) in enumerate(spans[:100]):
        params.update({f"g{i}": group, f"s{i}": stream, f"a{i}": lo, f"b{i}": hi})
        ors.append(
            f"(log_group = {{g{i}:String}} AND stream = {{s{i}:String}} AND ts BETWEEN "
            f"fromUnixTimestamp64Milli({{a{i}:Int64}}, 'UTC') AND "
            f"fromUnixTimestamp64Milli({{b{i}:Int64}}, 'UTC'))"
        )
    table = logs.query(
        f"SELECT {_COLUMNS} FROM `{logs.database}`.log_events WHERE ({' OR '.join(ors)}) "
        "AND request_id = '' AND trace_id = '' ORDER BY ts, seq LIMIT {lim:UInt32}",
        params,
        {"max_execution_time": 10},
    )
    return list(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))


def _mentions(message: str, key: str) -> bool:
    return key in message or (key[2:10] + key[11:]) in message


def _entity(parts: TraceParts, group: str, segment_id: str, request_id: str) -> str:
    if segment_id and segment_id in parts.owners:
        return segment_id
    if request_id and request_id in parts.requests:
        return parts.requests[request_id]
    writers = parts.group_entities.get(group, [])
    if writers:
        # the function segment when the group's segments are one invocation's pair
        functions = [e for e in writers if parts.owners.get(e, ("", "", ""))[2] != "AWS::Lambda"]
        chosen = functions or writers
        if len(chosen) == 1:
            return chosen[0]
    return ""
