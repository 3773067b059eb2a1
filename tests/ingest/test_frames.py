"""Frames cross real pipes intact while signals and stops interrupt the writer."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

from fluoroscope.ingest.frames import read_frame, unpack_bodies

# A writer process interrupted every 0.2 ms by a signal whose handler runs: the way a
# profiler's ptrace stops, or a Ctrl-C, cut a write to a pipe short. Through a
# BufferedWriter the first 1 MiB frame already arrived corrupted.
_WRITER = textwrap.dedent(
    """
    import hashlib, os, signal, sys
    from fluoroscope.ingest.frames import pack_bodies, write_frame

    signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
    out = sys.stdout.buffer
    for i in range(int(sys.argv[1])):
        body = os.urandom((1 << 20) + i)
        write_frame(out, 1, hashlib.sha1(body).digest(), body)
    # more parts than one writev takes (IOV_MAX), and empty ones
    bodies = [b"%d" % i * (i % 7) for i in range(5000)]
    write_frame(out, 2, *pack_bodies(bodies))
    signal.setitimer(signal.ITIMER_REAL, 0)
    """
)


def test_frames_survive_a_writer_interrupted_by_signals() -> None:
    count = 60
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(count)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        for i in range(count):
            got = read_frame(proc.stdout)
            assert got is not None, f"stream ended at frame {i}"
            kind, payload = got
            assert kind == 1 and len(payload) == 20 + (1 << 20) + i
            assert hashlib.sha1(payload[20:]).digest() == payload[:20], f"frame {i} torn"
        got = read_frame(proc.stdout)
        assert got is not None and got[0] == 2
        assert unpack_bodies(got[1]) == [b"%d" % i * (i % 7) for i in range(5000)]
        assert read_frame(proc.stdout) is None
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
