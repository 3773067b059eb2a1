"""A bounded first-in-first-out buffer of batches: memory first, then files on disk.

While the server is away, batches wait here. They are kept in memory up to
``memory_bytes``; past that they are appended to spool files under ``directory`` up to
``disk_bytes`` of files; past that a batch is refused (:meth:`Spool.put` returns False and
the caller counts its documents as dropped, reason ``buffer_full``). Order is kept: once
anything is on disk, new batches go to disk behind it until the disk part is read empty,
so batches leave in the order they came.

Disk layout: files ``<sequence>.spool`` (20 digits; read in sequence order), each a run of
records ``<III`` (payload length, CRC-32 of the payload, document count) followed by the
payload, the batch's documents packed (``<I`` count, ``<I`` lengths, bodies) and
compressed with zlib (level 1: JSON shrinks ~4-6x for little CPU). A file is deleted once
read to its end; a new one is started every ``file_bytes``. A ``cursor`` file records how
far the first file was read; it is written by :meth:`Spool.close`, so batches left on disk
at a clean stop are read again, exactly once, by the next :class:`Spool` on the same
directory. After a crash, the first file is read again from the last cursor: batches
already forwarded may be forwarded twice (the server stores by ``(trace_id, id)``, so a
repeat changes nothing). A record that is torn or fails its CRC is skipped and counted
(``corrupt_documents`` when its count is readable, else ``corrupt_records``).

Not thread-safe: one owner (the daemon's event loop) calls everything. Disk writes and
reads are plain blocking file calls on small records (page cache; no fsync).
"""

from __future__ import annotations

import collections
import contextlib
import os
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

__all__ = ["DOC_OVERHEAD", "Spool", "batch_bytes"]

DOC_OVERHEAD: Final = 64
"""Bytes counted per document besides its text (the objects that hold it)."""

_RECORD: Final = struct.Struct("<III")
_U32: Final = struct.Struct("<I")
_SUFFIX: Final = ".spool"
_CURSOR: Final = "cursor"
_FIRST_SEQUENCE: Final = 10**12


def batch_bytes(batch: Sequence[bytes]) -> int:
    """The memory a batch is charged for."""
    return sum(map(len, batch)) + DOC_OVERHEAD * len(batch)


def _pack(batch: Sequence[bytes]) -> bytes:
    return b"".join(
        [_U32.pack(len(batch)), struct.pack(f"<{len(batch)}I", *map(len, batch)), *batch]
    )


def _unpack(payload: bytes) -> list[bytes]:
    (count,) = _U32.unpack_from(payload, 0)
    lengths = struct.unpack_from(f"<{count}I", payload, 4)
    offset = 4 + 4 * count
    docs: list[bytes] = []
    for length in lengths:
        docs.append(payload[offset : offset + length])
        offset += length
    return docs


@dataclass(slots=True)
class _File:
    seq: int
    size: int  # bytes
    docs: int  # documents not yet read


