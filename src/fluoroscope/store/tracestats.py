"""Service-graph statistics recomputed in the engine from the stored spans of chosen traces.

The per-minute ``node_stats``/``edge_stats`` tables sum every trace; a graph of only the
traces a filter selects (a group's service graph) cannot be cut out of them. The
``traces`` summary rows know which nodes and edges a trace has, but only the OR of their
outcomes and their quickest and slowest response times - not how many calls there were
nor how long each took, which counts and histograms need. So the statistics are rebuilt
from the ``spans`` rows of the selected traces, each stored entity once, with the rules
ingest applies as documents arrive (``fluoroscope.model.tracestate``):

* a node per completed segment (its ``name`` and ``origin``), ``root`` when it has no
  parent id, and then a ``client`` edge into it;
* an edge into a completed segment from the node owning its parent entity (found by
  following parent ids up to a segment, at most 64 steps, by pointer doubling), timed by
  the parent when the parent is a downstream call (the caller's view), else by the
  segment itself; a subsegment parent must be complete (ingest waits for it);
* an inferred node, and an edge into it from its owner, per completed downstream-call
  subsegment that no completed segment names as its parent;
* outcomes count in the minute their start falls in; histogram buckets are
  :func:`fluoroscope.model.stats.histogram_bucket`'s.

Which subsegments are downstream calls, and the node of a ``sql`` or ``remote`` one,
take a few column and JSON tests; the node of an ``aws`` call (a resource named in one
of its ``aws`` fields) is named afterwards in Python by
:func:`fluoroscope.model.inference.downstream_node` itself, from the fields that rule
reads (:data:`AWS_NAMING_FIELDS`), so the two can never disagree. The result equals what
ingest aggregated from the same entities, as stored now (an entity re-sent with other
values counts as its latest version). Cost grows with the spans of the selected traces.

Cost (2 shared cores, 1M stored spans): ~3 s for all 100k traces, ~0.6 s for the 2 %
that faulted - the ``doc`` column of every granule holding a selected trace is read
to tell downstream calls apart; a per-span "downstream node" column written at ingest
would spare that. The statement runs with the engine's previous query analyzer when it
has one (``enable_analyzer = 0``): the current one (26.x) spends ~0.6 s analysing the
nested subqueries and lambdas, the previous one ~50 ms; both give the same rows. Pure
SQL building and row post-processing here; the store runs it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import orjson

from fluoroscope.model.inference import AWS_SERVICES, ERROR, FAULT, THROTTLE, downstream_node
from fluoroscope.model.stats import CLIENT_TYPE

__all__ = [
    "AWS_NAMING_FIELDS",
    "FAST_ANALYZER",
    "IN_PROGRESS_FLAG",
    "finish_rows",
    "group_stats_sql",
    "merge_row",
]

IN_PROGRESS_FLAG: Final = 8
"""Set in ``spans.flags`` (above the outcome bits) while an entity is in progress."""
AWS_NAMING_FIELDS: Final = tuple(
    sorted(
        {s.resource_field for s in AWS_SERVICES.values() if s.resource_field}
        | {"table_names", "resource_names"}
    )
)
"""The ``aws`` fields :func:`downstream_node` reads to name a resource."""
FAST_ANALYZER: Final = " SETTINGS enable_analyzer = 0"
_AWS: Final = "\x00aws"  # dtype of an aws call still to be named: dname holds its fields
_BITS: Final = ERROR | FAULT | THROTTLE
_NONE: Final = 255  # kind of an outcome slot that does not apply


def _rows_sql(db: str, where_clause: str) -> str:
    """The selected traces' span rows, with ``dname``/``dtype`` per downstream call."""
    for field in AWS_NAMING_FIELDS:
        if not field.replace("_", "").isalpha():  # pragma: no cover - constants
            raise ValueError(field)
    raws = ", ',', ".join(
        f"if(JSONExtractRaw(aws, '{f}') = '', 'null', JSONExtractRaw(aws, '{f}'))"
        for f in AWS_NAMING_FIELDS
    )
    # a JSON array [name, aws is an object, field values...] for finish_rows to name,
    # read from the small aws object rather than the whole document each time
    aws_key = f"concat('[', toJSONString(name), ',', toString(JSONType(aws) = 'Object'), ',', {raws}, ']')"
    remote = "namespace = 'remote' OR (namespace != 'local' AND JSONType(doc, 'http') = 'Object')"
    return f"""
SELECT trace_id, id, parent_id, is_segment, name, origin, start_time, end_time, flags,
       multiIf(is_segment = 1, '', namespace = 'aws', {aws_key},
               JSONHas(doc, 'sql') OR {remote}, name, '') AS dname,
       multiIf(is_segment = 1, '', namespace = 'aws', '{_AWS}', JSONHas(doc, 'sql'),
               'Database::SQL', {remote}, 'remote', '') AS dtype
FROM (
    SELECT *, if(is_segment = 0 AND namespace = 'aws', JSONExtractRaw(doc, 'aws'), '') AS aws
    FROM {db}.spans FINAL
    WHERE ts >= toDateTime({{tlo:UInt32}}) AND ts <= toDateTime({{thi:UInt32}})
      AND trace_id IN (
          SELECT trace_id FROM {db}.traces FINAL
          WHERE ts >= toDateTime({{tlo:UInt32}}) AND ts <= toDateTime({{thi:UInt32}})
            AND start_time < {{end:Float64}} AND end_time >= {{start:Float64}}
            AND ({where_clause})))"""


