"""The ingest worker process: parsing, merging and encoding, off the server's GIL.

Started by :class:`fluoroscope.ingest.process.IngestProcess` as ``python -m
fluoroscope.ingest.keepout fluoroscope.ingest.worker --shard I --shards N ...`` (numpy and
pandas kept out: :mod:`fluoroscope.ingest.keepout`), one per shard: worker
``I`` owns the traces :func:`~fluoroscope.ingest.shards.shard_of` gives ``I``. It runs a
:class:`~fluoroscope.ingest.pipeline.Pipeline` whose store is the server at the other end
of its pipes: each batch leaves as Arrow IPC tables, and the server inserts them. The
engine stays in the server process (a chDB data path opens in one process only).

Frames (:mod:`fluoroscope.ingest.frames`), worker -> server on stdout:

* ``BATCH``: ``<I I`` documents, entities; then per table ``<H`` name length, name,
  ``<I`` IPC length, an Arrow IPC stream. Insert in order.
* ``ACK``: ``<Q B`` submission number, status (0 handed on, 1 throttled, 2 some of its
  documents could not be stored here: dropped and counted). Every batch of the
  submission precedes its ACK.
* ``RELOAD``: ``<I`` request number, a JSON list of trace ids whose stored entities the
  worker needs; the server answers once every earlier batch is inserted.
* ``COUNTERS``: ``{"counters": {...}, "cached_traces": n}``, cumulative.
* ``TRANSLATED``: ``<Q I I I I I`` translation number, spans rejected (``NOT_OTLP``: the
  body is no ``ExportTraceServiceRequest``), length of the reasons, valid documents, of
  which this worker keeps, and their bytes; the first few reasons (UTF-8, one a line);
  then packed ``shard, documents`` pairs (:func:`~fluoroscope.ingest.frames.pack_bodies`,
  alternating; the shard as one byte, its documents already packed as a ``DOCS`` frame
  carries them): the valid segment documents of an ``OTLP`` frame's spans owned by other
  workers, for the server to pass on unopened. The documents this worker owns it
  submits to itself, as if the server had sent them in a ``DOCS`` frame numbered with the
  translation's number: an ``ACK`` of that number follows once they are stored.
* ``STRAY``: packed ``trace id, body`` pairs (:func:`~fluoroscope.ingest.frames.pack_bodies`
  of both, alternating): valid datagrams this worker does not own, for the server to
  send to their owner.

server -> worker on stdin:

* ``DOCS``: ``<Q`` submission number, packed validated documents (PutTraceSegments).
* ``DATAGRAMS``: packed UDP document bodies (header already checked), routed here by
  their trace id.
* ``OTLP``: ``<Q B`` translation number, share (0: every span; 1: only the spans of
  the traces this worker owns, :func:`~fluoroscope.ingest.shards.span_shard`, the others
  being skipped unread), then an ``ExportTraceServiceRequest`` (protobuf) whose spans to
  translate into documents (:mod:`fluoroscope.ingest.otlp`) and store, answered with
  ``TRANSLATED`` - on a thread of its own, so the other frames keep flowing.
  Translation runs in the workers so that it uses their cores, and the documents go
  from the translating worker to their owners without being parsed or split in the
  server: per span, the server does no work at all. With share 1 (every worker is
  sent the request) nothing is handed on.
* ``TRACES``: ``<I`` request number, ``{trace_id: [ts, revision, [[doc, parent_id,
  is_segment], ...]]}``.
* ``CONTRIBUTE``: one byte, 1 to send each batch's graph contributions from now on (a
  ``contributions`` table, for group statistics), 0 to stop.
* ``STOP``: stop receiving, store everything accepted (reloads are still answered),
  exit 0.

The server's death ends the worker at once and without a word
(:mod:`fluoroscope.ingest.lifeline`): the kernel's signal on Linux, else end of file on
stdin before ``STOP`` or a broken pipe on stdout (whatever it held can only be stored
through the server).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, Final

import orjson
import pyarrow as pa

from fluoroscope.ingest.frames import pack_bodies, read_frame, unpack_bodies, write_frame
from fluoroscope.ingest.heap import arrow_on_glibc, tune_gc
from fluoroscope.ingest.keepout import keep_out
from fluoroscope.ingest.lifeline import leave_quietly, tie_to_parent
from fluoroscope.ingest.otlp.options import translator
from fluoroscope.ingest.pipeline import Pipeline, Submitted
from fluoroscope.ingest.shards import shard_of, span_shard
from fluoroscope.ingest.threadnames import install as name_threads
from fluoroscope.model.errors import StoreUnavailable, Throttled
from fluoroscope.store.batch import StoredTrace, WriteBatch
from fluoroscope.store.encode import encode_batch

__all__ = [
    "ACK", "BATCH", "CONTRIBUTE", "COUNTERS", "DATAGRAMS", "DOCS", "NOT_OTLP", "OTLP", "OTLP_HEAD",
    "RELOAD", "STOP", "STRAY", "TRACES", "TRANSLATED", "TRANSLATED_HEAD", "decode_tables",
    "encode_tables", "table_streams",
]  # fmt: skip

log = logging.getLogger("fluoroscope.ingest")

BATCH: Final = 10
ACK: Final = 11
RELOAD: Final = 12
COUNTERS: Final = 13
STRAY: Final = 14
TRANSLATED: Final = 15
DOCS: Final = 20
TRACES: Final = 21
STOP: Final = 22
CONTRIBUTE: Final = 23
DATAGRAMS: Final = 24
OTLP: Final = 25

ACK_FRAME: Final = struct.Struct("<QB")
SEQ: Final = struct.Struct("<Q")
REQUEST: Final = struct.Struct("<I")
BATCH_HEAD: Final = struct.Struct("<II")
TRANSLATED_HEAD: Final = struct.Struct("<QIIIII")
OTLP_HEAD: Final = struct.Struct("<QB")
NOT_OTLP: Final = 0xFFFFFFFF  # TRANSLATED's rejected count for a body that is no request
_NAME: Final = struct.Struct("<H")
_SIZE: Final = struct.Struct("<I")
TABLES: Final = frozenset({"spans", "traces", "node_stats", "edge_stats", "contributions"})
_COUNTERS_EVERY: Final = 0.1  # seconds
_TRANSLATION_WAIT: Final = 0.1  # seconds a round waits for OTLP requests being translated
# Counted by the server, where the rows become durable, not here where they leave.
_SERVER_COUNTED: Final = ("stored_documents", "stored_entities", "lost_documents")


def encode_tables(tables: list[tuple[str, pa.Table]]) -> list[bytes]:
    """``tables`` as ``BATCH`` payload parts after the counts."""
    parts: list[bytes] = []
    for name, table in tables:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        data = sink.getvalue().to_pybytes()
        raw = name.encode()
        parts += [_NAME.pack(len(raw)), raw, _SIZE.pack(len(data)), data]
    return parts


def table_streams(payload: bytes) -> list[tuple[str, memoryview]]:
    """The tables of a ``BATCH`` payload (after its counts), by table name, each as the
    Arrow IPC stream :func:`encode_tables` wrote (a view of ``payload``)."""
    view = memoryview(payload)
    streams: list[tuple[str, memoryview]] = []
    offset = BATCH_HEAD.size
    while offset < len(view):
        (name_len,) = _NAME.unpack_from(view, offset)
        offset += _NAME.size
        name = bytes(view[offset : offset + name_len]).decode()
        offset += name_len
        (size,) = _SIZE.unpack_from(view, offset)
        offset += _SIZE.size
        if name not in TABLES:
            raise ValueError(f"unknown table {name!r} in a batch")
        if offset + size > len(view):
            raise ValueError(f"table {name!r} ends past its batch")
        streams.append((name, view[offset : offset + size]))
        offset += size
    return streams


def decode_tables(payload: bytes) -> list[tuple[str, pa.Table]]:
    """The tables of a ``BATCH`` payload (after its counts), by table name."""
    tables: list[tuple[str, pa.Table]] = []
    for name, stream in table_streams(payload):
        # Arrow wants its buffers aligned: the stream sits at any offset of the frame.
        aligned = pa.allocate_buffer(len(stream))
        memoryview(aligned).cast("B")[:] = stream
        tables.append((name, pa.ipc.open_stream(aligned).read_all()))
    return tables


class _Channel:
    """The worker's stdout, shared by its threads."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, kind: int, *parts: bytes) -> None:
        try:
            with self._lock:
                write_frame(self._stream, kind, *parts)
        except (BrokenPipeError, ValueError):
            # The server closes this pipe only after this process exited: it is gone.
            leave_quietly()


