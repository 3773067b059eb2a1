"""UDP receiving in a process of its own, so that datagrams never wait for the GIL.

Why: the server's ingest worker holds the GIL for long stretches (parsing, merging,
summarizing). Datagrams received on the same interpreter's event loop then sat in the
kernel's socket buffer (8-16 MiB: well under a second at 10k/s) and overflowed: measured
with ``benchmarks/ingest.py``, 1.7-18 % of datagrams were dropped by the kernel at 10k/s.
A receiving process of its own drains the socket whenever the kernel has data.

The parent (:class:`UdpReceiver`) binds the socket (so a taken port fails at start-up)
and starts ``python -m fluoroscope.ingest.receiver FD MAX_BACKLOG SHARDS PARENT_PID`` with
the socket inherited. The child screens each datagram
(:class:`~fluoroscope.ingest.udp.DatagramScreen`), sorts the bodies by the ingest worker
owning their trace (:func:`~fluoroscope.ingest.shards.shard_of`, from the bytes,
unparsed), and writes them to its stdout in frames (:mod:`fluoroscope.ingest.frames`),
every 5 ms or every 512 datagrams: ``DATA`` frames carry a shard number (one byte) and
that shard's packed bodies, ``COUNTERS`` frames the child's counters as a JSON object
(cumulative since it started).

If the parent falls behind by more than ``MAX_BACKLOG`` bytes the child drops datagrams
and counts them (``dropped_backlog``). The child ignores SIGINT and SIGTERM (a Ctrl-C
reaches the whole process group; the parent decides when receiving stops) and exits
once its stdin reaches end of file - when the parent closes it - after writing
everything it received. When the parent dies the child ends at once and without a word
(:mod:`fluoroscope.ingest.lifeline`), freeing the port: the kernel's signal on Linux,
else end of file on stdin or a broken pipe on stdout with the parent gone. The parent
must call :meth:`UdpReceiver.start` from a thread that outlives the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import IO, Final

import orjson

from fluoroscope.ingest.frames import body_count, frame, grow_pipe, pack_bodies, read_frame
from fluoroscope.ingest.lifeline import leave_quietly, parent_gone, tie_to_parent
from fluoroscope.ingest.shards import shard_of, trace_id_of
from fluoroscope.ingest.udp import DatagramScreen, kernel_drops

__all__ = ["UdpReceiver"]

log = logging.getLogger("fluoroscope.ingest")

DATA: Final = 1
COUNTERS: Final = 2
_FLUSH_SECONDS: Final = 0.005
_FLUSH_DATAGRAMS: Final = 512
_MAX_DATAGRAM: Final = 65_536  # above any UDP payload
_GATHER_SECONDS: Final = 0.001
_RESPAWN_PAUSE: Final = 1.0

# -- the child ---------------------------------------------------------------------------


class _Forwarder:
    """Screens datagrams and writes the good bodies to ``out`` in frames, by shard."""

    def __init__(self, out: asyncio.WriteTransport, max_backlog: int, shards: int) -> None:
        self._out = out
        self._max_backlog = max_backlog
        self._shards = shards
        self._screen = DatagramScreen()
        self._pending: list[list[bytes]] = [[] for _ in range(shards)]
        self._pending_count = 0
        self._pending_bytes = 0
        self._timer: asyncio.TimerHandle | None = None

    def datagram_received(self, data: bytes) -> None:
        body = self._screen.body(data)
        if body is not None:
            if self._pending_bytes + self._out.get_write_buffer_size() > self._max_backlog:
                self._screen.counters["dropped_backlog"] += 1
            else:
                shards = self._shards
                shard = shard_of(trace_id_of(body), shards) if shards > 1 else 0
                self._pending[shard].append(body)
                self._pending_count += 1
                self._pending_bytes += len(body)
                if self._pending_count >= _FLUSH_DATAGRAMS:
                    self.flush()
                    return
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(_FLUSH_SECONDS, self.flush)

    def socket_error(self) -> None:
        self._screen.counters["socket_errors"] += 1

    def flush(self) -> None:
        """Write the pending bodies, then the counters."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._out.is_closing():
            return  # the parent is gone (see _Out)
        if self._pending_count:
            for shard, bodies in enumerate(self._pending):
                if bodies:
                    self._out.writelines(frame(DATA, [bytes((shard,)), *pack_bodies(bodies)]))
                    bodies.clear()
            self._pending_count = 0
            self._pending_bytes = 0
        self._out.writelines(frame(COUNTERS, [orjson.dumps(self._screen.counters)]))


