"""Root-cause positions and ``rootcause.json`` against the real embedded store.

Trace summaries with generated root causes are written through ``Store.write``; the
positions derived in SQL (``fluoroscope.query.causes``) must equal the positions in the
model's lists, and every root cause rendered by GetTraceSummaries' renderer, pasted
back as ``rootcause.json``, must find its trace.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluoroscope.model.ids import new_trace_id
from fluoroscope.model.summary import CauseEntity, RootCause, ServiceId, TraceSummary
from fluoroscope.query import causes
from fluoroscope.query.compile import filter_condition
from fluoroscope.query.filter import MAX_LENGTH
from fluoroscope.server.xray import render_summary
from fluoroscope.store.batch import WriteBatch
from fluoroscope.store.store import Store

NOW = float(int(time.time()))  # inside the retention TTL
_names = st.sampled_from(["api", "db", "Auth", "deserialize", "x y"])
_exceptions = st.lists(st.tuples(_names, st.sampled_from(["", "boom", "bad json"])), max_size=3)
_entities = st.builds(
    CauseEntity,
    _names,
    _exceptions.map(tuple),
    st.booleans(),
    st.one_of(st.none(), st.sampled_from([0.25, 0.5, 1.0])),
)


@st.composite
def _summaries(draw: st.DrawFn) -> TraceSummary:
    services = [ServiceId("api", "AWS::EC2::Instance", "123"), ServiceId("db", "", "")]

    def cause_list() -> list[RootCause]:
        return draw(
            st.lists(
                st.builds(
                    RootCause,
                    st.integers(0, len(services) - 1),
                    st.lists(_entities, min_size=1, max_size=4).map(tuple),
                    st.booleans(),
                ),
                max_size=3,
            )
        )

    has_fault, has_error = draw(st.booleans()), draw(st.booleans())

    def impacting(causes: list[RootCause], flag: bool) -> list[RootCause]:
        # as model.rootcause derives it: the root segment carries the fault (error)
        return [RootCause(c.service, c.path, c.inferred, flag) for c in causes]

    return TraceSummary(
        id=new_trace_id(NOW),
        start_time=NOW,
        duration=1.0,
        response_time=1.0,
        has_fault=has_fault,
        has_error=has_error,
        has_throttle=False,
        is_partial=False,
        http=None,
        revision=1,
        services=services,
        entry_point=0,
        fault_root_causes=impacting(cause_list(), has_fault),
        error_root_causes=impacting(cause_list(), has_error),
        response_time_root_causes=impacting(cause_list(), True),
    )


@pytest.fixture(scope="module")
def shared_store(chdb_dir: Path) -> Iterator[Store]:
    store = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    yield store
    store.close()


def _write(store: Store, summary: TraceSummary) -> None:
    batch = WriteBatch()
    batch.add_summary(int(NOW), summary)
    store.write(batch)


def _expected(summary: TraceSummary) -> dict[str, Any]:
    """Per rc_* item, in write order: index and last; and per cause its chunk lengths."""
    out: dict[str, Any] = {"i": [], "z": [], "n": []}

    def item(index: int, last: bool) -> None:
        out["i"].append(float(index))
        out["z"].append(int(last))

    for group in (
        summary.fault_root_causes,
        summary.error_root_causes,
        summary.response_time_root_causes,
    ):
        for cause in group:
            item(0, True)
            for e, entity in enumerate(cause.path):
                item(e, e == len(cause.path) - 1)
                for x in range(len(entity.exceptions)):
                    item(x, x == len(entity.exceptions) - 1)
            out["n"].append([1] + [1 + len(entity.exceptions) for entity in cause.path])
    return out


@settings(max_examples=25)
@given(_summaries())
def test_positions_derived_in_sql_match_the_model(
    shared_store: Store, summary: TraceSummary
) -> None:
    _write(shared_store, summary)
    table = shared_store._t.query_arrow(
        f"SELECT {causes.INDEX} AS i, {causes.LAST} AS z, "
        f"arrayMap(c -> arrayMap(ch -> length(ch), c), {causes.NESTED}) AS n "
        f"FROM {shared_store._db}.traces FINAL WHERE trace_id = {{id:String}}",
        {"id": summary.id},
    )
    (row,) = table.to_pylist()
    assert row == _expected(summary)


def _matches(store: Store, summary: TraceSummary, expression: str) -> bool:
    condition = filter_condition(f"({expression}) AND http.url = {json.dumps(summary.id)}")
    page = store.summaries(
        NOW - 60, NOW + 60, where_clause=condition.sql, where_params=condition.params
    )
    return [s.id for s in page.summaries] == [summary.id]


@settings(max_examples=25)
@given(_summaries())
def test_every_rendered_root_cause_pasted_back_finds_its_trace(
    shared_store: Store, summary: TraceSummary
) -> None:
    from fluoroscope.model.summary import HttpSummary

    summary.http = HttpSummary(url=summary.id)  # a per-example key to find it by
    _write(shared_store, summary)
    shaped = render_summary(summary)
    rendered = [
        c
        for key in ("FaultRootCauses", "ErrorRootCauses", "ResponseTimeRootCauses")
        for c in shaped[key]
    ]
    for cause in rendered:
        assert _matches(shared_store, summary, f"rootcause.json = #{json.dumps([cause])}")
    everything = json.dumps(rendered)
    if rendered and len(everything) < MAX_LENGTH - 100:
        assert _matches(shared_store, summary, f"rootcause.json = #{everything}")
        (cause := json.loads(json.dumps(rendered[0])))["Services"][0]["Name"] = "nobody"
        assert not _matches(shared_store, summary, f"rootcause.json = #{json.dumps([cause])}")