class _ServerStore:
    """The server, seen by the pipeline as its store (see the module docstring)."""

    def __init__(self, channel: _Channel, stored_until: int) -> None:
        self._channel = channel
        self._stored_until = stored_until
        self._lock = threading.Lock()
        self._next = 0
        self._waiting: dict[int, Future[bytes]] = {}

    def max_trace_ts(self) -> int:
        return self._stored_until

    def write(self, batch: WriteBatch, tables: list[tuple[str, pa.Table]] | None = None) -> None:
        head = BATCH_HEAD.pack(batch.documents, len(batch))
        encoded = encode_batch(batch) if tables is None else tables
        self._channel.send(BATCH, head, *encode_tables(encoded))

    def load_traces(self, trace_ids: Any) -> dict[str, StoredTrace]:
        future: Future[bytes] = Future()
        with self._lock:
            self._next += 1
            number = self._next
            self._waiting[number] = future
        self._channel.send(RELOAD, REQUEST.pack(number), orjson.dumps(sorted(trace_ids)))
        payload = future.result()
        return {
            trace_id: StoredTrace(ts, revision, [(d, p, bool(s)) for d, p, s in entities])
            for trace_id, (ts, revision, entities) in orjson.loads(payload).items()
        }

    def answer(self, number: int, payload: bytes) -> None:
        with self._lock:
            future = self._waiting.pop(number, None)
        if future is not None:
            future.set_result(payload)

    def fail_all(self) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for future in waiting.values():
            future.set_exception(StoreUnavailable("the server has gone away"))