class _Reader:
    """Reads the socket for a :class:`_Forwarder`: when it is readable, up to a flush's
    worth of datagrams one ``recv`` each (so the flush timer and the pipe get their
    turn), and once it is empty, no wake-up for :data:`_GATHER_SECONDS` while datagrams
    gather in the kernel's buffer. A wake-up per datagram (the event loop's datagram
    endpoint) cost more than the datagram: its callback, the sender's address made into
    a tuple, a context switch. ``close`` stops reading."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, forwarder: _Forwarder
    ) -> None:
        self._loop = loop
        self._fd = sock.fileno()
        self._recv = sock.recv
        self._received = forwarder.datagram_received
        self._error = forwarder.socket_error
        self._resume: asyncio.TimerHandle | None = None
        loop.add_reader(self._fd, self._drain)

    def _drain(self) -> None:
        recv, received = self._recv, self._received
        for _ in range(_FLUSH_DATAGRAMS):
            try:
                data = recv(_MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._error()
                break
            received(data)
        else:
            return  # more may be waiting: the loop calls again once its turn comes
        self._loop.remove_reader(self._fd)
        self._resume = self._loop.call_later(_GATHER_SECONDS, self._read_again)

    def _read_again(self) -> None:
        self._resume = None
        self._loop.add_reader(self._fd, self._drain)

    def close(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        self._loop.remove_reader(self._fd)


class _Out(asyncio.Protocol):
    """The pipe to the parent: it breaks only when the parent is gone."""

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            leave_quietly()


async def _child(fd: int, max_backlog: int, shards: int, parent: int) -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    out, _ = await loop.connect_write_pipe(_Out, os.fdopen(1, "wb", buffering=0))
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    forwarder = _Forwarder(out, max_backlog, shards)
    reader = _Reader(loop, sock, forwarder)

    class _Stdin(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            if parent_gone(parent):
                leave_quietly()  # else the parent asks to stop, or is dying (see _Out)
            stopped.set()

    await loop.connect_read_pipe(_Stdin, os.fdopen(0, "rb", buffering=0))
    await stopped.wait()
    reader.close()
    sock.close()
    forwarder.flush()
    while out.get_write_buffer_size() and not out.is_closing():
        await asyncio.sleep(0.01)
    out.close()


def _child_main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fd, max_backlog, shards = int(argv[0]), int(argv[1]), int(argv[2])
    parent = int(argv[3]) if len(argv) > 3 else os.getppid()
    tie_to_parent(parent)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(_child(fd, max_backlog, shards, parent))
    else:
        uvloop.run(_child(fd, max_backlog, shards, parent))


# -- the parent --------------------------------------------------------------------------


class UdpReceiver:
    """Runs the receiving process for ``sock`` and hands its bodies to ``deliver``.

    ``deliver(shard, packed)`` is called from a reader thread of this class with each
    frame's bodies for one shard (``0 .. shards-1``), packed as
    :func:`~fluoroscope.ingest.frames.pack_bodies` packs them (unpack them with
    :func:`~fluoroscope.ingest.frames.unpack_bodies`, count them with
    :func:`~fluoroscope.ingest.frames.body_count`), in arrival order per shard. It returns how many of them it
    accepted; the rest are counted as ``dropped_buffer_full``. A child that dies
    unexpectedly is restarted (at most once a second) on the same socket. :meth:`stop`
    ends receiving and returns once every datagram received so far has been delivered.
    ``counters`` adds up the child's counters over restarts. Not for concurrent
    :meth:`start`/:meth:`stop` calls.
    """

    def __init__(
        self,
        sock: socket.socket,
        deliver: Callable[[int, bytes], int],
        *,
        shards: int = 1,
        max_backlog: int = 64 * 1024 * 1024,
    ) -> None:
        if not 1 <= shards <= 255:
            raise ValueError(f"shards must be 1 to 255, got {shards}")
        self._sock = sock
        self._deliver = deliver
        self._shards = shards
        self._max_backlog = max_backlog
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._lock = threading.Lock()
        self._done: Counter[str] = Counter()  # counters of children that ended
        self._current: dict[str, int] = {}
        self._dropped = 0

    @property
    def counters(self) -> dict[str, int]:
        """Received and dropped datagrams by reason, since :meth:`start`; what the
        kernel dropped because the socket's buffer was full is ``dropped_kernel``."""
        with self._lock:
            total = self._done + Counter(self._current)
        if self._dropped:
            total["dropped_buffer_full"] += self._dropped
        if kernel := kernel_drops(self._sock):
            total["dropped_kernel"] = kernel
        return dict(total)

    def start(self) -> None:
        """Start the child and the reader thread. Call once."""
        self._spawn()
        self._thread = threading.Thread(target=self._run, name="fluoroscope-udp", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop receiving; return once everything received has been offered."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        if self._thread is not None:
            self._thread.join(timeout)
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.error("the UDP receiving process did not stop; killing it")
                proc.kill()
                proc.wait()
        self._sock.close()

    def _spawn(self) -> None:
        fd = self._sock.fileno()
        self._proc = proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fluoroscope.ingest.receiver",
                str(fd),
                str(self._max_backlog),
                str(self._shards),
                str(os.getpid()),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=(fd,),
        )
        grow_pipe(proc.stdout)

    def _run(self) -> None:
        while True:
            proc = self._proc
            assert proc is not None and proc.stdout is not None
            try:
                self._read(proc.stdout)
            except Exception:  # a torn frame: the child died mid-write
                log.exception("reading from the UDP receiving process failed")
            code = proc.wait()
            for stream in (proc.stdout, proc.stdin):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            with self._lock:
                self._done.update(self._current)
                self._current = {}
            if self._stopping:
                return
            log.error("the UDP receiving process exited (%s); restarting it", code)
            time.sleep(_RESPAWN_PAUSE)
            if self._stopping:
                return
            self._spawn()

    def _read(self, stream: IO[bytes]) -> None:
        deliver = self._deliver
        while (got := read_frame(stream)) is not None:
            kind, payload = got
            if kind == COUNTERS:
                current = orjson.loads(payload)
                with self._lock:
                    self._current = current
                continue
            packed = payload[1:]
            count = body_count(packed)
            accepted = deliver(payload[0], packed)
            if accepted < count:
                self._dropped += count - accepted


if __name__ == "__main__":
    _child_main(sys.argv[1:])
