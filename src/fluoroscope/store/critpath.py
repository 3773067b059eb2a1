"""The critical path across a set of traces, computed in the engine from stored spans.

Rules: those of :mod:`fluoroscope.model.critpath` (the pure reference; tests hold the
two together). Three statements, run by :meth:`Store.critical_path_stats`:

1. :func:`entities_sql` fills a scratch ``Memory`` table with the selected traces'
   entities, each resolved per trace with arrays (its parent if in the trace, else the
   virtual root ``''``; its end, ``t1`` while in progress; its service, the name of
   its nearest segment found by pointer jumping over 64 levels; the trace's span).
2. :func:`walk_sql`, a recursive query, walks every trace's path at once: each step,
   every entity on the path picks its next child - the latest-ending one (ties: later
   start, greater id) below the last it picked that ends within its window and by its
   current point - which becomes a path entry (with its clamped window) while the
   parent's current point moves to the child's start. Steps stop when no entity picks.
3. Each path entry's critical time (window minus its path children's) is summed per
   trace and entry key (service, name, operation), and over the set: per key its mean
   over all traces, over the traces around the median duration (between the set's
   p40 and p60) and over the slowest (at or above its p99).

Cost grows with the selected traces' entities and the longest chain of path entries;
traces with more than ``max_entities`` entities are left out (the caller counts them).
"""

from __future__ import annotations

__all__ = ["aggregate_sql", "entities_sql", "entries_sql", "walk_sql"]


def entities_sql(db: str, where_clause: str) -> str:
    """The entity rows of the selected traces. Parameters: ``tlo thi`` (UInt32, the
    ``ts`` range), ``start end`` (Float64: the traces' start), ``max_entities``."""
    from fluoroscope.store.tracestats import IN_PROGRESS_FLAG

    rows = f"""
SELECT trace_id, id, parent_id, is_segment, name, start_time,
       if(bitAnd(flags, {IN_PROGRESS_FLAG}) != 0, 1, 0) AS open, end_time,
       if(is_segment = 0 AND namespace = 'aws', JSONExtractString(doc, 'aws', 'operation'), '')
         AS op
FROM {db}.spans FINAL
WHERE ts >= toDateTime({{tlo:UInt32}}) AND ts <= toDateTime({{thi:UInt32}})
  AND trace_id IN (
      SELECT trace_id FROM {db}.traces FINAL
      WHERE ts >= toDateTime({{tlo:UInt32}}) AND ts <= toDateTime({{thi:UInt32}})
        AND start_time >= {{start:Float64}} AND start_time <= {{end:Float64}}
        AND ({where_clause}))"""
    q = f"""
SELECT trace_id, groupArray(id) AS ids, groupArray(parent_id) AS parents,
       groupArray(is_segment) AS segs, groupArray(name) AS names, groupArray(op) AS ops,
       groupArray(start_time) AS S, groupArray(end_time) AS E0, groupArray(open) AS O
FROM ({rows}) GROUP BY trace_id HAVING count() <= {{max_entities:UInt32}}"""
    q = f"""
SELECT *, arrayMin(S) AS t0,
       greatest(arrayMax(S), arrayMax(arrayMap((e, o) -> if(o = 1, 0., e), E0, O))) AS t1,
       arrayMap((p, x) -> if(p = x, 0, indexOf(ids, p)), parents, ids) AS up
FROM ({q})"""
    q = f"""
SELECT *, arrayMap((e, s, o) -> if(o = 1, t1, greatest(e, s)), E0, S, O) AS E,
       arrayMap((i, s, u) -> if(s = 1, i, u), arrayEnumerate(ids), segs, up) AS h
FROM ({q})"""
    hop8 = "h[h[h[h[h[h[h[h[i]]]]]]]]"
    for _ in range(2):
        q = f"SELECT * REPLACE (arrayMap(i -> {hop8}, h) AS h) FROM ({q})"
    return f"""
SELECT trace_id, id, parent, s, e, svc, name, op, t0, t1
FROM (
  SELECT trace_id, t0, t1, ids, S, E, names, ops,
         arrayMap(u -> if(u = 0, '', ids[u]), up) AS pids,
         arrayMap(o -> names[o], arrayMap(x -> if(x != 0 AND segs[x] = 1, x, 0), h)) AS svcs
  FROM ({q}))
ARRAY JOIN ids AS id, pids AS parent, S AS s, E AS e, svcs AS svc, names AS name, ops AS op"""