class Spool:
    """Memory, then disk; see the module docstring. ``disk_bytes`` 0 or ``directory``
    None: memory only."""

    def __init__(
        self,
        memory_bytes: int,
        directory: Path | None = None,
        disk_bytes: int = 0,
        *,
        file_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.memory_limit = memory_bytes
        self.disk_limit = disk_bytes if directory is not None else 0
        self._dir = directory
        self._file_bytes = max(1024, min(file_bytes, max(disk_bytes // 8, 1024)))
        self._memory: collections.deque[list[bytes]] = collections.deque()
        self.memory_docs = 0
        self.memory_used = 0
        self.disk_docs = 0
        self._files: collections.deque[_File] = collections.deque()
        self._writer: BinaryIO | None = None
        self._reader: BinaryIO | None = None
        self._read_seq = -1
        self.corrupt_documents = 0
        self.corrupt_records = 0
        self.restored_docs = 0
        if self.disk_limit:
            assert directory is not None
            directory.mkdir(parents=True, exist_ok=True)
            self._restore()

    # -- sizes ------------------------------------------------------------------------

    @property
    def disk_used(self) -> int:
        """Bytes of spool files on disk (read parts are freed when their file ends)."""
        return sum(f.size for f in self._files)

    @property
    def docs(self) -> int:
        """Documents held, in memory and on disk."""
        return self.memory_docs + self.disk_docs

    def __len__(self) -> int:
        return self.docs

    # -- in and out -------------------------------------------------------------------

    def put(self, batch: list[bytes]) -> bool:
        """Keep ``batch`` (behind everything held); False if there is no room for it."""
        size = batch_bytes(batch)
        if not self.disk_docs and self.memory_used + size <= self.memory_limit:
            self._memory.append(batch)
            self.memory_docs += len(batch)
            self.memory_used += size
            return True
        return self._append(batch)

    def get(self) -> list[bytes] | None:
        """The oldest batch held, or None when empty."""
        if self._memory:
            batch = self._memory.popleft()
            self.memory_docs -= len(batch)
            self.memory_used -= batch_bytes(batch)
            return batch
        while self._files:
            found = self._read_record()
            if found is False:
                break
            if isinstance(found, list):
                return found
        return None

    def put_front(self, batches: list[list[bytes]]) -> None:
        """Put ``batches`` back in front of everything held, in memory (used at shutdown
        for batches whose forwarding was cut short); may exceed the memory limit."""
        for batch in reversed(batches):
            self._memory.appendleft(batch)
            self.memory_docs += len(batch)
            self.memory_used += batch_bytes(batch)

    def close(self) -> int:
        """Move what is in memory to disk, in front of what is there, and record the read
        position for the next start. Returns how many documents could not be kept (no
        disk, or no room): the caller counts them as dropped."""
        lost = 0
        if self._memory:
            lost = self._write_front() if self.disk_limit else self.memory_docs
            self._memory.clear()
            self.memory_docs = self.memory_used = 0
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._dir is not None and self.disk_limit:
            position = self._reader.tell() if self._reader is not None else 0
            cursor = self._dir / _CURSOR
            if self._reader is not None and self._files:
                cursor.write_text(f"{self._files[0].seq} {position}\n", encoding="ascii")
            else:
                cursor.unlink(missing_ok=True)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        return lost

    # -- disk -------------------------------------------------------------------------

    def _path(self, seq: int) -> Path:
        assert self._dir is not None
        return self._dir / f"{seq:020d}{_SUFFIX}"

    def _record(self, batch: Sequence[bytes]) -> bytes:
        payload = zlib.compress(_pack(batch), 1)
        return _RECORD.pack(len(payload), zlib.crc32(payload), len(batch)) + payload

    def _append(self, batch: list[bytes]) -> bool:
        if not self.disk_limit:
            return False
        record = self._record(batch)
        if self.disk_used + len(record) > self.disk_limit:
            return False
        if self._writer is None or not self._files or self._files[-1].size >= self._file_bytes:
            if self._writer is not None:
                self._writer.close()
            seq = self._files[-1].seq + 1 if self._files else _FIRST_SEQUENCE
            self._writer = open(self._path(seq), "ab", buffering=0)  # noqa: SIM115
            self._files.append(_File(seq, 0, 0))
        try:
            self._writer.write(record)
        except OSError:
            return False
        last = self._files[-1]
        last.size += len(record)
        last.docs += len(batch)
        self.disk_docs += len(batch)
        return True

    def _write_front(self) -> int:
        """Write the memory batches to a file read before all others; returns the
        documents that did not fit."""
        if self._reader is not None and self._files:
            return self._rewrite_front()  # the first file is partly read
        seq = self._files[0].seq - 1 if self._files else _FIRST_SEQUENCE
        records: list[bytes] = []
        kept = lost = 0
        room = self.disk_limit - self.disk_used
        for batch in self._memory:
            record = self._record(batch)
            if len(record) > room:
                lost += len(batch)
                continue
            room -= len(record)
            records.append(record)
            kept += len(batch)
        if records:
            data = b"".join(records)
            try:
                self._path(seq).write_bytes(data)
            except OSError:
                return lost + kept
            self._files.appendleft(_File(seq, len(data), kept))
            self.disk_docs += kept
        return lost

    def _rewrite_front(self) -> int:
        """Memory batches, then the unread rest of the partly read first file, into a new
        first file (the old one is removed)."""
        assert self._reader is not None
        rest = self._reader.read()
        self._reader.close()
        self._reader = None
        old = self._files.popleft()
        old_seq = old.seq
        self._read_seq = -1
        self._path(old_seq).unlink(missing_ok=True)
        room = self.disk_limit - self.disk_used - len(rest)
        records: list[bytes] = []
        lost = kept = 0
        for batch in self._memory:
            record = self._record(batch)
            if len(record) > room:
                lost += len(batch)
                continue
            room -= len(record)
            records.append(record)
            kept += len(batch)
        data = b"".join([*records, rest])
        self._path(old_seq).write_bytes(data)
        self._files.appendleft(_File(old_seq, len(data), old.docs + kept))
        self.disk_docs += kept
        return lost

    def _read_record(self) -> list[bytes] | bool:
        """The next batch on disk; True when a file's end or a damaged record (counted) was
        passed; False when there is nothing more to read for now."""
        if not self._files:
            return False
        first = self._files[0]
        seq = first.seq
        if self._reader is None or self._read_seq != seq:
            if self._reader is not None:
                self._reader.close()
            self._reader = open(self._path(seq), "rb")  # noqa: SIM115
            self._read_seq = seq
        head = self._reader.read(_RECORD.size)
        if len(head) < _RECORD.size:
            if len(self._files) == 1 and self._writer is not None:
                self._reader.seek(-len(head), os.SEEK_CUR)
                self._finish_if_drained()
                return False  # the writer's file: nothing more yet
            self._drop_first_file()
            return True
        length, crc, count = _RECORD.unpack(head)
        payload = self._reader.read(length)
        if len(payload) < length or zlib.crc32(payload) != crc:
            self.corrupt_records += 1
            self._drop_first_file()  # its unread documents are counted as corrupt
            return True
        count = min(count, first.docs)
        first.docs -= count
        self.disk_docs -= count
        try:
            return _unpack(zlib.decompress(payload))
        except (zlib.error, struct.error):
            self.corrupt_documents += count
            self.corrupt_records += 1
            return True

    def _finish_if_drained(self) -> None:
        """The reader caught up with the writer: start afresh so memory is used again."""
        if self.disk_docs == 0 and self._writer is not None and self._reader is not None:
            self._writer.close()
            self._writer = None
            self._drop_first_file()

    def _drop_first_file(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._read_seq = -1
        if self._files:
            first = self._files.popleft()
            seq = first.seq
            if first.docs:
                self.corrupt_documents += first.docs
                self.disk_docs -= first.docs
            if self._writer is not None and not self._files:
                self._writer.close()
                self._writer = None
            self._path(seq).unlink(missing_ok=True)

    def _restore(self) -> None:
        """Take over the spool files a previous run left, from its cursor on."""
        assert self._dir is not None
        seqs = sorted(
            int(p.name[: -len(_SUFFIX)])
            for p in self._dir.glob(f"*{_SUFFIX}")
            if p.name[: -len(_SUFFIX)].isdigit()
        )
        cursor_seq, cursor_offset = -1, 0
        with contextlib.suppress(OSError, ValueError):
            text = (self._dir / _CURSOR).read_text(encoding="ascii").split()
            cursor_seq, cursor_offset = int(text[0]), int(text[1])
        (self._dir / _CURSOR).unlink(missing_ok=True)  # consumed: close() writes a new one
        for seq in seqs:
            path = self._path(seq)
            size = path.stat().st_size
            start = cursor_offset if seq == cursor_seq else 0
            docs = self._count(path, start)
            self._files.append(_File(seq, size, docs))
            self.disk_docs += docs
            if seq == cursor_seq and start:
                self._reader = open(path, "rb")  # noqa: SIM115
                self._reader.seek(start)
                self._read_seq = seq
        self.restored_docs = self.disk_docs

    @staticmethod
    def _count(path: Path, start: int) -> int:
        """Documents in the records of ``path`` from ``start`` (headers only)."""
        total = 0
        with open(path, "rb") as stream:
            stream.seek(start)
            while True:
                head = stream.read(_RECORD.size)
                if len(head) < _RECORD.size:
                    return total
                length, _, count = _RECORD.unpack(head)
                stream.seek(length, os.SEEK_CUR)
                total += count
