"""PutLogEvents end to end through the CloudWatch Logs API (issue 17 items 2 and 8).

A real ``fluoroscope server`` subprocess (embedded engine, temporary directory) takes
PutLogEvents calls of ``--batch`` ~200-byte events from ``--clients`` threads, each on a
keep-alive HTTP connection (the standard library's client, which boto3 sends through)
sending JSON 1.1 exactly as boto3 would (without boto3's own per-call cost; the lines
made beforehand), for ``--seconds``; the clients' own CPU is printed, since they share
the machine's cores with the server. Figure: events stored per second, with zero loss
checked afterwards by a Logs Insights ``stats count(*)`` over the group. **Reference**,
same run, same clients: the same calls with every event older than 14 days, which the
API parses, validates and rejects (``tooOldLogEventEndIndex``) without storing - what the
HTTP and validation path alone sustains. The ratio says how much of that the store keeps.
Then the CPU per event of each stage a stored event goes through (:func:`stages`), at
the insert size the clients' calls in flight make, against the server's measured CPU.

Usage: ``python benchmarks/logs_api.py [--seconds 20] [--clients 4] [--batch 1000]``.
Never run by pytest; takes under 2 minutes. :func:`measure` is also phase 0 of
``benchmarks/logs.py``, which prints every issue-17 figure in one run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ingest import process_cpu, thread_stats
from fluoroscope.ingest.logs import extract, message_array
from fluoroscope.ingest.logwriter import encode
from fluoroscope.ingest.threadnames import PREFIX as PYTHON_THREADS
from fluoroscope.server.logsevents import accept_events, check_events
from fluoroscope.server.logsinput import Members
from fluoroscope.store.logs import LogStore
from fluoroscope.store.store import Store

TARGET = "Logs_20140328."
_JSON11 = "application/x-amz-json-1.1"
_POOL = 8  # calls' worth of distinct lines per client, sent in turn


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(client: httpx.Client, operation: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(
        "/",
        content=json.dumps(body),
        headers={"X-Amz-Target": TARGET + operation, "Content-Type": "application/x-amz-json-1.1"},
    )
    answer: dict[str, Any] = response.json()
    if response.status_code != 200:
        raise RuntimeError(f"{operation}: {response.status_code} {answer}")
    return answer


def _line(i: int) -> str:
    text = (
        f"[INFO]\t2026-12-03T18:29:55.{i % 1000:03d}Z\t8f507cfc-xmpl-4697-b07a-{i:012d}\t"
        f"Processing order o-{i} for customer c-{i % 977} total=42.{i % 100:02d} items=3"
    )
    return text + " " * max(0, 200 - len(text))


def _phase(
    url: str,
    group: str,
    clients: int,
    batch: int,
    seconds: float,
    old: bool,
    latencies: list[float] | None = None,
) -> int:
    """Events sent in ``seconds`` by ``clients`` threads (each on its own stream);
    each call's seconds from its request to its answer go to ``latencies``."""
    sent = [0] * clients
    spent: list[list[float]] = [[] for _ in range(clients)]
    host, port = url.removeprefix("http://").rsplit(":", 1)
    # each client's lines for _POOL calls, made beforehand and sent in turn: building
    # ~200-byte lines and their JSON (stdlib) per call cost this process 5-8 us/event,
    # CPU taken from the server it measures on the same two cores
    pools = [[[_line(index * 10**7 + c * batch + i) for i in range(batch)]
              for c in range(_POOL)] for index in range(clients)]  # fmt: skip
    stop = time.monotonic() + seconds

    def client(index: int) -> None:
        stream = f"{'old' if old else 'new'}-{index}"
        lines = pools[index]
        headers = {"X-Amz-Target": TARGET + "PutLogEvents", "Content-Type": _JSON11}
        with httpx.Client(base_url=url, timeout=60) as api:
            _call(api, "CreateLogStream", {"logGroupName": group, "logStreamName": stream})
        # the standard library's HTTP client, which boto3 sends through (urllib3): httpx
        # cost this process 1.7 ms of CPU per 1000-event call against its 0.56 ms
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        try:
            n = 0
            while time.monotonic() < stop:
                now = int(time.time() * 1000) - (20 * 86_400_000 if old else 0)
                body = orjson.dumps({
                    "logGroupName": group, "logStreamName": stream,
                    "logEvents": [{"timestamp": now, "message": m}
                                  for m in lines[(n // batch) % _POOL]],
                })  # fmt: skip
                began = time.perf_counter()
                connection.request("POST", "/", body=body, headers=headers)
                response = connection.getresponse()
                answer = orjson.loads(response.read())
                spent[index].append(time.perf_counter() - began)
                if response.status != 200:
                    raise RuntimeError(f"PutLogEvents: {response.status} {answer}")
                rejected = answer.get("rejectedLogEventsInfo", {})
                if old != bool(rejected):
                    raise RuntimeError(f"unexpected answer {answer}")
                n += batch
        finally:
            connection.close()
        sent[index] = n

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if latencies is not None:
        latencies.extend(t for times in spent for t in times)
    return sum(sent)


def _stored(url: str, group: str) -> int:
    with httpx.Client(base_url=url, timeout=60) as http:
        now = int(time.time())
        query = _call(
            http,
            "StartQuery",
            {"logGroupName": group, "startTime": now - 3600, "endTime": now + 60,
             "queryString": "stats count(*) as n"},
        )["queryId"]  # fmt: skip
        while True:
            answer = _call(http, "GetQueryResults", {"queryId": query})
            if answer["status"] not in ("Scheduled", "Running"):
                break
            time.sleep(0.2)
        if answer["status"] != "Complete":
            raise RuntimeError(f"count query ended {answer['status']}")
        return int(answer["results"][0][0]["value"])


def thread_cpu(pid: int) -> dict[str, tuple[float, float]]:
    """CPU seconds (all, of which kernel) the live threads of process ``pid`` used so
    far, by kind: ``python`` (the interpreter's threads: event loop, the log writer's,
    workers; named ``py-...`` by :mod:`fluoroscope.ingest.threadnames`, the main thread
    as the process), ``insert`` (the engine's query threads, ``ThreadPool``), ``merges``
    (its background merges, ``MergeMutate``), ``other`` (Linux ``/proc``; empty
    elsewhere)."""
    kinds: dict[str, tuple[float, float]] = {}
    try:
        main = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return kinds
    for name, cpu, system in thread_stats(pid).values():
        kind = (
            "python" if name == main or name.startswith(PYTHON_THREADS)
            else "insert" if name.startswith("ThreadPool")
            else "merges" if name.startswith("MergeMutate")
            else "other"
        )  # fmt: skip
        total, kernel = kinds.get(kind, (0.0, 0.0))
        kinds[kind] = (total + cpu, kernel + system)
    return kinds


def _writer(url: str) -> dict[str, float]:
    """The log writer's counters (zeros from a server that does not report them)."""
    answer: dict[str, dict[str, float]] = httpx.get(f"{url}/api/status", timeout=30).json()
    return answer.get("log_writer") or {"inserts": 0, "stored_events": 0}


def measure(
    seconds: float, clients: int, batch: int, detail: dict[str, Any] | None = None
) -> tuple[float, float, int, int, float, float]:
    """Start a server, run both phases; (stored events/s, reference events/s, events
    sent, events stored, server CPU us per event stored, the same for the reference).
    ``detail``, when given, receives what the stored phase cost: ``threads``, the
    server's CPU us per event stored by thread kind (all, kernel: :func:`thread_cpu`),
    and ``inserts``, ``per_insert`` (events stored per insert) from the log writer's
    counters in ``/api/status``, ``client``: this process's own CPU us per event
    (the clients share the machine's cores with the server) in each phase, and
    ``latency``: the stored phase's calls' seconds from request to answer (p50, p99)."""
    port = _port()
    with tempfile.TemporaryDirectory() as data:
        server = subprocess.Popen(
            [sys.executable, "-m", "fluoroscope", "server", "--listen", f"127.0.0.1:{port}",
             "--data-dir", str(Path(data))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ),
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{url}/api/status", timeout=2)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the server did not start") from None
                    time.sleep(0.2)
            with httpx.Client(base_url=url) as http:
                _call(http, "CreateLogGroup", {"logGroupName": "/bench/api"})
            threads, writer = thread_cpu(server.pid), _writer(url)
            started, cpu, mine = time.monotonic(), process_cpu(server.pid), _cpu()
            latencies: list[float] = []
            sent = _phase(url, "/bench/api", clients, batch, seconds, False, latencies)
            elapsed = time.monotonic() - started
            stored_rate = sent / elapsed
            stored_cpu = (process_cpu(server.pid) - cpu) / max(sent, 1) * 1e6
            client_cpu = (_cpu() - mine) / max(sent, 1) * 1e6
            if detail is not None:
                after, written = thread_cpu(server.pid), _writer(url)
                detail["threads"] = {
                    kind: tuple((a - b) / max(sent, 1) * 1e6 for a, b in
                                zip(after[kind], threads.get(kind, (0.0, 0.0)), strict=True))
                    for kind in after
                }  # fmt: skip
                inserts = int(written["inserts"] - writer["inserts"])
                detail["inserts"] = inserts
                events = written["stored_events"] - writer["stored_events"]
                detail["per_insert"] = events / max(inserts, 1)
                detail["inserts_per_second"] = inserts / elapsed
                latencies.sort()
                detail["latency"] = tuple(
                    latencies[min(int(q * len(latencies)), len(latencies) - 1)] if latencies
                    else 0.0 for q in (0.5, 0.99)
                )  # fmt: skip
            started, cpu, mine = time.monotonic(), process_cpu(server.pid), _cpu()
            checked = _phase(url, "/bench/api", clients, batch, seconds, old=True)
            reference = checked / (time.monotonic() - started)
            checked_cpu = (process_cpu(server.pid) - cpu) / max(checked, 1) * 1e6
            if detail is not None:
                detail["client"] = (client_cpu, (_cpu() - mine) / max(checked, 1) * 1e6)
            stored = _stored(url, "/bench/api")
        finally:
            server.terminate()
            server.wait(60)
    return stored_rate, reference, sent, stored, stored_cpu, checked_cpu


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stages(
    data: Path, insert_events: int, batch: int, inserts: int = 8, rounds: int = 2
) -> dict[str, float]:
    """CPU microseconds per event of each stage a stored PutLogEvents event goes
    through, measured in this process on the benchmark's own lines (best of ``rounds``,
    ``inserts`` inserts of ``insert_events`` events made of ``batch``-event calls), the
    engine embedded under ``data`` (databases ``stages_0`` to ``stages_3``, left there):
    ``decode`` (the body's JSON), ``validate`` (the members, the batch rules), ``extract`` (ingest's Arrow/RE2 extraction), ``arrow``
    (the rest of building the rows), ``insert`` (the event table alone: its
    materialized views dropped in another database), and what each view adds to the
    insert (``mv log_index`` ...: the insert with it less the insert without); each
    insert figure is the process's CPU (engine threads included) until the merges it
    caused have settled."""
    now = int(time.time() * 1000)
    calls = max(insert_events // batch, 1)
    bodies = [
        json.dumps({"logGroupName": "/bench/stages", "logStreamName": f"s-{c}", "logEvents": [
            {"timestamp": now, "message": _line(c * batch + i)} for i in range(batch)]}).encode()
        for c in range(calls)
    ]  # fmt: skip
    events = calls * batch
    found: dict[str, float] = {}

    def best(name: str, run: Callable[[], Any], count: int, clock: Callable[[], float]) -> Any:
        result = None
        for _ in range(rounds):
            began = clock()
            result = run()
            spent = (clock() - began) / count * 1e6
            found[name] = min(found.get(name, spent), spent)
        return result

    parsed = best("decode", lambda: [orjson.loads(b) for b in bodies], events, time.thread_time)

    def validate() -> list[Any]:
        checked = []
        for body in parsed:
            members = Members(body)
            members.group_name(), members.stream_name()
            raw = members.list_of("logEvents", required=True, min_items=1, max_items=10_000)
            checked.append(accept_events(check_events(raw or []), now_ms=now, retention_days=30))
        return checked

    accepted = best("validate", validate, events, time.thread_time)
    rows = [
        ("/bench/stages", f"s-{c}", [t for t, _ in b.events], [m for _, m in b.events], 30, now)
        for c, b in enumerate(accepted)
    ]
    messages = message_array([m for row in rows for m in row[3]])
    best("extract", lambda: extract(messages), events, time.thread_time)
    table = best("arrow", lambda: encode(rows, 1), events, time.thread_time)
    found["arrow"] = max(found["arrow"] - found["extract"], 0.0)
    views = ("log_index", "log_requests")
    stores = []
    for dropped in range(len(views) + 1):  # all views, then one fewer each
        logs = LogStore(Store.open("chdb", data, 30, database=f"stages_{dropped}"), 30)
        for view in views[:dropped]:
            logs.query(f"DROP VIEW `stages_{dropped}`.{view}_mv")
        stores.append(logs)

    def settled() -> None:  # the merges the inserts caused are part of their cost
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and stores[0]
            .query("SELECT count() FROM system.merges WHERE database LIKE 'stages%'")
            .column(0)[0]
            .as_py()
        ):
            time.sleep(0.1)

    for _ in range(rounds):  # interleaved, so that the machine's load falls on each alike
        for dropped, logs in enumerate(stores):
            began = _cpu()
            for _ in range(inserts):
                logs.write(table)
            settled()
            spent = (_cpu() - began) / (events * inserts) * 1e6
            found[f"insert {dropped}"] = min(found.get(f"insert {dropped}", spent), spent)
    with_views = [found.pop(f"insert {dropped}") for dropped in range(len(stores))]
    found["insert"] = with_views[-1]
    for index, view in enumerate(views):
        found[f"mv {view}"] = max(with_views[index] - with_views[index + 1], 0.0)
    return found


def show_threads(detail: dict[str, Any]) -> str:
    """One line of :func:`measure`'s ``detail``: the server's CPU by thread kind."""
    parts = ", ".join(
        f"{kind} {total:.2f} (kernel {kernel:.2f})"
        for kind, (total, kernel) in sorted(detail["threads"].items(), key=lambda kv: -kv[1][0])
    )
    client = detail.get("client", (0.0, 0.0))
    p50, p99 = detail["latency"]
    return (f"server CPU by thread, us/event stored: {parts}; {detail['inserts']} inserts "
            f"({detail['inserts_per_second']:.1f}/s) of {detail['per_insert']:,.0f} events "
            f"on average; a call's answer p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms; "
            "the clients' own CPU "
            f"(this process) {client[0]:.2f} us/event stored, {client[1]:.2f} in the "
            "reference")  # fmt: skip


def show_stages(found: dict[str, float], insert_events: int, server_cpu: float) -> str:
    """One line of :func:`stages`' figures against the server's measured CPU per event."""
    total = sum(found.values())
    parts = ", ".join(f"{name} {value:.2f}" for name, value in found.items())
    return (f"per-stage CPU, us/event (inserts of {insert_events:,} events, this process): "
            f"{parts}; sum {total:.2f} against the server's {server_cpu:.1f} measured "
            "(the rest: HTTP, the event loop, background merges)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    detail: dict[str, Any] = {}
    stored_rate, reference, sent, stored, cpu, ref_cpu = measure(
        args.seconds, args.clients, args.batch, detail
    )
    print(f"PutLogEvents stored: {stored_rate:,.0f} events/s ({sent:,} sent, {stored:,} stored); "
          f"server CPU {cpu:.1f} us/event")  # fmt: skip
    print(f"reference, validated and rejected only: {reference:,.0f} events/s; server CPU "
          f"{ref_cpu:.1f} us/event")  # fmt: skip
    print(f"ratio stored/reference: {stored_rate / reference:.2f}")
    print(show_threads(detail))
    in_flight = args.clients * args.batch
    data = Path(tempfile.mkdtemp(prefix="fluoroscope-stages-"))
    try:
        print(show_stages(stages(data, in_flight, args.batch), in_flight, cpu))
    finally:
        shutil.rmtree(data, ignore_errors=True)
    if stored != sent:
        print(f"LOSS: {sent - stored} events", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
