"""Run a seeded stream of documents through the ingest merge and print what it writes.

``python -m tests.ingest.nativediff compiled|pure SEED [OTLP|datagrams]``: ``pure`` imports every module
of :data:`fluoroscope.native.COMPILED` from its source even where a C extension was
built; ``compiled`` imports them as Python would (the extensions). Prints one JSON
object: which modules ran compiled, and per batch and table the SHA-256 of the Arrow
IPC stream ``encode_batch`` makes of it, after one of validate_document's verdicts on
the stream and on a copy of each document with one field changed. With ``OTLP`` (a file
of OTLP/protobuf requests, each after its 4-byte little-endian length), the SHA-256 of
what translating each request makes instead: its documents' JSON (a cause's random id
left out) and its rejections. With ``datagrams``, the SHA-256 of what the UDP receiving
child makes of each of a seeded mix of good and malformed datagrams. Used by
``tests/ingest/test_native.py``.

The stream is the ingest benchmark's traffic mix with what makes merging hard mixed in:
in-progress copies sent before the complete ones, subsegments sent on their own,
re-sent documents, batches in shuffled order, and a trace cache small enough that
traces are evicted and reloaded from a real store.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import random
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from fluoroscope.native import COMPILED


class _SourceFirst(importlib.abc.MetaPathFinder):
    """Finds the modules of COMPILED as sources, never as extensions."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in COMPILED or not path:
            return None
        source = Path(path[0]) / (fullname.rsplit(".", 1)[1] + ".py")
        loader = importlib.machinery.SourceFileLoader(fullname, str(source))
        return importlib.util.spec_from_file_location(fullname, source, loader=loader)


def _variants(rng: random.Random, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``docs`` as a client may send them: some in progress first, some subsegments on
    their own, some twice."""
    out: list[dict[str, Any]] = []
    for doc in docs:
        roll = rng.random()
        if roll < 0.2:  # an in-progress copy first
            early = copy.deepcopy(doc)
            early.pop("end_time", None)
            early.pop("subsegments", None)
            early["in_progress"] = True
            out.append(early)
        if roll > 0.85 and doc.get("subsegments"):  # a subsegment streamed on its own
            whole = copy.deepcopy(doc)
            child = whole["subsegments"].pop()
            child.update(type="subsegment", trace_id=doc["trace_id"], parent_id=doc["id"])
            out.append(child)
            out.append(whole)
            continue
        out.append(doc)
        if rng.random() < 0.1:
            out.append(copy.deepcopy(doc))  # re-sent
    return out


def _translations(path: Path) -> list[str]:
    """SHA-256 of each request's translation in the file at ``path``."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from fluoroscope.ingest.otlp.translate import Translator

    data = path.read_bytes()
    translator = Translator()
    digests: list[str] = []
    at = 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "little")
        body = data[at + 4 : at + 4 + size]
        at += 4 + size
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for source in (None, body):  # attributes from the message, then from the bytes
            out = translator.translate(message, data=source)
            for doc in out.documents:
                for exception in doc.get("cause", {}).get("exceptions", []):
                    exception.pop("id", None)  # random
            made = orjson.dumps([out.documents, out.rejected, out.errors])
            digests.append(hashlib.sha256(made).hexdigest())
    return digests


def _datagrams(seed: int) -> list[str]:
    """SHA-256 of what the UDP receiving child makes of each of a seeded mix of good and
    malformed datagrams (its body or refusal, the trace id it routes by, the shard for
    2 to 5 workers), then of its counters."""
    from benchmarks.ingest import make_trace

    from fluoroscope.ingest.shards import shard_of, trace_id_of
    from fluoroscope.ingest.udp import DatagramScreen

    rng = random.Random(seed)
    headers = (b'{"format":"json","version":1}', b'{"version": 1, "format": "JSON"}',
               b'{"format":"json","version":2}', b"{", b"", b'"x"', b" ")  # fmt: skip
    screen = DatagramScreen()
    digests: list[str] = []
    for index in range(3_000):
        body = orjson.dumps(rng.choice(make_trace(rng, 1_800_000_000.0 + index)))
        roll = rng.random()
        if roll < 0.1:  # a trace id moved, nested or escaped
            body = body.replace(b'"trace_id"', rng.choice([b'"trace_id" ', b'"a":{"trace_id":"1"},"trace_id"', b'"trace\\u005fid"']), 1)  # fmt: skip
        elif roll < 0.15:
            body = rng.randbytes(rng.randrange(40))
        elif roll < 0.17:
            body = b" \t\n" * rng.randrange(3)
        elif roll < 0.18:
            body = b"x" * (64 * 1024 + rng.randrange(2))
        header = headers[0] if rng.random() < 0.8 else rng.choice(headers)
        data = header + b"\n" + body if rng.random() < 0.97 else body.replace(b"\n", b"")
        kept = screen.body(data)
        trace = trace_id_of(kept) if kept is not None else b""
        made = [kept, trace, [shard_of(trace, shards) for shards in (2, 3, 4, 5)]]
        digests.append(hashlib.sha256(repr(made).encode()).hexdigest())
    digests.append(hashlib.sha256(orjson.dumps(dict(sorted(screen.counters.items())))).hexdigest())
    return digests