def walk_sql(table: str) -> str:
    """The path entries of every trace in ``table`` (rows of :func:`entities_sql`):
    ``trace_id node lo hi parent``."""
    key = "(c.e, c.s, c.id)"
    return f"""
WITH RECURSIVE walk AS (
  SELECT trace_id, '' AS node, any(t0) AS lo, any(t1) AS hi, any(t1) AS cur,
         (inf, inf, '') AS last, toUInt8(0) AS entry, '' AS parent
  FROM {table} GROUP BY trace_id
  UNION ALL
  SELECT trace_id, x.1 AS node, x.2 AS lo, x.3 AS hi, x.4 AS cur, x.5 AS last, x.6 AS entry,
         x.7 AS parent
  FROM (SELECT trace_id,
               arrayJoin([(node, lo, hi, cs, best, toUInt8(0), ''),
                          (best.3, cs, ce, ce, (inf, inf, ''), toUInt8(1), node)]) AS x
  FROM (
    SELECT w.trace_id AS trace_id, w.node AS node, w.lo AS lo, w.hi AS hi,
           argMax({key}, {key}) AS best,
           least(best.1, w.hi) AS ce, least(greatest(best.2, w.lo), ce) AS cs
    FROM walk AS w INNER JOIN {table} AS c ON c.trace_id = w.trace_id AND c.parent = w.node
    WHERE least(c.e, w.hi) > w.lo AND least(c.e, w.hi) <= w.cur AND {key} < w.last
    GROUP BY trace_id, node, lo, hi
  ))
)
SELECT trace_id, node, lo, hi, parent FROM walk WHERE entry = 1"""


def entries_sql(table: str, path: str) -> str:
    """Each path entry with its key, window and critical time: ``trace_id id service name
    operation lo hi critical dur``; ``path`` holds :func:`walk_sql`'s rows."""
    return f"""
SELECT p.trace_id AS trace_id, p.node AS id, t.svc AS service, t.name AS name,
       t.op AS operation, p.lo AS lo, p.hi AS hi,
       greatest(p.hi - p.lo - coalesce(k.covered, 0), 0) AS critical, t.t1 - t.t0 AS dur
FROM {path} AS p
INNER JOIN {table} AS t ON t.trace_id = p.trace_id AND t.id = p.node
LEFT JOIN (
  SELECT trace_id, parent, sum(hi - lo) AS covered FROM {path} GROUP BY trace_id, parent
) AS k ON k.trace_id = p.trace_id AND k.parent = p.node
SETTINGS join_use_nulls = 1"""


def aggregate_sql(table: str, path: str) -> str:
    """One row per entry key over the set (parameter ``slowest``: a quantile of the
    traces' durations, only the traces at or above it count; 0 for all): ``service name
    operation traces mean at_p50 at_p99 set_traces set_p50_traces set_p99_traces p50 p99``."""
    entries = entries_sql(table, path).replace("SETTINGS join_use_nulls = 1", "")
    q = f"""
SELECT trace_id, any(dur) AS dur, groupArray((service, name, operation)) AS keys,
       groupArray(critical) AS crits
FROM ({entries}) GROUP BY trace_id"""
    q = f"SELECT *, quantileExact({{slowest:Float64}})(dur) OVER () AS qs FROM ({q})"
    q = f"""
SELECT *, quantileExact(0.4)(dur) OVER () AS q40, quantileExact(0.6)(dur) OVER () AS q60,
       quantileExact(0.5)(dur) OVER () AS q50, quantileExact(0.99)(dur) OVER () AS q99,
       count() OVER () AS total
FROM ({q}) WHERE dur >= qs"""
    q = f"""
SELECT *, countIf(dur >= q40 AND dur <= q60) OVER () AS n50, countIf(dur >= q99) OVER () AS n99
FROM ({q})"""
    return f"""
SELECT k.1 AS service, k.2 AS name, k.3 AS operation, uniqExact(trace_id) AS traces,
       sum(c) / any(total) AS mean,
       sumIf(c, dur >= q40 AND dur <= q60) / any(n50) AS at_p50,
       sumIf(c, dur >= q99) / any(n99) AS at_p99,
       any(total) AS set_traces, any(n50) AS set_p50_traces, any(n99) AS set_p99_traces,
       any(q50) AS p50, any(q99) AS p99
FROM ({q})
ARRAY JOIN keys AS k, crits AS c
GROUP BY k
ORDER BY at_p99 DESC, mean DESC, service, name, operation
SETTINGS join_use_nulls = 1"""
