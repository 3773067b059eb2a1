"""id(account.id: ...) filters on summaries written before and after the accounts column."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

import fluoroscope.store.batch as batch_module
from fluoroscope.ingest.assemble import Assembler
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.query.compile import filter_condition
from fluoroscope.store.encode import encode_batch
from fluoroscope.store.schema import MIGRATIONS, migrate
from fluoroscope.store.store import Store
from fluoroscope.store.transport import ChdbTransport
from tests.support import old_schema

ACCOUNT = "123456789012"


def _segment(now: float, name: str, account: str | None, **extra: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "name": name, "id": new_entity_id(), "trace_id": new_trace_id(now),
        "start_time": now, "end_time": now + 0.1, **extra,
    }  # fmt: skip
    if account is not None:
        doc["aws"] = {"account_id": account}
    return doc


def _matching(store: Store, expression: str, now: float) -> set[str]:
    condition = filter_condition(expression)
    page = store.summaries(
        now - 60, now + 60, limit=100, where_clause=condition.sql, where_params=condition.params
    )
    return {s.id for s in page.summaries}


def test_rows_from_before_the_accounts_column_still_match(
    chdb_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store last written by a server at schema 5 (no ``service_accounts`` column):
    after the upgrade its rows are matched through their details, new rows through the
    column, with the same answers."""
    transport = ChdbTransport(chdb_dir / "chdb")
    db = old_schema(transport, before=6)
    old_store = Store(transport, db)
    now = time.time()
    old_ours = _segment(now, "api", ACCOUNT, fault=True)
    old_theirs = _segment(now, "api", "999999999999", fault=True)
    old_ok = _segment(now, "api", ACCOUNT)
    with monkeypatch.context() as patched:  # details as a schema-5 server wrote them: whole
        patched.setattr(batch_module, "encode_details", orjson.dumps)
        batch = Assembler(old_store).assemble([old_ours, old_theirs, old_ok])
    for name, table in encode_batch(batch):
        if name == "traces":  # as a schema-5 server wrote them: the columns it knew
            table = table.drop_columns(["service_accounts"])
        transport.insert_arrow(f"`{db}`.{name}", table)

    assert migrate(transport, db, 30) == [v for v, _, _ in MIGRATIONS if v >= 6]
    store = Store(transport, db)
    new_ours = _segment(now, "worker", ACCOUNT, fault=True)
    new_none = _segment(now, "worker", None, fault=True)
    store.write(Assembler(store).assemble([new_ours, new_none]))

    expression = f'service(id(account.id: "{ACCOUNT}")) {{ fault }}'
    assert _matching(store, expression, now) == {old_ours["trace_id"], new_ours["trace_id"]}
    named = f'service(id(name: "worker", account.id: "{ACCOUNT}"))'
    assert _matching(store, named, now) == {new_ours["trace_id"]}
    assert _matching(store, 'service(id(account.id: "999999999999"))', now) == {
        old_theirs["trace_id"]
    }
    # the column is stored as written for new rows and computed for the old ones
    rows = transport.query_arrow(
        f"SELECT trace_id, service_accounts FROM `{db}`.traces FINAL ORDER BY trace_id"
    ).to_pylist()
    accounts = {row["trace_id"]: row["service_accounts"] for row in rows}
    assert accounts[old_ours["trace_id"]] == [ACCOUNT]
    assert accounts[new_ours["trace_id"]] == [ACCOUNT]
    assert accounts[new_none["trace_id"]] == [""]