def _entities_sql(rows: str) -> str:
    """One tuple per entity of each trace, with what its outcomes need: (1 name,
    2 origin, 3 start, 4 end, 5 flags, 6 is_segment, 7 has no parent, 8 dname, 9 dtype,
    10 caller name, 11 caller origin, 12 has a caller, 13 owner name, 14 owner origin,
    15 parent is a downstream call, 16-18 parent start/end/flags, 19 stands as an
    inferred node). Per trace, ``up`` indexes each entity's parent; ``h`` maps an entity
    to itself if a segment, else to its parent, and raised to the 64th power (two rounds
    of eight hops) to its owner segment. One array per subquery level, each lambda
    capturing only the arrays it reads: captured arrays are copied per element."""
    done = f"bitAnd(f, {IN_PROGRESS_FLAG}) = 0"
    hop8 = "h[h[h[h[h[h[h[h[i]]]]]]]]"
    query = f"""
SELECT groupArray(id) AS ids, groupArray(parent_id) AS parents, groupArray(is_segment) AS segs,
       groupArray(name) AS names, groupArray(origin) AS origins, groupArray(start_time) AS starts,
       groupArray(end_time) AS ends, groupArray(flags) AS fl, groupArray(dname) AS dnames,
       groupArray(dtype) AS dtypes
FROM ({rows})
GROUP BY trace_id"""
    query = f"SELECT *, arrayMap(p -> indexOf(ids, p), parents) AS up FROM ({query})"
    query = (
        "SELECT *, arrayMap((i, s, u) -> if(s = 1, i, u), arrayEnumerate(ids), segs, up) AS h "
        f"FROM ({query})"
    )
    for _ in range(2):
        query = f"SELECT * REPLACE (arrayMap(i -> {hop8}, h) AS h) FROM ({query})"
    query = f"SELECT *, arrayMap(x -> if(x != 0 AND segs[x] = 1, x, 0), h) AS owner FROM ({query})"
    query = f"""
SELECT *,
       arrayMap(u -> if(u != 0 AND (segs[u] = 1 OR bitAnd(fl[u], {IN_PROGRESS_FLAG}) = 0),
                        if(segs[u] = 1, u, owner[u]), 0), up) AS caller,
       arrayFilter(p -> p != '', arrayMap((p, s, f) -> if(s = 1 AND {done}, p, ''),
                                          parents, segs, fl)) AS called
FROM ({query})"""
    query = f"""
SELECT names, origins, starts, ends, fl, segs, parents, dnames, dtypes,
       arrayMap(c -> names[c], caller) AS c_names, arrayMap(c -> origins[c], caller) AS c_origins,
       arrayMap(c -> c != 0, caller) AS has_caller,
       arrayMap(o -> names[o], owner) AS o_names, arrayMap(o -> origins[o], owner) AS o_origins,
       arrayMap(u -> segs[u] = 0 AND dnames[u] != '', up) AS p_call,
       arrayMap(u -> starts[u], up) AS p_starts, arrayMap(u -> ends[u], up) AS p_ends,
       arrayMap(u -> fl[u], up) AS p_fl,
       arrayMap((s, o, x) -> s = 0 AND o != 0 AND NOT has(called, x), segs, owner, ids) AS stands
FROM ({query})"""
    return f"""
SELECT (n, o, s, en, f, sg, p = '', dn, dt, cn, co, hc, onm, oo, pc, ps, pe, pf, st) AS e
FROM ({query})
ARRAY JOIN names AS n, origins AS o, starts AS s, ends AS en, fl AS f, segs AS sg,
           parents AS p, dnames AS dn, dtypes AS dt, c_names AS cn, c_origins AS co,
           has_caller AS hc, o_names AS onm, o_origins AS oo, p_call AS pc, p_starts AS ps,
           p_ends AS pe, p_fl AS pf, stands AS st"""


