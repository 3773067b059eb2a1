"""A ``stats`` that reads only the rows where a ``parse`` found its text.

When every aggregate of a ``stats`` ignores missing values and reads a field a
``parse`` made, the rows where the parse's pieces of text do not occur add nothing to
any aggregate: the compiler (:mod:`fluoroscope.query.insights.compile`) adds that
condition - a substring test per row, far cheaper than the whole pipeline - and
:func:`grouped` adds back the groups only the other rows hold (an empty time bin keeps
its row, with its aggregates over missing values). Pure.
"""

from __future__ import annotations

from collections.abc import Sequence

from fluoroscope.query.insights import ast

__all__ = ["IGNORE_MISSING", "MISSING", "field_names", "grouped"]

IGNORE_MISSING = frozenset(
    {"count", "count_distinct", "sum", "avg", "stddev", "min", "max", "pct", "percentile"}
)
"""The aggregates whose value ignores the rows where their argument is missing
(``count`` with a field argument; ``count(*)`` counts every row)."""

MISSING = "CAST(NULL AS Nullable(String))"
"""A missing value of a parsed field."""


def field_names(node: object) -> set[str]:
    """The names of every field the tree (or tuple of trees) reads."""
    if isinstance(node, ast.Field):
        return {node.name}
    if isinstance(node, tuple):
        return set().union(*(field_names(item) for item in node))
    if isinstance(node, ast.Node):
        return set().union(
            *(
                field_names(getattr(node, name))
                for name in node.__dataclass_fields__
                if name not in ("start", "end")
            )
        )
    return set()


def grouped(
    source: str,
    where: str,
    needed: str,
    by: Sequence[str],
    aggs: Sequence[str],
    empty: Sequence[str],
) -> str:
    """The ``stats`` SELECT, columns ``c0``...: the ``by`` values then the ``aggs``,
    grouped by the ``by`` values, over ``source`` (a FROM text) filtered by ``where``
    (a `` WHERE ...`` text, may be empty), aggregating only the rows that meet
    ``needed``. ``by`` must not be empty. A group only rows failing ``needed`` hold
    gets the ``empty`` values (each aggregate over one missing value), found by a
    second pass that reads only what ``by`` and ``where`` read."""
    only = f"{where} AND ({needed})" if where else f" WHERE {needed}"
    keys = ", ".join(f"k{i}" for i in range(len(by)))
    by_select = ", ".join(f"{text} AS k{i}" for i, text in enumerate(by))
    found = ", ".join(f"{text} AS a{i}" for i, text in enumerate(aggs))
    missing = ", ".join(f"{text} AS a{i}" for i, text in enumerate(empty))
    values = f"tuple({', '.join(f'a{i}' for i in range(len(aggs)))})"
    picked = ", ".join(
        f"tupleElement(argMax({values}, hit), {i + 1}) AS c{len(by) + i}" for i in range(len(aggs))
    )
    # the rows meeting ``needed`` (hit 1) win over the groups' missing values (hit 0)
    return (
        f"SELECT {', '.join(f'k{i} AS c{i}' for i in range(len(by)))}, {picked} FROM ("
        f"SELECT {by_select}, {found}, 1 AS hit FROM {source}{only} GROUP BY {keys} "
        f"UNION ALL SELECT {keys}, {missing}, 0 AS hit FROM (SELECT {by_select} FROM "
        f"{source}{where} GROUP BY {keys}) GROUP BY {keys}) GROUP BY {keys}"
    )
