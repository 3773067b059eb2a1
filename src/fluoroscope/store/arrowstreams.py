"""Arrow IPC streams of one table's rows, joined as written instead of decoded.

An ingest worker sends each table of a batch as an Arrow IPC stream (its schema
message, its record batch messages, an end-of-stream marker), and an insert round holds
the streams of several batches. Decoding each into a table, concatenating them and
writing the result as a new stream for the engine copied every byte twice. Streams whose
schema messages are the same bytes join instead as bytes: the schema message once, the
record batches of every stream in order, one end marker - the stream that writing the
concatenated tables gave (one record batch per record batch read). Measured on rounds of
two batches of 1,250 documents (40 rounds, medians of the hub thread's CPU): its work
besides the engine's (reading the frames, the statistics' rollup, writing the memory
files of ``spans`` and ``traces``, ~5 MB) 2.77 -> 2.04 ms a round; the whole insert
round, statements included, 29.9 -> 28.5 ms.

:func:`read_stream` checks a stream's framing and its messages' (flatbuffer) headers
without decoding the arrays, so a malformed stream fails where decoding it did, before
its rows join a round. Streams with dictionary-encoded fields (delta and replacement
dictionaries), or whose schemas differ, are joined by decoding them
(:func:`join_streams`). Pure; thread-safe; results share the caller's bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import pyarrow as pa

__all__ = ["ArrowStream", "ArrowStreams", "join_streams", "read_stream"]

_CONTINUATION: Final = b"\xff\xff\xff\xff"
_END: Final = _CONTINUATION + b"\x00\x00\x00\x00"  # end-of-stream marker


@dataclass(frozen=True, slots=True)
class ArrowStream:
    """One Arrow IPC stream, checked (:func:`read_stream`): ``head`` its schema message,
    ``body`` its other messages (without the end marker), as bytes of the caller's."""

    schema: pa.Schema
    head: memoryview
    body: memoryview
    joinable: bool  # only record batches after the schema: joins as bytes

    def table(self) -> pa.Table:
        """The stream's rows, decoded."""
        return _decode([self.head, self.body, _END])


@dataclass(frozen=True, slots=True)
class ArrowStreams:
    """Rows of one schema as the byte pieces of one Arrow IPC stream, in order: what
    the engine reads as ``ArrowStream``, written piece by piece."""

    schema: pa.Schema
    parts: tuple[memoryview | bytes, ...]

    @property
    def column_names(self) -> list[str]:
        return list(self.schema.names)

    def table(self) -> pa.Table:
        """The rows, decoded (for whoever needs them as a table)."""
        return _decode(self.parts)


def read_stream(data: memoryview) -> ArrowStream:
    """``data`` (an Arrow IPC stream) checked and split into its schema message and the
    rest; raises ValueError or :class:`pyarrow.ArrowInvalid` when it is no well-framed
    stream. Its arrays are not decoded."""
    if len(data) < 16 or bytes(data[:4]) != _CONTINUATION or bytes(data[-8:]) != _END:
        raise ValueError("not an Arrow IPC stream with an end marker")
    source = pa.BufferReader(pa.py_buffer(data))
    messages = pa.ipc.MessageReader.open_stream(source)
    first = messages.read_next_message()
    if first.type != "schema":
        raise ValueError(f"an Arrow IPC stream starting with a {first.type} message")
    schema = pa.ipc.read_schema(first)
    head_end = source.tell()
    joinable = True
    for message in messages:
        if message.type != "record batch":
            joinable = False  # a dictionary batch: joining would replace dictionaries
    if source.tell() != len(data):
        raise ValueError("bytes after the end marker of an Arrow IPC stream")
    return ArrowStream(schema, data[:head_end], data[head_end:-8], joinable)


def join_streams(streams: Sequence[ArrowStream]) -> ArrowStreams | pa.Table:
    """One stream of ``streams``' rows in order: their bytes joined when every one
    joins as bytes and their schema messages are equal, else the decoded tables
    concatenated (which raises as :func:`pyarrow.concat_tables` does on schemas that
    differ)."""
    first = streams[0]
    if all(s.joinable for s in streams) and all(s.head == first.head for s in streams[1:]):
        return ArrowStreams(first.schema, (first.head, *(s.body for s in streams), _END))
    tables = [s.table() for s in streams]
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _decode(parts: Sequence[memoryview | bytes]) -> pa.Table:
    """The table of a stream given in pieces, copied into one aligned buffer first:
    Arrow wants its buffers aligned, and a stream sits at any offset of its frame."""
    size = sum(len(p) for p in parts)
    aligned = pa.allocate_buffer(size)
    view = memoryview(aligned).cast("B")
    at = 0
    for part in parts:
        view[at : at + len(part)] = part
        at += len(part)
    return pa.ipc.open_stream(aligned).read_all()