class _Worker:
    def __init__(self, args: argparse.Namespace, channel: _Channel) -> None:
        self.channel = channel
        self.store = _ServerStore(channel, args.stored_until)
        shard, shards = args.shard, args.shards
        self.pipeline = Pipeline(
            self.store,  # type: ignore[arg-type]  # the store's ingest surface, remotely
            retention_seconds=args.retention,
            cached_traces=args.cached_traces,
            max_buffered_bytes=args.max_buffered_bytes,
            owns=None if shards == 1 else lambda tid: shard_of(tid.encode(), shards) == shard,
            stray=None if shards == 1 else self._send_strays,
            otlp=None if args.otlp_options is None else translator(args.otlp_options),
            before_round=self._await_translations,
        )
        self.pipeline.assembler.track_contributions = args.contributions
        self._otlp_options = args.otlp_options
        self._shard, self._shards = shard, shards
        self._retention = args.retention
        self._translator: Any = None
        self._translating: ThreadPoolExecutor | None = None
        self._translations = threading.Condition()
        self._received = 0  # OTLP frames received, and translated (in order) so far
        self._translated = 0
        self.stopped = threading.Event()
        self.stop_asked = False

    def run(self, stdin: IO[bytes]) -> None:
        self.pipeline.start()
        threading.Thread(target=self._report, name="counters", daemon=True).start()
        reader = threading.Thread(target=self._read, args=(stdin,), name="stdin", daemon=True)
        reader.start()
        self.stopped.wait()
        self.pipeline.close()
        self._send_counters()

    def _read(self, stdin: IO[bytes]) -> None:
        try:
            while (got := read_frame(stdin)) is not None:
                kind, payload = got
                if kind == DATAGRAMS:
                    self.pipeline.offer_datagrams(unpack_bodies(payload))
                elif kind == DOCS:
                    self._submit(SEQ.unpack_from(payload)[0], unpack_bodies(payload, SEQ.size))
                elif kind == OTLP:
                    if self._translating is None:
                        self._translating = ThreadPoolExecutor(1, thread_name_prefix="otlp")
                    with self._translations:
                        self._received += 1
                    self._translating.submit(self._translate, payload)
                elif kind == TRACES:
                    self.store.answer(REQUEST.unpack_from(payload)[0], payload[REQUEST.size :])
                elif kind == CONTRIBUTE:
                    # read by the ingest thread at its next batch (a plain attribute)
                    self.pipeline.assembler.track_contributions = payload == b"\x01"
                elif kind == STOP:
                    self.stop_asked = True
                    self.stopped.set()
            if not self.stop_asked:
                leave_quietly()  # the server is gone: nothing here can be stored any more
        finally:
            self.store.fail_all()  # no answers can come any more
            self.stopped.set()

    def _await_translations(self) -> None:
        """Wait (at most ``_TRANSLATION_WAIT``) until the OTLP requests received so far
        are translated and their documents submitted: the pipeline's hook as a round
        begins. A client's request is then stored in one round, not split between two."""
        with self._translations:
            target = self._received
            self._translations.wait_for(
                lambda: self._translated >= target, timeout=_TRANSLATION_WAIT
            )

    def _translate(self, payload: bytes) -> None:
        """Answer an ``OTLP`` frame with ``TRANSLATED``, then store the documents this
        worker owns (the translation thread)."""
        try:
            self._translate_one(payload)
        finally:
            with self._translations:
                self._translated += 1
                self._translations.notify_all()

    def _translate_one(self, payload: bytes) -> None:
        from fluoroscope.ingest.otlp import Translator, validated
        from fluoroscope.ingest.otlp.decode import OtlpDecodeError, parse_protobuf_traces

        seq, share = OTLP_HEAD.unpack_from(payload)
        if self._translator is None:
            self._translator = (
                Translator() if self._otlp_options is None else translator(self._otlp_options)
            )
        own: list[dict[str, Any]] = []  # documents as translated: never parsed again
        size = 0
        others: dict[int, list[bytes]] = {}
        valid = 0
        try:
            data = payload[OTLP_HEAD.size :]
            keep = self._own_spans() if share else None
            out = self._translator.translate(parse_protobuf_traces(data), data=data, keep=keep)
            shard, shards = self._shard, self._shards
            for doc, raw in validated(out, now=time.time(), max_age=self._retention):
                owner = shard_of(doc["trace_id"].encode(), shards)
                if owner == shard:
                    own.append(doc)
                    size += len(raw)
                else:
                    others.setdefault(owner, []).append(raw)
                valid += 1
            rejected, reasons = out.rejected, "\n".join(out.errors)
        except OtlpDecodeError as exc:
            rejected, reasons = NOT_OTLP, str(exc)
        except Exception as exc:  # a defect: it never costs the worker
            log.exception("translating OTLP spans failed")
            rejected, reasons = NOT_OTLP, f"the request could not be translated: {exc!r:.200}"
        if rejected == NOT_OTLP:  # nothing of it is stored
            own, size, others, valid = [], 0, {}, 0
        text = reasons.encode()
        head = TRANSLATED_HEAD.pack(seq, rejected, len(text), valid, len(own), size)
        parts: list[bytes] = []
        for owner, bodies in others.items():
            parts += (bytes((owner,)), b"".join(pack_bodies(bodies)))
        self.channel.send(TRANSLATED, head, text, *pack_bodies(parts))
        if own:
            self._submit_docs(seq, own, size)

    def _own_spans(self) -> Callable[[bytes], bool]:
        """Whether a span (by its raw trace id) is of a trace this worker owns; the
        spans of one trace come one after another, so the last answer is kept."""
        shard, shards = self._shard, self._shards
        last: list[Any] = [None, False]

        def keep(trace_id: bytes) -> bool:
            if trace_id != last[0]:
                last[0], last[1] = trace_id, span_shard(trace_id, shards) == shard
            return bool(last[1])

        return keep

    def _submit(self, seq: int, bodies: list[bytes]) -> None:
        """Submit a ``DOCS`` frame's bodies as they are: the pipeline parses them a part
        at a time as it merges them, as it does datagrams."""
        self._submit_docs(seq, bodies, sum(map(len, bodies)))

    def _submit_docs(self, seq: int, docs: Sequence[Submitted], size: int) -> None:
        """Submit ``docs`` (parsed, or as JSON text; ``size`` bytes of JSON) to the
        pipeline; ``ACK`` ``seq`` once stored (or at once, throttled)."""
        try:
            future = self.pipeline.submit(docs, size)
        except Throttled:
            self.channel.send(ACK, ACK_FRAME.pack(seq, 1))
            return
        future.add_done_callback(
            lambda done: self.channel.send(
                ACK, ACK_FRAME.pack(seq, 0 if done.exception() is None else 2)
            )
        )

    def _send_strays(self, strays: list[tuple[str, bytes]]) -> None:
        parts = [part for tid, body in strays for part in (tid.encode(), body)]
        self.channel.send(STRAY, *pack_bodies(parts))

    def _send_counters(self) -> None:
        counters = {
            k: v for k, v in self.pipeline.counters.items() if k not in _SERVER_COUNTED and v
        }
        snapshot = {"counters": counters, "cached_traces": self.pipeline.cached_traces}
        self.channel.send(COUNTERS, orjson.dumps(snapshot))

    def _report(self) -> None:
        while not self.stopped.wait(_COUNTERS_EVERY):
            try:
                self._send_counters()
            except StoreUnavailable:
                return


