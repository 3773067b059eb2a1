"""``rollup`` makes the same ``graph_stats`` rows, in the same order and types, as the
way before it (a table per kind and step, kept here frozen as the reference)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given
from hypothesis import strategies as st

from fluoroscope.store.encode import encode_batch
from fluoroscope.store.graphstats import GRAPH_STEPS, _graph_keys, rollup

_STATS = ("total", "ok", "errors", "throttles", "faults", "response_time", "first_start",
          "last_end", "histogram")  # fmt: skip


def _reference(tables: dict[str, pa.Table]) -> pa.Table | None:
    """``graphstats.rollup`` before a table per kind replaced a table per kind and step."""
    parts: list[pa.Table] = []
    for name, kind in (("node_stats", 0), ("edge_stats", 1)):
        table = tables.get(name)
        if table is None or table.num_rows == 0:
            continue
        n = table.num_rows
        keys = _graph_keys(table, kind)
        minute = table.column("minute").cast(pa.uint32())
        for step in GRAPH_STEPS:
            bucket = pc.multiply(pc.divide(minute, pa.scalar(step, pa.uint32())), step)
            columns = {
                "step": pa.array([step] * n, pa.uint32()),
                "bucket": bucket.cast(pa.uint32()),
                "kind": pa.array([kind] * n, pa.uint8()),
                **keys,
                **{stat: table.column(stat) for stat in _STATS},
            }
            parts.append(pa.table(columns))
    if not parts:
        return None
    return pa.concat_tables(parts)


_NAMES = st.sampled_from(["api", "db", "", "naïve ✓", "s3"])
_ROW = st.fixed_dictionaries(
    {
        "minute": st.integers(0, 2**32 - 1).map(lambda m: m // 60 * 60),
        "a": _NAMES, "b": _NAMES, "c": _NAMES, "d": _NAMES,
        "flag": st.integers(0, 1),
        "total": st.integers(0, 10**6),
        "time": st.floats(0, 1e6, allow_nan=False),
        "histogram": st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 99)), max_size=3),
    }
)  # fmt: skip


def _stats(rows: list[dict[str, object]], kind: str) -> pa.Table:
    def text(key: str) -> pa.Array:
        return pa.array([r[key] for r in rows], pa.string())

    def flag(flip: int) -> pa.Array:
        return pa.array([flip ^ int(str(r["flag"])) for r in rows], pa.uint8())

    keys = (
        {"name": text("a"), "type": text("b"), "is_root": flag(0), "inferred": flag(1)}
        if kind == "node"
        else {"src_name": text("a"), "src_type": text("b"), "dst_name": text("c"),
              "dst_type": text("d")}
    )  # fmt: skip
    return pa.table(
        {
            "minute": pa.array([r["minute"] for r in rows], pa.uint32()),
            **keys,
            **{s: pa.array([r["total"] for r in rows], pa.int64())
               for s in ("total", "ok", "errors", "throttles", "faults")},
            **{s: pa.array([r["time"] for r in rows], pa.float64())
               for s in ("response_time", "first_start", "last_end")},
            "histogram": pa.array([r["histogram"] for r in rows], pa.map_(pa.uint32(), pa.int64())),
        }
    )  # fmt: skip


@given(
    nodes=st.lists(st.lists(_ROW, max_size=4), max_size=3),
    edges=st.lists(st.lists(_ROW, max_size=4), max_size=3),
)
def test_rollup_makes_the_rows_the_table_per_step_made(
    nodes: list[list[dict[str, object]]], edges: list[list[dict[str, object]]]
) -> None:
    """Property, over minute tables of any rows in any chunks (a round's batches)."""
    tables: dict[str, pa.Table] = {}
    for name, kind, chunks in (("node_stats", "node", nodes), ("edge_stats", "edge", edges)):
        if chunks:
            tables[name] = pa.concat_tables([_stats(rows, kind) for rows in chunks])
    got, want = rollup(tables), _reference(tables)
    if want is None:
        assert got is None
        return
    assert got is not None
    assert got.schema == want.schema
    assert got.to_pylist() == want.to_pylist()


def test_a_batchs_own_minute_tables_roll_up_as_before() -> None:
    from fluoroscope.ingest.assemble import Assembler
    from tests.support import segment

    class _NoReloads:
        def load_traces(self, trace_ids: object) -> dict[str, object]:
            return {}

    docs = [segment(name=n, http={"response": {"status": s}}) for n, s in
            (("api", 200), ("api", 503), ("db", 429))]  # fmt: skip
    tables = dict(encode_batch(Assembler(_NoReloads(), outcome_rows=True).assemble(docs)))  # type: ignore[arg-type]
    assert "node_stats" in tables
    got, want = rollup(tables), _reference(tables)
    assert got is not None and want is not None
    assert got.to_pylist() == want.to_pylist()
