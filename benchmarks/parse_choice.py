"""Parsing a batch of segment documents: the parser ingest uses against the other native
parsers issue 21 named, on the same documents in the same run.

An ingest worker turns each datagram's JSON text into the dictionaries its compiled merge
reads (``orjson.loads``, then ``validate_document``, compiled: ``ingest/pipeline.py``
``_parse``), and frees them once the slice is encoded. Issue 21 asked for that choice to
be made by measurement among compiled parsers; this measures the candidates on the
ingest benchmark's traffic mix (``benchmarks/ingest.py`` ``make_trace``: ~1.2 KB and ~2.5
entities a document), each parsing the same texts and freeing what it made:

* ``orjson`` (the reference): ``orjson.loads`` alone, each document;
* ``today``: ``orjson.loads`` and ``validate_document`` (what the worker runs), each
  document;
* ``msgspec``: ``msgspec.json.Decoder`` into typed structs holding the fields the merge,
  the summaries and the statistics read (ids and names as text, times as floats, flags as
  booleans, the http block typed, annotations as a dict of scalars, nested subsegments),
  and the blocks nothing reads (``metadata``, ``sql``, ``service``) kept as raw JSON; its
  schema checks types only, so the id, trace id and time checks ``validate_document``
  also makes would come on top (a lower bound), and the merge would read attributes, not
  keys (rewriting the merge, which this does not time). Structs drop the keys they do not
  name, which ingest must keep: a document is stored and returned as sent, whatever keys
  it holds (msgspec has no field that collects unknown keys: its issue #490 is open);
* ``msgspec+keys``: ``msgspec`` and, to keep every key, the document decoded a second time
  as a dict of raw JSON values (``dict[str, msgspec.Raw]``: the top level only, so still
  a lower bound: a subsegment's unknown keys would need the same again);
* ``arrow``: ``pyarrow.json.read_json`` of the batch as newline-delimited JSON into one
  columnar table (its types inferred per batch, nested subsegments as nested lists of
  structs), in its own threads;
* ``polars``: ``polars.read_ndjson`` of the same text, when polars is installed.

msgspec and polars are not dependencies of the project: a candidate whose library is not
installed is skipped, with the command that installs it. Each round times every candidate
once (the order rotating), in process CPU time (every thread of this process, so a
parser's own threads count; other processes on a shared machine do not); the median of
``--rounds`` rounds is printed in µs a document with its ratio to ``orjson``.

Before the figures, each columnar candidate is checked the way ingest must hold: a batch
of good documents with one whose annotation has another type (a number where the others
hold text, which X-Ray accepts) must still yield every good document. Arrow's reader
refuses the whole batch; polars makes the text of every document's value, the number's
type lost; msgspec and ``today`` take each document alone.

Usage: ``python benchmarks/parse_choice.py [--docs 20000] [--batch 1000] [--rounds 7]``.
Never run by pytest.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import io
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pyarrow.json as pa_json

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ingest import make_trace
from fluoroscope.model.documents import validate_document

_RETENTION = 30 * 86_400
Parser = Callable[[list[bytes], bytes], None]
"""Parses a batch (its documents' texts, and the same as newline-delimited JSON), frees it."""


def _optional(name: str) -> Any | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _orjson(texts: list[bytes], ndjson: bytes) -> None:
    loads = orjson.loads
    parsed = [loads(text) for text in texts]
    del parsed


def _today(texts: list[bytes], ndjson: bytes) -> None:
    loads, validate, now = orjson.loads, validate_document, time.time()
    parsed = []
    for text in texts:
        doc = loads(text)
        validate(doc, now=now, max_age=_RETENTION, raw=text)
        parsed.append(doc)
    del parsed


def _arrow(texts: list[bytes], ndjson: bytes) -> None:
    table = pa_json.read_json(io.BytesIO(ndjson))
    del table


def _msgspec_decoder(msgspec: Any) -> Any:
    """A decoder into structs of the fields ingest reads (see the module's docstring)."""
    raw, struct = msgspec.Raw, msgspec.Struct
    empty = raw(b"")

    class Request(struct):  # type: ignore[misc, valid-type]
        method: str | None = None
        url: str | None = None
        client_ip: str | None = None
        user_agent: str | None = None
        x_forwarded_for: bool = False
        traced: bool = False

    class Response(struct):  # type: ignore[misc, valid-type]
        status: int | None = None
        content_length: int | None = None

    class Http(struct):  # type: ignore[misc, valid-type]
        request: Request | None = None
        response: Response | None = None

    class Entity(struct):  # type: ignore[misc, valid-type]
        id: str
        name: str
        start_time: float
        end_time: float | None = None
        trace_id: str | None = None
        parent_id: str | None = None
        type: str | None = None
        in_progress: bool = False
        namespace: str | None = None
        origin: str | None = None
        traced: bool = False
        error: bool = False
        fault: bool = False
        throttle: bool = False
        http: Http | None = None
        aws: dict[str, Any] | None = None
        annotations: dict[str, str | int | float | bool] | None = None
        user: str | None = None
        cause: Any = None
        precursor_ids: list[str] | None = None
        subsegments: list[Entity] | None = None
        service: Any = empty
        metadata: Any = empty
        sql: Any = empty

    # the types named in this function, resolved here: msgspec reads the annotations
    # (strings, under ``from __future__ import annotations``) in the module's namespace
    Http.__annotations__.update(request=Request | None, response=Response | None)
    Entity.__annotations__.update(
        http=Http | None, subsegments=list[Entity] | None, service=raw, metadata=raw, sql=raw
    )
    return msgspec.json.Decoder(Entity)


def _with_decoder(decoder: Any) -> Parser:
    decode = decoder.decode

    def parse(texts: list[bytes], ndjson: bytes) -> None:
        parsed = [decode(text) for text in texts]
        del parsed

    return parse


def _with_keys(decoder: Any, msgspec: Any) -> Parser:
    decode = decoder.decode
    members = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode

    def parse(texts: list[bytes], ndjson: bytes) -> None:
        parsed = [(decode(text), members(text)) for text in texts]
        del parsed

    return parse


def _with_polars(polars: Any) -> Parser:
    def parse(texts: list[bytes], ndjson: bytes) -> None:
        frame = polars.read_ndjson(io.BytesIO(ndjson))
        del frame

    return parse


def _mixed_types_check(name: str, parse: Callable[[bytes], Any]) -> str:
    """What ``name`` makes of a batch where one document's annotation is a number and the
    others' text."""
    good = b'{"id":"%d","annotations":{"tier":"pro"},"start_time":1.5}'
    odd = b'{"id":"9","annotations":{"tier":3},"start_time":2.5}'
    batch = b"\n".join([good % n for n in range(3)] + [odd]) + b"\n"
    try:
        result = parse(batch)
    except Exception as exc:  # the reader's own error type
        return f"refuses the whole batch ({type(exc).__name__}: {str(exc).splitlines()[0]})"
    return f"takes it, as {result}"


def _documents(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    now = time.time()
    texts: list[bytes] = []
    while len(texts) < count:
        texts.extend(orjson.dumps(doc) for doc in make_trace(rng, now))
    return texts[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000, help="documents parsed per call")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    msgspec, polars = _optional("msgspec"), _optional("polars")
    candidates: dict[str, Parser] = {"orjson": _orjson, "today": _today}
    if msgspec is not None:
        decoder = _msgspec_decoder(msgspec)
        candidates["msgspec"] = _with_decoder(decoder)
        candidates["msgspec+keys"] = _with_keys(decoder, msgspec)
    candidates["arrow"] = _arrow
    if polars is not None:
        candidates["polars"] = _with_polars(polars)
    for name, module in (("msgspec", msgspec), ("polars", polars)):
        if module is None:
            print(f"{name}: not installed, skipped (pip install {name})")

    print("one annotation of another type in a batch of four:")
    print(
        "  arrow:",
        _mixed_types_check(
            "arrow",
            lambda b: pa_json.read_json(io.BytesIO(b)).column("annotations").type,
        ),
    )
    if polars is not None:
        frame_of = polars.read_ndjson
        print(
            "  polars:",
            _mixed_types_check(
                "polars",
                lambda b: frame_of(io.BytesIO(b))["annotations"].struct.field("tier").to_list(),
            ),
        )

    texts = _documents(args.docs, seed=1)
    batches = [texts[at : at + args.batch] for at in range(0, len(texts), args.batch)]
    ndjsons = [b"\n".join(batch) + b"\n" for batch in batches]
    size = sum(map(len, texts)) / len(texts)
    print(
        f"{len(texts):,} documents of {size:,.0f} bytes on average, {len(batches)} batches of "
        f"{args.batch:,}, {args.rounds} rounds; load average {os.getloadavg()[0]:.1f}"
    )

    timings: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    gc.disable()  # as the ingest worker runs its rounds (ingest/heap.py)
    try:
        for round_no in range(args.rounds + 1):  # the first round warms up
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                parse = candidates[name]
                began = time.process_time()
                for batch, ndjson in zip(batches, ndjsons, strict=True):
                    parse(batch, ndjson)
                spent = time.process_time() - began
                if round_no:
                    timings[name].append(spent / len(texts) * 1e6)
            gc.collect()
    finally:
        gc.enable()

    reference = statistics.median(timings["orjson"])
    print(f"{'parser':13s} {'µs/doc (median)':>16s} {'min':>7s} {'max':>7s} {'/ orjson':>9s}")
    for name in names:
        values = timings[name]
        median = statistics.median(values)
        print(
            f"{name:13s} {median:16.2f} {min(values):7.2f} {max(values):7.2f} "
            f"{median / reference:9.2f}"
        )
    print(f"load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
