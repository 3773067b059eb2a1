"""Cheap checks on incoming datagrams, as the X-Ray daemon makes them (reference §3.1).

A datagram is ``{"format":"json","version":1}\\n<one segment document>``. The header is
parsed as JSON (clients differ in spacing) and must say format ``json`` (any case) and
version 1; the body is kept as bytes, unparsed, to be forwarded verbatim. Datagrams with
no newline, a wrong header, an empty body or a body over
:data:`~fluoroscope.model.documents.MAX_DOCUMENT_BYTES` are dropped and counted by reason;
the server validates the documents themselves.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from typing import Final

import orjson

from fluoroscope.model.documents import MAX_DOCUMENT_BYTES

__all__ = ["INVALID_REASONS", "RECEIVE_BUFFER_BYTES", "Screen", "kernel_drops", "open_udp"]

RECEIVE_BUFFER_BYTES: Final = 64 * 1024 * 1024  # seconds of datagrams while the loop is held up
INVALID_REASONS: Final = ("no_header", "bad_header", "oversize", "empty")
_KNOWN_HEADERS_MAX: Final = 64


def _header_ok(header: bytes) -> bool:
    try:
        value = orjson.loads(header)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(value, dict):
        return False
    fmt, version = value.get("format"), value.get("version")
    return isinstance(fmt, str) and fmt.lower() == "json" and version == 1 and version is not True


class Screen:
    """Splits datagrams into header and body, keeping only well-formed bodies.

    ``invalid`` counts the datagrams dropped, by reason (:data:`INVALID_REASONS`).
    O(1) per datagram apart from the first sight of a new header spelling. Not thread-safe.
    """

    def __init__(self) -> None:
        self._good_headers: set[bytes] = {b'{"format":"json","version":1}'}
        self.invalid: Counter[str] = Counter()

    def body(self, data: bytes) -> bytes | None:
        """The document in ``data``, or None (counted) when the datagram is malformed."""
        cut = data.find(b"\n")
        if cut < 0:
            self.invalid["no_header"] += 1
            return None
        header = data[:cut]
        if header not in self._good_headers:
            if not _header_ok(header.strip()):
                self.invalid["bad_header"] += 1
                return None
            if len(self._good_headers) < _KNOWN_HEADERS_MAX:
                self._good_headers.add(header)
        body = data[cut + 1 :]
        if len(body) > MAX_DOCUMENT_BYTES:
            self.invalid["oversize"] += 1
            return None
        if not body.strip():
            self.invalid["empty"] += 1
            return None
        return body


def open_udp(host: str, port: int) -> socket.socket:
    """A bound, non-blocking UDP socket with as large a receive buffer as allowed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if option is None:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, option, RECEIVE_BUFFER_BYTES)
            break
        except OSError:
            continue
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped on ``sock`` because its receive buffer was full
    (Linux: the ``drops`` column of ``/proc/net/udp[6]``); None where unknown."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
    except OSError:
        return None
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table, encoding="ascii") as lines:
                next(lines, None)
                for line in lines:
                    fields = line.split()
                    if len(fields) >= 13 and fields[9] == inode:
                        return int(fields[-1])
        except (OSError, ValueError):
            continue
    return None