def _bucket(elapsed: str) -> str:
    """``histogram_bucket`` in SQL: microseconds rounded to two significant digits."""
    us = f"toInt64(floor({elapsed} * 1000000 + 0.5))"
    magnitude = f"toInt64(intExp10(length(toString({us})) - 2))"
    rounded = f"least(intDiv({us} + intDiv({magnitude}, 2), {magnitude}) * {magnitude}, 4000000000)"
    return f"toUInt32(if({us} < 100, greatest({us}, 0), {rounded}))"


def group_stats_sql(db: str, where_clause: str, *, by_period: bool) -> str:
    """The statement behind :meth:`fluoroscope.store.store.Store.trace_stats`, without
    its ``SETTINGS`` (parameters ``lo hi tlo thi start end`` and, ``by_period``,
    ``period``; ``where_clause`` binds its own). One row per node (``kind = 0``,
    ``dst_*`` empty) or edge (``kind = 1``) and, ``by_period``, per ``bucket``, with the
    columns of :meth:`Store.stats`; aws nodes still to be named by :func:`finish_rows`."""
    done = f"bitAnd(e.5, {IN_PROGRESS_FLAG}) = 0"
    bits = f"bitAnd(e.5, {_BITS})"
    slots = [  # (kind, src, src type, dst, dst type, root, inferred, start, end, bits)
        f"(if(e.6 = 1 AND {done}, 0, {_NONE}), e.1, e.2, '', '', toUInt8(e.7), 0, e.3, e.4, {bits})",
        f"(if(e.6 = 1 AND {done} AND e.7, 1, {_NONE}), e.1, '{CLIENT_TYPE}', e.1, e.2, 0, 0, "
        f"e.3, e.4, {bits})",
        f"(if(e.6 = 1 AND {done} AND e.12, 1, {_NONE}), e.10, e.11, e.1, e.2, 0, 0, "
        f"if(e.15, e.16, e.3), if(e.15, e.17, e.4), bitAnd(if(e.15, e.18, e.5), {_BITS}))",
        f"(if(e.19 AND {done} AND e.8 != '', 0, {_NONE}), e.8, e.9, '', '', 0, 1, e.3, e.4, {bits})",
        f"(if(e.19 AND {done} AND e.8 != '', 1, {_NONE}), e.13, e.14, e.8, e.9, 0, 0, e.3, e.4, "
        f"{bits})",
    ]
    outcomes = (
        f"SELECT arrayJoin(arrayFilter(t -> t.1 != {_NONE}, [{', '.join(slots)}])) AS o "
        f"FROM ({_entities_sql(_rows_sql(db, where_clause))})"
    )
    bucket = (
        "intDiv(toUInt32(o.8), {period:UInt32}) * {period:UInt32} AS bucket, " if by_period else ""
    )
    group = "bucket, " if by_period else ""
    return f"""
SELECT {bucket}o.1 AS kind, o.2 AS src_name, o.3 AS src_type, o.4 AS dst_name, o.5 AS dst_type,
       max(o.6) AS is_root, min(o.7) AS inferred,
       toInt64(count()) AS total, toInt64(countIf(o.10 = 0)) AS ok,
       toInt64(countIf(bitAnd(o.10, {THROTTLE}) = 0 AND bitAnd(o.10, {ERROR}) != 0)) AS errors,
       toInt64(countIf(bitAnd(o.10, {THROTTLE}) != 0)) AS throttles,
       toInt64(countIf(bitAnd(o.10, {FAULT}) != 0)) AS faults,
       sum(greatest(o.9 - o.8, 0)) AS response_time, min(o.8) AS first_start,
       max(o.9) AS last_end,
       sumMap(map({_bucket("greatest(o.9 - o.8, 0)")}, toInt64(1))) AS histogram
FROM ({outcomes})
WHERE intDiv(toUInt32(o.8), 60) * 60 >= {{lo:UInt32}} AND intDiv(toUInt32(o.8), 60) * 60 < {{hi:UInt32}}
GROUP BY {group}kind, src_name, src_type, dst_name, dst_type
ORDER BY {group}kind, src_name, src_type, dst_name, dst_type"""


