"""An insert round's batches reach the engine as the workers' Arrow streams joined as
bytes (:mod:`fluoroscope.store.arrowstreams`), not decoded and written again: the rows
stored are those of the decoded and concatenated tables, a malformed batch still fails
before it joins a round, and ``prepare`` sees the rounds with contributions."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.ingest.process import IngestProcess
from fluoroscope.ingest.udp import open_udp_socket
from fluoroscope.ingest.worker import BATCH_HEAD, decode_tables, encode_tables, table_streams
from fluoroscope.store.arrowstreams import ArrowStream, ArrowStreams, join_streams, read_stream
from fluoroscope.store.encode import CONTRIBUTIONS, encode_batch
from fluoroscope.store.store import Store
from tests.support import free_port, segment

_SERVICES = ("api", "worker", "db-proxy", "naïve ✓", "")


def _documents(rng: random.Random, count: int) -> list[dict[str, Any]]:
    docs = []
    for _ in range(count):
        name = rng.choice(_SERVICES) or "svc"
        fields: dict[str, Any] = {"name": name}
        if rng.random() < 0.5:
            fields["http"] = {"request": {"method": "GET", "url": "/" + "x" * rng.randrange(9)},
                              "response": {"status": rng.choice((200, 404, 503))}}  # fmt: skip
        if rng.random() < 0.3:
            fields["fault"] = True
        doc = segment(**fields)
        doc["start_time"] -= rng.random()
        if rng.random() < 0.5:  # inside its segment: a 1970 call's statistics row is past
            start = doc["start_time"]  # retention, and the engine's TTL drops it at any time
            doc["subsegments"] = [
                {"id": f"{rng.getrandbits(64):016x}", "name": rng.choice(_SERVICES) or "s3",
                 "start_time": start + 0.01, "end_time": start + 0.2, "namespace": "aws"}
            ]  # fmt: skip
        docs.append(doc)
    return docs


def _payload(store: Store, docs: list[dict[str, Any]], contributions: bool = False) -> bytes:
    """A ``BATCH`` frame's payload as a worker makes it from ``docs``."""
    assembler = Assembler(store, outcome_rows=True)
    assembler.track_contributions = contributions
    batch = assembler.assemble(docs)
    tables = encode_batch(batch)
    return b"".join([BATCH_HEAD.pack(len(docs), len(batch)), *encode_tables(tables)])


@pytest.fixture
def ingest(store: Store) -> Iterator[IngestProcess]:
    """An ingest side whose workers never start: its insert rounds are driven here."""
    sock = open_udp_socket("127.0.0.1", free_port())
    yield IngestProcess(store, sock, retention_seconds=86_400, workers=2)
    sock.close()


def _rows(store: Store, table: str) -> list[str]:
    """The rows of ``table``, in order, as text (NaN, as stored for quickest response
    times equal to the slowest, equal to itself)."""
    found = store.transport.query_arrow(f"SELECT * FROM {store.database}.{table} ORDER BY tuple(*)")
    return [repr(row) for row in found.to_pylist()]


@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(1, 12), min_size=1, max_size=4), seed=st.integers(0, 2**32))
def test_a_round_stores_the_rows_of_its_decoded_and_concatenated_batches(
    store: Store, ingest: IngestProcess, sizes: list[int], seed: int
) -> None:
    """Property: the rows the joined streams store equal those the tables decoded from
    the same payloads and concatenated store, table by table (``spans``, ``traces``,
    ``graph_stats`` rolled up from the minute statistics). The fixtures are shared by
    the examples: each empties the tables first."""
    rng = random.Random(seed)
    payloads = [_payload(store, _documents(rng, n)) for n in sizes]
    tables = ("spans", "traces", "graph_stats")
    db = store.database
    for name in tables:
        store.transport.execute(f"TRUNCATE TABLE {db}.{name}")
    ingest._insert(ingest._shards[rng.randrange(2)], payloads)
    assert ingest.counters["stored_documents"] > 0
    joined = {name: _rows(store, name) for name in tables}
    for name in tables:
        store.transport.execute(f"TRUNCATE TABLE {db}.{name}")
    by_name: dict[str, list[pa.Table]] = {}
    for payload in payloads:
        for name, table in decode_tables(payload):
            by_name.setdefault(name, []).append(table)
    store.insert_tables([(name, pa.concat_tables(parts)) for name, parts in by_name.items()])
    assert {name: _rows(store, name) for name in tables} == joined
    assert all(joined.values())