def main(argv: list[str]) -> int:
    """The worker process's entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="fluoroscope.ingest.worker")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--retention", type=float, required=True)
    parser.add_argument("--stored-until", type=int, default=0)
    parser.add_argument("--cached-traces", type=int, default=20_000)
    parser.add_argument("--max-buffered-bytes", type=int, default=128 * 1024 * 1024)
    parser.add_argument("--contributions", action="store_true")
    parser.add_argument("--otlp-options", help="TranslateOptions, as encode_options makes them")
    parser.add_argument("--parent", type=int, default=os.getppid(), help="the server's pid")
    args = parser.parse_args(argv)
    tie_to_parent(args.parent)
    # The server decides when ingest stops (a Ctrl-C reaches the whole process group).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    # Threads here hand the GIL over often: the stdin reader must keep draining.
    sys.setswitchinterval(0.001)
    keep_out()  # numpy is out already when started through keepout, as the server does
    tune_gc()
    arrow_on_glibc()
    name_threads()
    _Worker(args, _Channel(sys.stdout.buffer)).run(sys.stdin.buffer)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    # Everything accepted is stored and reported by now, but the stdin reader is still
    # blocked in a read (the server closes our stdin once we have exited): finalizing the
    # interpreter would abort on the lock that daemon thread holds. Nothing is left to
    # finalize, so leave without it.
    sys.stderr.flush()
    os._exit(code)
