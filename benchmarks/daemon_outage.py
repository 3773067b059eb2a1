"""The daemon through a server outage: nothing lost that is not counted.

Target (issue 15, item 4): with ``fluoroscope daemon`` in front of a server, the server
stopped for 5 minutes under 5,000 segments/s, then back: every document sent is either
stored or dropped-and-counted (never-accounted = 0), with the daemon's memory and disk
bounded throughout.

What one run does:

1. starts ``fluoroscope server`` and ``fluoroscope daemon --server ...`` (its defaults:
   64 MiB of memory, 1 GiB of disk spool, unless ``--buffer-memory``/``--buffer-disk``) on
   free loopback ports, with fresh directories;
2. sender processes (``--senders``, the ingest benchmark's) pre-build realistic datagrams
   for ``--before`` + ``--outage`` + ``--after`` seconds at ``--rate`` and send them paced
   to the daemon's UDP port;
3. ``--before`` seconds in, stops the server (SIGINT: it stores what it accepted), waits
   ``--outage`` seconds from the stop, starts it again on the same data directory;
4. samples the daemon's ``/status``, its resident memory and its spool directory's size
   twice a second; once the senders are done, waits until the daemon holds nothing;
5. stops the daemon and the server, reads their stop lines, and counts the distinct
   entities in the store.

Reported: sent, received by the daemon (and the kernel's drops on its socket), forwarded,
dropped by reason, stored (the server's counts over both runs, and distinct entities in the
store against those sent), never-accounted, the daemon's peak RSS and peak disk during
the outage, the replay time (server answering again -> daemon holding nothing), and the
ratio it is judged by: (stored + dropped-and-counted) / sent, which must be 1.

Usage: ``python -m benchmarks.daemon_outage --rate 5000 --outage 300`` (from the
repository's root). Never run by pytest.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.ingest import (
    _MP,
    Api,
    SenderPlan,
    SenderResult,
    count_stored_entities,
    free_port,
    proc_status_kb,
    sender_main,
)


def _start_server(port: int, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """``fluoroscope server`` on ``port``, its output appended to ``log``; returns once
    its API answers."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "server", "--listen", f"127.0.0.1:{port}",
         "--data-dir", str(data_dir)],
        stdout=open(log, "ab"),  # noqa: SIM115 - lives as long as the server
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        try:
            Api(port).status()
            return proc
        except (OSError, RuntimeError, http.client.HTTPException):
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start within 120 s")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 300) -> None:
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _daemon_status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as response:
        return dict(json.loads(response.read()))


def _dir_bytes(path: Path) -> int:
    total = 0
    for entry in path.glob("*"):
        with contextlib.suppress(OSError):
            total += entry.stat().st_size
    return total


