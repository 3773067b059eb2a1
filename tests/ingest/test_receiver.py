"""The UDP receiving process: real sockets, a real child process, real signals."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from fluoroscope.ingest.frames import unpack_bodies
from fluoroscope.ingest.receiver import UdpReceiver
from fluoroscope.ingest.shards import shard_of
from fluoroscope.ingest.udp import kernel_drops, open_udp_socket
from tests.support import HEADER, free_port, wait_for


class Sink:
    """Collects what the receiver delivers; accepts at most ``room`` bodies in total
    (whole frames: as the server takes them)."""

    def __init__(self, room: int | None = None) -> None:
        self.bodies: list[bytes] = []
        self.by_shard: dict[int, list[bytes]] = {}
        self.room = room
        self.lock = threading.Lock()

    def offer(self, shard: int, packed: bytes) -> int:
        bodies = unpack_bodies(packed)
        with self.lock:
            if self.room is not None:
                if len(bodies) > self.room:
                    return 0
                self.room -= len(bodies)
            self.bodies.extend(bodies)
            self.by_shard.setdefault(shard, []).extend(bodies)
            return len(bodies)

    def count(self) -> int:
        with self.lock:
            return len(self.bodies)


def _send(port: int, payloads: list[bytes], pace_every: int = 200) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i, payload in enumerate(payloads):
            sock.sendto(payload, ("127.0.0.1", port))
            if i % pace_every == pace_every - 1:
                time.sleep(0.002)  # stay well inside the socket buffer


def _when(counters: dict[str, int], **expected: int) -> dict[str, int] | None:
    """``counters`` once they hold ``expected``, else None (for :func:`wait_for`)."""
    return counters if all(counters.get(k) == v for k, v in expected.items()) else None


def _child_pid(receiver: UdpReceiver) -> int:
    proc = receiver._proc  # the child is this class's own, observed, not replaced
    assert proc is not None
    return proc.pid


@pytest.fixture
def receiver_port() -> Iterator[tuple[UdpReceiver, Sink, int]]:
    port = free_port()
    sink = Sink()
    receiver = UdpReceiver(open_udp_socket("127.0.0.1", port), sink.offer)
    receiver.start()
    yield receiver, sink, port
    receiver.stop()


def test_bodies_arrive_in_order_and_garbage_is_counted(
    receiver_port: tuple[UdpReceiver, Sink, int],
) -> None:
    receiver, sink, port = receiver_port
    good = [HEADER + b'{"n":%d}' % i for i in range(3000)]
    bad = [b"no header at all", b'{"format":"xml","version":1}\n{}', HEADER + b"  ", b"{\n{}"]
    _send(port, [*good[:1500], *bad, *good[1500:]])
    wait_for(lambda: sink.count() >= 3000)
    assert sink.bodies == [g[len(HEADER) :] for g in good]
    counters = wait_for(lambda: _when(receiver.counters, received=3004))
    assert counters["dropped_no_header"] == 1
    assert counters["dropped_bad_header"] == 2
    assert counters["dropped_empty"] == 1


def test_stop_offers_everything_received_first() -> None:
    port = free_port()
    sink = Sink()
    receiver = UdpReceiver(open_udp_socket("127.0.0.1", port), sink.offer)
    receiver.start()
    _send(port, [HEADER + b'{"n":%d}' % i for i in range(5000)])
    receiver.stop()  # straight after sending: nothing received may be left behind
    received = receiver.counters["received"]
    assert received > 0
    assert sink.count() == received
    assert receiver._proc is not None and receiver._proc.returncode == 0


def test_a_full_buffer_drops_and_counts(receiver_port: tuple[UdpReceiver, Sink, int]) -> None:
    receiver, sink, port = receiver_port
    sink.room = 0
    _send(port, [HEADER + b"{}"] * 400)
    wait_for(lambda: receiver.counters.get("received") == 400)
    counters = wait_for(lambda: _when(receiver.counters, dropped_buffer_full=400))
    assert sink.count() == 0
    assert counters["received"] == 400
    sink.room = 1000
    _send(port, [HEADER + b"{}"] * 10)
    wait_for(lambda: sink.count() == 10)
    assert receiver.counters["dropped_buffer_full"] == 400


def test_bodies_are_sorted_by_the_worker_owning_their_trace() -> None:
    port = free_port()
    sink = Sink()
    receiver = UdpReceiver(open_udp_socket("127.0.0.1", port), sink.offer, shards=3)
    receiver.start()
    try:
        trace_ids = [b"1-5759e988-%024x" % i for i in range(600)]
        bodies = [
            b'{"name":"a","trace_id" : "%s","n":%d}' % (tid, i) for i, tid in enumerate(trace_ids)
        ]
        bodies.append(b'{"name":"no trace id"}')
        _send(port, [HEADER + b for b in bodies])
        wait_for(lambda: sink.count() == len(bodies))
    finally:
        receiver.stop()
    expected: dict[int, list[bytes]] = {}
    for tid, body in zip(trace_ids, bodies, strict=False):
        expected.setdefault(shard_of(tid, 3), []).append(body)
    expected.setdefault(shard_of(b"", 3), []).append(bodies[-1])
    assert sink.by_shard == expected  # each shard's bodies in arrival order
    assert all(len(v) > 150 for v in expected.values())


def test_a_killed_child_is_replaced_and_counters_add_up(
    receiver_port: tuple[UdpReceiver, Sink, int],
) -> None:
    receiver, sink, port = receiver_port
    _send(port, [HEADER + b"{}"] * 50)
    wait_for(lambda: receiver.counters.get("received") == 50)
    first = _child_pid(receiver)
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: _child_pid(receiver) != first, timeout=10)

    def after_restart() -> bool:
        _send(port, [HEADER + b'{"late":1}'])
        return b'{"late":1}' in sink.bodies

    wait_for(after_restart, timeout=10, interval=0.2)
    assert receiver.counters["received"] >= 51


def test_kernel_drops_are_read_from_the_kernel_and_add_up() -> None:
    """A socket nobody reads, with a small buffer: what was sent is exactly what can
    still be read plus what the kernel reports dropped."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        sock.bind(("127.0.0.1", 0))
        assert kernel_drops(sock) == 0
        sent = 500
        for _ in range(sent):
            sender.sendto(b"x" * 400, sock.getsockname())
        sock.setblocking(False)
        readable = 0
        with contextlib.suppress(BlockingIOError):
            while sock.recv(1024):
                readable += 1
        dropped = kernel_drops(sock)
        assert dropped is not None and dropped > 0
        assert readable + dropped == sent