@settings(max_examples=25)
@given(sizes=st.lists(st.integers(0, 5), min_size=1, max_size=5), pad=st.integers(0, 7))
def test_joined_streams_decode_to_the_concatenated_tables(sizes: list[int], pad: int) -> None:
    """Property, without the engine: streams at any offset of their frame, empty ones
    included, join into one stream holding every row in order."""
    schema = pa.schema([("s", pa.string()), ("l", pa.list_(pa.uint16())), ("b", pa.binary())])
    tables = [
        pa.table(
            {
                "s": [f"{i}-{j}" * j for j in range(n)],
                "l": [[j] * j for j in range(n)],
                "b": [bytes([j]) * (j + i) for j in range(n)],
            },
            schema=schema,
        )
        for i, n in enumerate(sizes)
    ]
    framed = b"\0" * pad + b"".join(encode_tables([("spans", t) for t in tables]))
    streams = [read_stream(s) for _, s in table_streams(b"\0" * (BATCH_HEAD.size - pad) + framed)]
    joined = join_streams(streams)
    assert isinstance(joined, ArrowStreams) and joined.column_names == ["s", "l", "b"]
    assert joined.table().equals(pa.concat_tables(tables))


def test_streams_of_other_schemas_or_with_dictionaries_are_joined_decoded() -> None:
    def stream(table: pa.Table) -> ArrowStream:
        payload = BATCH_HEAD.pack(0, 0) + b"".join(encode_tables([("spans", table)]))
        return read_stream(table_streams(payload)[0][1])

    plain = pa.table({"k": pa.array([1, 2], pa.uint32())})
    described = plain.replace_schema_metadata({"from": "elsewhere"})
    joined = join_streams([stream(plain), stream(described)])
    assert isinstance(joined, pa.Table) and joined.column("k").to_pylist() == [1, 2, 1, 2]
    coded = pa.table({"k": pa.array(["a", "b"]).dictionary_encode()})
    other = pa.table({"k": pa.array(["c"]).dictionary_encode()})
    joined = join_streams([stream(coded), stream(other)])
    assert isinstance(joined, pa.Table) and joined.column("k").to_pylist() == ["a", "b", "c"]


@pytest.mark.parametrize("cut", [4, 12, -8, -1])
def test_a_malformed_batch_fails_before_it_joins_a_round(
    store: Store, ingest: IngestProcess, cut: int
) -> None:
    """As when it was decoded first: the hub's error (its worker is restarted), and
    nothing of the batch - nor of a good batch with it - stored or counted."""
    good = _payload(store, _documents(random.Random(1), 3))
    name, stream = table_streams(good)[0]
    raw = bytes(stream)
    broken = raw[:cut] + raw[cut + 4 :] if cut >= 0 else raw[:cut]
    bad = BATCH_HEAD.pack(3, 3) + b"".join(
        [len(name.encode()).to_bytes(2, "little"), name.encode(),
         len(broken).to_bytes(4, "little"), broken]
    )  # fmt: skip
    with pytest.raises((ValueError, pa.ArrowInvalid, OSError)):
        ingest._insert(ingest._shards[0], [good, bad])
    assert "stored_documents" not in ingest.counters
    assert _rows(store, "spans") == []


def test_prepare_sees_the_rounds_with_contributions_only(
    store: Store, ingest: IngestProcess
) -> None:
    """Contributions come while group statistics are kept; a round without them goes in
    as its streams, one with them is decoded and prepared."""
    seen: list[list[list[str]]] = []

    def prepare(batches: list[list[tuple[str, pa.Table]]]) -> list[list[tuple[str, pa.Table]]]:
        seen.append([[name for name, _ in tables] for tables in batches])
        return [[(n, t) for n, t in tables if n != CONTRIBUTIONS] for tables in batches]

    ingest.prepare = prepare
    rng = random.Random(2)
    ingest._insert(ingest._shards[0], [_payload(store, _documents(rng, 4))])
    assert seen == []
    ingest._insert(ingest._shards[1], [_payload(store, _documents(rng, 4), contributions=True)])
    assert len(seen) == 1 and CONTRIBUTIONS in seen[0][0] and "spans" in seen[0][0]
    assert ingest.counters["stored_documents"] == 8
    assert len(_rows(store, "spans")) >= 8
