"""The critical path across a set of traces, computed in the engine from stored spans.

Rules: those of :mod:`fluoroscope.model.critpath` (the pure reference; tests hold the
two together). Statements, run by :meth:`Store.critical_path_stats`:

1. :func:`entities_sql` fills a scratch ``Memory`` table with the selected traces'
   entities, each resolved per trace with arrays (its parent if in the trace, else the
   virtual root; its end, ``t1`` while in progress; the trace's span) and numbered: an
   entity's ``g`` is its trace's number times 2^32 plus its rank in the trace by the
   walk's order (end, start, id), so one integer both keys it and orders its siblings;
   ``pg`` is its parent's ``g`` (the virtual root's is the trace's number times 2^32).
2. :func:`walk_sql`, a recursive query, walks every trace's path at once: each step,
   every entity on the path picks its next child - the latest-ending one (the greatest
   ``g``) below the last it picked that ends within its window and by its current
   point - which becomes a path entry (with its clamped window and its service, passed
   down from the nearest segment within 64 levels) while the parent's current point
   moves to the child's start. Steps stop when no entity picks. The children are read
   from a ``Join`` table (:func:`children_sql`) whose hash table every step reuses.
3. :func:`entries_sql` gives each path entry its critical time (its window minus the
   sum of its path children's, per parent). For the set, :func:`traces_sql` gathers
   them per trace into a scratch table and :func:`aggregate_sql` sums them per entry
   key (service, name, operation): per key its mean over all traces, over the traces
   around the median duration (between the set's p40 and p60) and over the slowest (at
   or above its p99), the quantiles computed once.

Cost grows with the selected traces' entities and the longest chain of path entries;
traces with more than ``max_entities`` entities are left out (the caller counts them).
"""

from __future__ import annotations

__all__ = [
    "aggregate_sql",
    "children_sql",
    "entities_sql",
    "entries_sql",
    "traces_sql",
    "walk_sql",
]

_TRACE = 4294967296
"""A trace's entities are numbered from its number times this (2^32)."""


def entities_sql(db: str, where_clause: str) -> str:
    """The entity rows of the selected traces: ``trace_id id g pg s e seg name op t0
    t1``. Parameters: ``tlo thi`` (UInt32, the ``ts`` range), ``start end`` (Float64:
    the traces' start), ``max_entities``."""
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
    # by: the indexes in the walk's order; rank: each index's place in it (its inverse)
    q = f"""
SELECT *, arraySort((j, i) -> i, arrayEnumerate(by), by) AS rank
FROM (SELECT *, arraySort((i, e, s, d) -> (e, s, d), arrayEnumerate(ids), E, S, ids) AS by
      FROM (SELECT *, arrayMap((e, s, o) -> if(o = 1, t1, greatest(e, s)), E0, S, O) AS E
            FROM ({q})))"""
    return f"""
SELECT trace_id, id, tn + r AS g, tn + pr AS pg, s, e, seg, name, op, t0, t1
FROM (
  SELECT trace_id, t0, t1, ids, S, E, segs, names, ops, rank,
         arrayMap(u -> if(u = 0, 0, rank[u]), up) AS ranks_up,
         (rowNumberInAllBlocks() + 1) * {_TRACE} AS tn  -- one counter for all threads
  FROM ({q}))
ARRAY JOIN ids AS id, rank AS r, ranks_up AS pr, S AS s, E AS e, segs AS seg, names AS name,
           ops AS op"""


def walk_sql(table: str, children: str) -> str:
    """The path entries of every trace in ``table`` (rows of :func:`entities_sql`):
    ``node lo hi parent svc`` (``node`` and ``parent`` are ``g`` numbers). ``children``:
    :func:`children_sql`'s rows in a ``Join(ALL, INNER, pg)`` table, whose hash table
    every step reuses instead of building its own. A row's ``hops`` counts the levels
    from its service's segment (64: none), ``last`` is the ``g`` it picked last."""
    none = "toUInt64(18446744073709551615)"
    return f"""
WITH RECURSIVE walk AS (
  SELECT intDiv(g, {_TRACE}) * {_TRACE} AS node, any(t0) AS lo, any(t1) AS hi, any(t1) AS cur,
         {none} AS last, toUInt8(0) AS entry, toUInt64(0) AS parent, '' AS svc,
         toUInt8(64) AS hops
  FROM {table} GROUP BY node
  UNION ALL
  SELECT x.1 AS node, x.2 AS lo, x.3 AS hi, x.4 AS cur, x.5 AS last, x.6 AS entry,
         x.7 AS parent, x.8 AS svc, x.9 AS hops
  FROM (SELECT arrayJoin([
          (w_node, w_lo, w_hi, cs, best, toUInt8(0), toUInt64(0), w_svc, w_hops),
          (best, cs, ce, ce, {none}, toUInt8(1), w_node, c_svc, c_hops)]) AS x
  FROM (
    SELECT w.node AS w_node, any(w.lo) AS w_lo, any(w.hi) AS w_hi, any(w.svc) AS w_svc,
           any(w.hops) AS w_hops, max(c.g) AS best,
           argMax(c.e, c.g) AS c_e, argMax(c.s, c.g) AS c_s, argMax(c.seg, c.g) AS c_seg,
           toString(argMax(c.name, c.g)) AS c_name,
           least(c_e, w_hi) AS ce, least(greatest(c_s, w_lo), ce) AS cs,
           if(c_seg = 1, c_name, if(w_hops < 64, w_svc, '')) AS c_svc,
           if(c_seg = 1, toUInt8(0), toUInt8(least(w_hops + 1, 64))) AS c_hops
    FROM walk AS w INNER JOIN {children} AS c ON c.pg = w.node
    WHERE least(c.e, w.hi) > w.lo AND least(c.e, w.hi) <= w.cur AND c.g < w.last
    GROUP BY w.node
  ))
)
SELECT node, lo, hi, parent, svc FROM walk WHERE entry = 1"""


