"""Frames: how the server's processes talk over pipes.

A frame is a ``<B I`` header (kind, payload length; little endian) and the payload.
Lists of byte strings (datagram bodies, documents) travel as a ``<I`` count, ``count``
``<I`` lengths and the strings back to back (:func:`pack_bodies`, :func:`unpack_bodies`).
Readers and writers are blocking; a writer shared by threads must hold a lock around
:func:`write_frame` (pipes interleave writes larger than ``PIPE_BUF``).

Frames are written with ``os.writev`` on the stream's descriptor, never through the
stream's buffer: measured here with Python 3.11, a ``BufferedWriter`` writing large frames
to a pipe corrupted the stream within seconds when a signal handler ran or a profiler
(py-spy, strace: ptrace) stopped the writer mid-write, while the plain system calls, partial
writes resumed, never did (``tests/ingest/test_frames.py`` reproduces it with a timer signal).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from typing import IO, Final

__all__ = [
    "body_count", "frame", "grow_pipe", "pack_bodies", "read_frame", "unpack_bodies", "write_all",
    "write_frame",
]  # fmt: skip

HEADER: Final = struct.Struct("<BI")
PIPE_BYTES: Final = 1 << 20
_U32: Final = struct.Struct("<I")
_IOV_MAX: Final = min(os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16, 1024)


def grow_pipe(stream: IO[bytes] | None) -> None:
    """Ask for a ``PIPE_BYTES`` pipe buffer behind ``stream`` (Linux; elsewhere, or when
    the system refuses, the pipe keeps its size: a performance matter only)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is not None and stream is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(stream.fileno(), set_size, PIPE_BYTES)


def pack_bodies(bodies: list[bytes]) -> list[bytes]:
    """``bodies`` as frame payload parts (join them, or pass them to :func:`write_frame`)."""
    lengths = struct.pack(f"<{len(bodies)}I", *map(len, bodies))
    return [_U32.pack(len(bodies)), lengths, *bodies]


def body_count(payload: bytes, offset: int = 0) -> int:
    """How many byte strings :func:`pack_bodies` packed at ``offset`` of ``payload``."""
    count: int = _U32.unpack_from(payload, offset)[0]
    return count


def unpack_bodies(payload: bytes, offset: int = 0) -> list[bytes]:
    """The byte strings packed by :func:`pack_bodies` at ``offset`` of ``payload``."""
    count = body_count(payload, offset)
    offset += _U32.size
    lengths = struct.unpack_from(f"<{count}I", payload, offset)
    offset += 4 * count
    bodies: list[bytes] = []
    for length in lengths:
        bodies.append(payload[offset : offset + length])
        offset += length
    return bodies


def frame(kind: int, parts: list[bytes]) -> list[bytes]:
    """The header and ``parts`` of one frame, ready for ``writelines``."""
    return [HEADER.pack(kind, sum(map(len, parts))), *parts]


def write_frame(stream: IO[bytes], kind: int, *parts: bytes) -> None:
    """Write one frame of ``kind`` whose payload is ``parts`` joined, whole, straight to
    ``stream``'s descriptor (anything in the stream's own buffer must have been flushed).
    Blocks until written; raises ``OSError`` (``BrokenPipeError``) if the reader is gone."""
    write_all(stream.fileno(), frame(kind, list(parts)))


def write_all(fd: int, parts: list[bytes]) -> None:
    """Write ``parts`` back to back to ``fd``, resuming after partial writes."""
    views = [memoryview(part) for part in parts if part]
    first = 0
    while first < len(views):
        written = os.writev(fd, views[first : first + _IOV_MAX])
        while written:
            size = len(views[first])
            if written < size:
                views[first] = views[first][written:]
                break
            written -= size
            first += 1


def read_frame(stream: IO[bytes]) -> tuple[int, bytes] | None:
    """The next frame as (kind, payload); None at end of file or on a torn frame."""
    head = stream.read(HEADER.size)
    if len(head) < HEADER.size:
        return None
    kind, size = HEADER.unpack(head)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return kind, payload