@dataclass(eq=False)
class Sampler(threading.Thread):
    """Samples the daemon twice a second: status, RSS, spool directory size."""

    port: int
    pid: int
    buffer_dir: Path
    outage: list[float] = field(default_factory=list)  # [stopped at, answering again at]
    peak_rss_kb: int = 0
    peak_rss_outage_kb: int = 0
    peak_disk: int = 0
    peak_disk_outage: int = 0
    peak_memory_buffer: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        super().__init__(daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                self.last = _daemon_status(self.port)
            except OSError:
                continue
            rss = proc_status_kb(self.pid, "VmRSS")
            disk = _dir_bytes(self.buffer_dir)
            self.peak_rss_kb = max(self.peak_rss_kb, rss)
            self.peak_disk = max(self.peak_disk, disk)
            self.peak_memory_buffer = max(
                self.peak_memory_buffer, self.last["buffer"]["memory_bytes"]
            )
            if len(self.outage) == 1:
                self.peak_rss_outage_kb = max(self.peak_rss_outage_kb, rss)
                self.peak_disk_outage = max(self.peak_disk_outage, disk)


def _held(status: dict[str, Any]) -> int:
    return int(sum(status["pending"].values()))


def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="fluoroscope-outage-"))
    data_dir, buffer_dir, server_log = work / "data", work / "buffer", work / "server.log"
    server_port, daemon_port = free_port(), free_port()
    total_seconds = args.before + args.outage + args.after
    count = int(args.rate * total_seconds)
    print(f"machine: {os.cpu_count()} CPUs; python {sys.version.split()[0]}; work dir {work}")
    print(f"offered {args.rate:,.0f} segments/s for {total_seconds:.0f} s ({count:,} documents, "
          f"{args.senders} sender(s)); server stopped {args.before:.0f} s in for "
          f"{args.outage:.0f} s")  # fmt: skip
    server = _start_server(server_port, data_dir, server_log)
    daemon_cmd = [sys.executable, "-m", "fluoroscope", "daemon",
                  "--server", f"http://127.0.0.1:{server_port}",
                  "--listen", f"127.0.0.1:{daemon_port}", "--buffer-dir", str(buffer_dir)]  # fmt: skip
    if args.buffer_memory is not None:
        daemon_cmd += ["--buffer-memory", str(args.buffer_memory)]
    if args.buffer_disk is not None:
        daemon_cmd += ["--buffer-disk", str(args.buffer_disk)]
    daemon_log = work / "daemon.log"
    daemon = subprocess.Popen(
        daemon_cmd,
        stdout=open(daemon_log, "wb"),  # noqa: SIM115 - lives as long as the daemon
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + 60
    while True:
        try:
            _daemon_status(daemon_port)
            break
        except OSError:
            if daemon.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"daemon did not start: {daemon_log.read_text()}") from None
            time.sleep(0.1)
    sampler = Sampler(daemon_port, daemon.pid, buffer_dir)
    sampler.start()
    # senders: the ingest benchmark's, pointed at the daemon
    per_sender = count // args.senders
    readies, pipes, procs = [], [], []
    go, samples_q = _MP.Event(), _MP.Queue()
    t_build = time.time()
    for n in range(args.senders):
        ready = _MP.Event()
        parent_end, child_end = _MP.Pipe(duplex=False)
        plan = SenderPlan(daemon_port, 2000 + n, per_sender, args.rate / args.senders, 10**12)
        proc = _MP.Process(target=sender_main, args=(plan, ready, go, child_end, samples_q))
        proc.start()
        readies.append(ready)
        pipes.append(parent_end)
        procs.append(proc)
    for ready in readies:
        ready.wait()
    print(f"built the datagrams in {time.time() - t_build:.0f} s; sending")
    go.set()
    started = time.time()
    stored_before = 0
    hwm_kb = 0
    try:
        time.sleep(max(0.0, started + args.before - time.time()))
        stored_before = Api(server_port).status().get("stored_documents", 0)
        sampler.outage.append(time.time())
        _stop(server)
        text = server_log.read_text()
        first_run = re.findall(r"Stored (\d+) documents", text)
        stored_first = int(first_run[-1]) if first_run else stored_before
        print(f"  server stopped {sampler.outage[0] - started:.1f} s in "
              f"(it had stored {stored_first:,}); restarting after {args.outage:.0f} s")  # fmt: skip
        time.sleep(max(0.0, sampler.outage[0] + args.outage - time.time()))
        restart = time.time()
        server = _start_server(server_port, data_dir, server_log)
        sampler.outage.append(time.time())
        at_restart = dict(sampler.last)
        print(f"  server answering again {sampler.outage[1] - restart:.1f} s after its restart; "
              f"the daemon holds {_held(at_restart):,} documents "
              f"({at_restart['pending']})")  # fmt: skip
        results: list[SenderResult] = [pipe.recv() for pipe in pipes]
        for proc in procs:
            proc.join()
        sent = sum(r.sent for r in results)
        entities = sum(r.entities for r in results)
        send_seconds = max(r.last_send for r in results) - min(r.first_send for r in results)
        # wait until the daemon holds nothing and has not read a datagram for 3 s
        deadline = time.time() + args.replay_timeout
        replayed_at = None
        last_received, quiet_since = -1, time.time()
        while time.time() < deadline:
            s = _daemon_status(daemon_port)
            if s["received"] != last_received:
                last_received, quiet_since = s["received"], time.time()
            accounted = sum(s["invalid"].values()) + s["forwarded"] + sum(s["dropped"].values())
            if _held(s) == 0 and accounted >= s["received"]:
                if replayed_at is None:
                    replayed_at = time.time()
                if time.time() - quiet_since > 3:
                    break
            else:
                replayed_at = None
            time.sleep(0.2)
        hwm_kb = proc_status_kb(daemon.pid, "VmHWM")
        final = _daemon_status(daemon_port)
        stored_second = Api(server_port).status().get("stored_documents", 0)
    finally:
        sampler.stop.set()
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        _stop(daemon, signal.SIGTERM, 120)
        if server.poll() is None:
            _stop(server)
    runs = [int(n) for n in re.findall(r"Stored (\d+) documents", server_log.read_text())]
    stored = sum(runs) if len(runs) == 2 else stored_first + stored_second
    db_entities = count_stored_entities(data_dir)
    daemon_out = daemon_log.read_text()
    dropped = {k: v for k, v in final["dropped"].items() if v}
    dropped_total = sum(dropped.values()) + sum(final["invalid"].values())
    kernel = sent - final["received"]
    never = sent - final["forwarded"] - dropped_total - kernel_counted(final, kernel)
    print(f"  sent {sent:,} in {send_seconds:.1f} s ({sent / max(send_seconds, 1e-9):,.0f}/s "
          f"achieved, {args.rate:,.0f}/s offered)")  # fmt: skip
    print(f"  daemon: received {final['received']:,} (kernel drops on its socket: "
          f"{final['kernel_dropped']:,} counted, {kernel:,} sent but not received); "
          f"forwarded {final['forwarded']:,}; dropped {dropped or 'none'}; "
          f"invalid {sum(final['invalid'].values())}")  # fmt: skip
    print(f"  server: stored {stored:,} documents over its two runs {runs}; distinct entities "
          f"in the store {db_entities:,} of {entities:,} sent")  # fmt: skip
    print(f"  dropped-and-counted {dropped_total + final['kernel_dropped']:,}; "
          f"never-accounted {never:,} (must be 0)")  # fmt: skip
    print(f"  daemon peak RSS {sampler.peak_rss_kb / 1024:.0f} MB (during the outage "
          f"{sampler.peak_rss_outage_kb / 1024:.0f} MB; VmHWM {hwm_kb / 1024:.0f} MB); "
          f"peak memory buffer {sampler.peak_memory_buffer / 2**20:.1f} MiB; peak spool on "
          f"disk {sampler.peak_disk / 2**20:.1f} MiB (during the outage "
          f"{sampler.peak_disk_outage / 2**20:.1f} MiB)")  # fmt: skip
    if replayed_at is not None and len(sampler.outage) == 2:
        print(f"  replay: the daemon held nothing {replayed_at - sampler.outage[1]:.1f} s after "
              f"the server answered again (senders went on for "
              f"{max(0.0, started + send_seconds - sampler.outage[1]):.0f} s of that)")  # fmt: skip
    else:
        print(f"  replay: NOT finished within {args.replay_timeout:.0f} s: {final['pending']}")
    ratio = (stored + dropped_total + final["kernel_dropped"]) / max(sent, 1)
    print(f"  ratio (stored + dropped-and-counted) / sent = {ratio:.4f} (target 1.0000); "
          f"stored / sent = {stored / max(sent, 1):.4f}")  # fmt: skip
    print("  daemon: " + (daemon_out.strip().splitlines() or ["(no output)"])[-1])
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    return 0 if never == 0 else 1


def kernel_counted(final: dict[str, Any], not_received: int) -> int:
    """Of the datagrams sent but never read by the daemon, those its kernel-drop counter
    accounts for."""
    return min(not_received, int(final["kernel_dropped"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rate", type=float, default=5000.0, help="segments/s offered")
    parser.add_argument("--outage", type=float, default=300.0, help="seconds the server is down")
    parser.add_argument("--before", type=float, default=10.0, help="seconds before the outage")
    parser.add_argument("--after", type=float, default=30.0,
                        help="seconds of sending after the restart")  # fmt: skip
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument("--buffer-memory", type=int, default=None, help="daemon MiB in memory")
    parser.add_argument("--buffer-disk", type=int, default=None, help="daemon MiB on disk")
    parser.add_argument("--replay-timeout", type=float, default=1800.0,
                        help="seconds to wait for the daemon to empty after sending")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