def children_sql(table: str) -> str:
    """The columns of ``table`` (rows of :func:`entities_sql`) a walk step reads from a
    child, for a ``Join(ALL, INNER, pg)`` table."""
    return f"SELECT pg, g, s, e, seg, name FROM {table}"


def _critical(table: str, path: str) -> str:
    """Each path entry of ``path`` (rows of :func:`walk_sql`) with its critical time and
    its entity's row of ``table``: ``trace_id id tn service name operation lo hi critical
    dur``."""
    return f"""
SELECT t.trace_id AS trace_id, t.id AS id, intDiv(p.node, {_TRACE}) AS tn,
       p.svc AS service, t.name AS name, t.op AS operation, p.lo AS lo, p.hi AS hi,
       greatest(p.hi - p.lo - k.covered, 0) AS critical, t.t1 - t.t0 AS dur
FROM {path} AS p
LEFT JOIN (SELECT parent, sum(hi - lo) AS covered FROM {path} GROUP BY parent) AS k
  ON k.parent = p.node
INNER JOIN {table} AS t ON t.g = p.node"""


def entries_sql(table: str, path: str) -> str:
    """Each path entry with its key, window and critical time: ``trace_id id service name
    operation lo hi critical dur``; ``path`` holds :func:`walk_sql`'s rows."""
    return f"""
SELECT trace_id, id, service, name, operation, lo, hi, critical, dur
FROM ({_critical(table, path)})"""


def traces_sql(table: str, path: str) -> str:
    """One row per trace with a path: ``tn dur keys crits`` (its entries' keys and
    critical times, aligned); ``path`` holds :func:`walk_sql`'s rows."""
    return f"""
SELECT tn, any(dur) AS dur, groupArray((service, name, operation)) AS keys,
       groupArray(critical) AS crits
FROM ({_critical(table, path)}) GROUP BY tn"""


def aggregate_sql(traces: str) -> str:
    """One row per entry key over the set in ``traces`` (rows of :func:`traces_sql`;
    parameter ``slowest``: a quantile of the traces' durations, only the traces at or
    above it count; 0 for all): ``service name operation traces mean at_p50 at_p99
    set_traces set_p50_traces set_p99_traces p50 p99``."""
    chosen = (
        f"SELECT tn, dur, keys, crits FROM {traces} "
        f"WHERE dur >= (SELECT quantileExact({{slowest:Float64}})(dur) FROM {traces})"
    )
    figures = f"""
SELECT q40, q50, q60, q99, total, arrayCount(d -> d >= q40 AND d <= q60, ds) AS n50,
       arrayCount(d -> d >= q99, ds) AS n99
FROM (SELECT quantileExact(0.4)(dur) AS q40, quantileExact(0.5)(dur) AS q50,
             quantileExact(0.6)(dur) AS q60, quantileExact(0.99)(dur) AS q99,
             count() AS total, groupArray(dur) AS ds
      FROM ({chosen}))"""
    return f"""
SELECT k.1 AS service, k.2 AS name, k.3 AS operation, uniqExact(tn) AS traces,
       sum(c) / any(total) AS mean,
       sumIf(c, dur >= q40 AND dur <= q60) / any(n50) AS at_p50,
       sumIf(c, dur >= q99) / any(n99) AS at_p99,
       any(total) AS set_traces, any(n50) AS set_p50_traces, any(n99) AS set_p99_traces,
       any(q50) AS p50, any(q99) AS p99
FROM ({chosen}) AS t CROSS JOIN ({figures}) AS f
ARRAY JOIN keys AS k, crits AS c
GROUP BY k
ORDER BY at_p99 DESC, mean DESC, service, name, operation"""