_EDGES: list[Any] = [None, "", "  ", "x" * 201, 5, 1.5, -1.0, 1e11, 1_799_999_990, True, [],
                     {}, "0123456789ABCDEF", "fedcba9876543210", "subsegment",
                     {"response": {"status": 1000}}, {"k": [1]}, [{"name": "x"}]]  # fmt: skip
_FIELDS = ["name", "id", "start_time", "end_time", "in_progress", "error", "trace_id", "type",
           "parent_id", "http", "annotations", "cause", "subsegments", "metadata"]  # fmt: skip


def _verdicts(rng: random.Random, docs: list[dict[str, Any]], now: float) -> str:
    """The SHA-256 of validate_document's verdicts (code, message, document id) on
    ``docs`` and on a copy of each with one field of it or of a subsegment changed to
    an edge value or removed."""
    from fluoroscope.model.documents import validate_document
    from fluoroscope.model.errors import InvalidDocument

    verdicts: list[Any] = []
    for doc in docs:
        bad = copy.deepcopy(doc)
        entity = rng.choice([bad, *bad.get("subsegments", [])])
        key = rng.choice(_FIELDS)
        if rng.random() < 0.2:
            entity.pop(key, None)
        else:
            entity[key] = rng.choice(_EDGES)
        for one in (doc, bad):
            try:
                validate_document(one, now=now, max_age=86_400.0, raw=orjson.dumps(one))
                verdicts.append(None)
            except InvalidDocument as exc:
                verdicts.append([exc.code, exc.message, exc.doc_id])
    return hashlib.sha256(orjson.dumps(verdicts)).hexdigest()


def main(argv: list[str]) -> None:
    mode, seed = argv[0], int(argv[1])
    if mode == "pure":
        sys.meta_path.insert(0, _SourceFirst())
    if argv[2:] == ["datagrams"]:
        made = _datagrams(seed)
        print(orjson.dumps({"compiled": _loaded_compiled(), "digests": made}).decode())
        return
    if len(argv) > 2:
        made = _translations(Path(argv[2]))
        print(orjson.dumps({"compiled": _loaded_compiled(), "digests": made}).decode())
        return
    # imported once the finder is in place: each of them imports compiled modules
    import pyarrow as pa
    from benchmarks.ingest import make_trace  # the benchmark's traffic mix

    from fluoroscope.ingest.assemble import Assembler
    from fluoroscope.store.encode import encode_batch
    from fluoroscope.store.store import Store

    rng = random.Random(seed)
    now = 1_800_000_000.0
    docs: list[dict[str, Any]] = []
    order: list[tuple[float, int]] = []
    for i in range(1_500):
        for doc in _variants(rng, make_trace(rng, now - 30 + i * 0.02)):
            # a sixth of the documents arrive up to ~5 batches late: their traces
            # are evicted in between and reloaded from the store
            late = rng.uniform(0, 1_000) if rng.random() < 0.16 else 0.0
            order.append((len(docs) + late, len(docs)))
            docs.append(doc)
    docs = [docs[i] for _, i in sorted(order)]
    verdicts = _verdicts(random.Random(seed), docs, now)
    batches = [docs[i : i + 200] for i in range(0, len(docs), 200)]
    tail = batches[2:]
    rng.shuffle(tail)  # late batches in another order: merged out of arrival order
    batches[2:] = tail
    digests: list[tuple[int, str, int, str]] = [(-1, "verdicts", len(docs), verdicts)]
    with tempfile.TemporaryDirectory(prefix="fluoroscope-nativediff-") as tmp:
        store = Store.open("chdb", Path(tmp), 30)
        try:
            assembler = Assembler(store, capacity=300, clock=lambda: now, outcome_rows=True)
            assembler.track_contributions = True
            for index, batch in enumerate(batches):
                tables = encode_batch(assembler.assemble(batch))
                for name, table in tables:
                    sink = pa.BufferOutputStream()
                    with pa.ipc.new_stream(sink, table.schema) as writer:
                        writer.write_table(table)
                    digest = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
                    digests.append((index, name, table.num_rows, digest))
                store.insert_tables(tables)
            reloaded = assembler.counters["reloaded_traces"]
        finally:
            store.close()
    print(
        orjson.dumps(
            {"compiled": _loaded_compiled(), "digests": digests, "reloaded": reloaded}
        ).decode()
    )


def _loaded_compiled() -> dict[str, bool]:
    """For each module of COMPILED (imported now if the run did not): whether this
    process loaded it from an extension."""
    return {
        name: isinstance(importlib.import_module(name).__loader__,
                         importlib.machinery.ExtensionFileLoader)
        for name in COMPILED
    }  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