def _aws_node(key: str) -> tuple[str, str]:
    """The node :func:`downstream_node` names for an aws call, from its naming key."""
    name, is_object, *values = orjson.loads(key)
    sub: dict[str, Any] = {"name": name, "namespace": "aws"}
    if is_object:
        sub["aws"] = {f: v for f, v in zip(AWS_NAMING_FIELDS, values, strict=True) if v is not None}
    node = downstream_node(sub)
    if node is None:  # pragma: no cover - every aws-namespace call is a node
        raise ValueError(f"no node for aws call {key!r}")
    return node.name, node.type


def merge_row(into: dict[str, Any], row: dict[str, Any]) -> None:
    """Add statistics ``row`` into ``into``, both of one node or edge, shaped like
    :meth:`Store.stats` rows (node rows have ``is_root`` and ``inferred``)."""
    for name in ("total", "ok", "errors", "throttles", "faults", "response_time"):
        into[name] += row[name]
    into["first_start"] = min(into["first_start"], row["first_start"])
    into["last_end"] = max(into["last_end"], row["last_end"])
    if "is_root" in row:
        into["is_root"] = max(into["is_root"], row["is_root"])
        into["inferred"] = min(into["inferred"], row["inferred"])
    counts = dict(into["histogram"])
    for bucket, count in row["histogram"]:
        counts[bucket] = counts.get(bucket, 0) + count
    into["histogram"] = sorted(counts.items())


def finish_rows(
    rows: Iterable[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows of :func:`group_stats_sql` as (node rows, edge rows) shaped like
    :meth:`Store.stats` rows: aws nodes named, rows naming the same node or edge merged."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    names: dict[str, tuple[str, str]] = {}
    for row in rows:
        for side in ("src", "dst"):
            if row[f"{side}_type"] == _AWS:
                key = row[f"{side}_name"]
                if key not in names:
                    names[key] = _aws_node(key)
                row[f"{side}_name"], row[f"{side}_type"] = names[key]
        ident = (
            row.get("bucket"),
            row["kind"],
            row["src_name"],
            row["src_type"],
            row["dst_name"],
            row["dst_type"],
        )
        if ident in merged:
            merge_row(merged[ident], row)
        else:
            merged[ident] = row
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for row in merged.values():
        if not row["total"]:
            continue
        if row.pop("kind") == 0:
            row["name"] = row.pop("src_name")
            row["type"] = row.pop("src_type")
            del row["dst_name"], row["dst_type"]
            nodes.append(row)
        else:
            del row["is_root"], row["inferred"]
            edges.append(row)
    return nodes, edges
