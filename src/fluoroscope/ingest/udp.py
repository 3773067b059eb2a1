"""The daemon-compatible UDP datagram format (reference §3.1), and the socket.

Each datagram is ``{"format":"json","version":1}\\n<one segment document>``. The header
is parsed as JSON (clients differ in spacing) and must say format ``json`` (any case)
and version 1; the body is passed on unparsed. Bad datagrams - no newline, a wrong or
non-JSON header, an empty or oversized body - are counted by reason and dropped.

Imports only the standard library, orjson and the model: the receiving process
(:mod:`fluoroscope.ingest.receiver`) runs on this alone.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from typing import Final

import orjson

from fluoroscope.model.documents import MAX_DOCUMENT_BYTES

__all__ = ["RECEIVE_BUFFER_BYTES", "DatagramScreen", "kernel_drops", "open_udp_socket"]

RECEIVE_BUFFER_BYTES: Final = 16 * 1024 * 1024
_KNOWN_HEADERS_MAX: Final = 64


def _header_ok(header: bytes) -> bool:
    try:
        value = orjson.loads(header)
    except orjson.JSONDecodeError:
        return False
    if not isinstance(value, dict):
        return False
    fmt, version = value.get("format"), value.get("version")
    return (
        isinstance(fmt, str)
        and fmt.lower() == "json"
        and version == 1
        and not isinstance(version, bool)
    )


class DatagramScreen:
    """Splits datagrams into header and body, keeping only well-formed bodies.

    ``counters`` counts every datagram (``received``) and every drop by reason
    (``dropped_no_header``, ``dropped_bad_header``, ``dropped_oversize``,
    ``dropped_empty``). O(1) per datagram apart from the first sight of a new header
    spelling. Not thread-safe.
    """

    def __init__(self) -> None:
        self._good_headers: set[bytes] = {b'{"format":"json","version":1}'}
        self.counters: Counter[str] = Counter()

    def body(self, data: bytes) -> bytes | None:
        """The document in ``data``, or None (counted) when the datagram is malformed."""
        counters = self.counters
        counters["received"] += 1
        cut = data.find(b"\n")
        if cut < 0:
            counters["dropped_no_header"] += 1
            return None
        header = data[:cut]
        if header not in self._good_headers:
            if not _header_ok(header.strip()):
                counters["dropped_bad_header"] += 1
                return None
            if len(self._good_headers) < _KNOWN_HEADERS_MAX:
                self._good_headers.add(header)
        body = data[cut + 1 :]
        if len(body) > MAX_DOCUMENT_BYTES:
            counters["dropped_oversize"] += 1
            return None
        if not body.strip():
            counters["dropped_empty"] += 1
            return None
        return body


def open_udp_socket(host: str, port: int) -> socket.socket:
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
    sock.bind((host, port))
    sock.setblocking(False)
    return sock


def kernel_drops(sock: socket.socket) -> int | None:
    """Datagrams the kernel dropped on ``sock`` since it was opened (its receive buffer
    was full), as Linux reports them in ``/proc/net/udp`` (``udp6`` for IPv6); None
    where that cannot be read. Reads a small file: call it for reports, not per
    datagram. Any thread."""
    try:
        inode = str(os.fstat(sock.fileno()).st_ino)
        table = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"
        with open(table, encoding="ascii") as lines:
            for line in lines:
                fields = line.split()
                # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
                if len(fields) >= 13 and fields[9] == inode:
                    return int(fields[12])
    except (OSError, ValueError):
        return None
    return None
