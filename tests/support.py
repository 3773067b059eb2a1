"""Test helpers: run the real server, talk to it with real clients, wait for data, and
lay out a store as an older server left it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import boto3

from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.store.schema import MIGRATIONS
from fluoroscope.store.store import Store
from fluoroscope.store.transport import Transport

T = TypeVar("T")

HEADER = b'{"format":"json","version":1}\n'


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise RuntimeError("no free port")


@dataclass
class ServerProcess:
    """A running ``fluoroscope server`` subprocess."""

    port: int
    data_dir: Path
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)
    api_key: str | None = None  # sent as a Bearer token by status() when set

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def udp_address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def xray(self, *, unsigned: bool = False) -> Any:
        """A boto3 ``xray`` client pointed at this server."""
        from botocore import UNSIGNED
        from botocore.config import Config

        config = Config(signature_version=UNSIGNED) if unsigned else Config()
        return boto3.client(
            "xray",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=config,
        )

    def status(self) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.url}/api/status")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        with urllib.request.urlopen(request, timeout=5) as response:
            return dict(json.loads(response.read()))

    def counter(self, name: str) -> int:
        return int(self.status()["counters"].get(name, 0))

    def send_udp(self, *payloads: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for payload in payloads:
                sock.sendto(payload, self.udp_address)

    def send_documents(self, *docs: dict[str, Any]) -> None:
        self.send_udp(*(HEADER + json.dumps(d).encode() for d in docs))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 60) -> str:
        """Stop the server with ``sig`` and return everything it printed."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            out, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        self.output.append(out or "")
        return "".join(self.output)


SERVER_START_SECONDS: Final = 180


def start_server(
    data_dir: Path,
    *extra: str,
    port: int | None = None,
    api_key: str | None = None,
    env_changes: Mapping[str, str | None] | None = None,
) -> ServerProcess:
    """Start the real server and wait until its HTTP API answers (to ``api_key`` as a
    Bearer token when given). ``env_changes`` set (None: unset) environment variables."""
    port = port or free_port()
    env = dict(os.environ)
    env.pop("FLUOROSCOPE_LISTEN", None)
    # OTLP's own listeners are off unless a test asks for them (with free ports): many
    # test servers run at once, and OTLP is served on the main port anyway.
    env["FLUOROSCOPE_OTLP_HTTP_LISTEN"] = "off"
    env["FLUOROSCOPE_OTLP_GRPC_LISTEN"] = "off"
    for name, value in (env_changes or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "server", "--listen", f"127.0.0.1:{port}",
         "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )  # fmt: skip
    server = ServerProcess(port, data_dir, proc, api_key=api_key)
    # generous: at load 30 on this 2-core machine a start (engine, migrations, helper
    # processes) took past 60 s
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.stop()}")
        try:
            server.status()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server did not come up within {SERVER_START_SECONDS} s")


def run_demo(
    port: int, data_dir: Path, *extra: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``fluoroscope demo --no-open`` on ``port`` (its own server there, unless one
    answers), with no ``FLUOROSCOPE_*`` variables from this environment plus ``env``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLUOROSCOPE_")}
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "demo", "--no-open", "--listen",
         f"127.0.0.1:{port}", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )  # fmt: skip


def run_python(script: str, *args: str, timeout: float = 300) -> Any:
    """Run ``script`` in a fresh interpreter (``python -c script args``, warnings as
    errors) and return the JSON of its last line of output; fail with its error output if
    it fails. For checks that need a process of their own: chDB opens one data path and
    one configuration per process."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "error"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def wait_for(probe: Callable[[], T | None], timeout: float = 15.0, interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def udp_load(port: int, stop: threading.Event) -> None:
    """Segments to 127.0.0.1:``port`` over UDP, up to ~20k a second, until ``stop``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        while not stop.is_set():
            for _ in range(100):
                sock.sendto(HEADER + json.dumps(segment()).encode(), ("127.0.0.1", port))
            time.sleep(0.005)


def segment(trace_id: str | None = None, **fields: Any) -> dict[str, Any]:
    """A minimal valid, completed segment document (override any field)."""
    now = time.time()
    doc: dict[str, Any] = {
        "name": "svc",
        "id": new_entity_id(),
        "trace_id": trace_id or new_trace_id(now),
        "start_time": now,
        "end_time": now + 0.25,
    }
    doc.update(fields)
    return doc


def get_documents(client: Any, trace_id: str) -> list[dict[str, Any]] | None:
    """The stored documents of a trace, or None when it is not there (yet)."""
    traces = client.batch_get_traces(TraceIds=[trace_id])["Traces"]
    if not traces:
        return None
    return [json.loads(s["Document"]) for s in traces[0]["Segments"]]


def find_summary(client: Any, trace_id: str, start: float, end: float) -> dict[str, Any] | None:
    """The trace's summary in ``[start, end]``, following NextToken through every page."""
    for page in client.get_paginator("get_trace_summaries").paginate(StartTime=start, EndTime=end):
        for summary in page["TraceSummaries"]:
            if summary["Id"] == trace_id:
                return dict(summary)
    return None


def column_codecs(transport: Transport, db: str, table: str) -> dict[str, str]:
    """Each column of ``table`` and the codec it declares (``""`` when none)."""
    rows = transport.query_arrow(
        "SELECT name, compression_codec FROM system.columns "
        "WHERE database = {db:String} AND table = {t:String}",
        {"db": db, "t": table},
    ).to_pylist()
    return {row["name"]: row["compression_codec"] for row in rows}


def old_schema(transport: Transport, before: int) -> str:
    """A new database holding the schema as a server left it before migration ``before``:
    every migration numbered below it applied and recorded (numbers have gaps, so this is
    not the first ``before - 1``). Returns the database's name."""
    db = f"before{before}_{new_entity_id()}"
    transport.execute(f"CREATE DATABASE `{db}`")
    transport.execute(
        f"CREATE TABLE `{db}`.schema_migrations (version UInt32, description String, "
        "applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version"
    )
    for number, description, statements in (m for m in MIGRATIONS if m[0] < before):
        for statement in statements:
            transport.execute(statement.format(db=f"`{db}`", ttl_days=30))
        transport.execute(
            f"INSERT INTO `{db}`.schema_migrations (version, description) VALUES "
            "({v:UInt32}, {d:String})",
            {"v": number, "d": description},
        )
    return db


Node = tuple[str, str]  # (name, type) of a service graph node

# What the sample app's service graph must hold (``fluoroscope demo``)
DEMO_STAGE: Node = ("orders-api/prod", "AWS::ApiGateway::Stage")
DEMO_FUNCTION: Node = ("orders-api-createOrder", "AWS::Lambda::Function")
DEMO_EDGES: set[tuple[Node, Node]] = {
    (("orders-api/prod", "client"), DEMO_STAGE),
    (DEMO_STAGE, ("orders-api-createOrder", "AWS::Lambda")),
    (("orders-api-createOrder", "AWS::Lambda"), DEMO_FUNCTION),
    (DEMO_FUNCTION, ("orders", "AWS::DynamoDB::Table")),
    (DEMO_FUNCTION, ("orders-receipts", "AWS::S3::Bucket")),
    (DEMO_FUNCTION, ("127.0.0.1", "remote")),
}


def service_edges(client: Any, seconds: float = 600) -> set[tuple[Node, Node]]:
    """The edges of GetServiceGraph over the last ``seconds``, as (name, type) pairs."""
    now = time.time()
    graph = client.get_service_graph(StartTime=now - seconds, EndTime=now + 60)
    by_ref = {s["ReferenceId"]: (s["Name"], s.get("Type", "")) for s in graph["Services"]}
    return {
        (by_ref[s["ReferenceId"]], by_ref[e["ReferenceId"]])
        for s in graph["Services"]
        for e in s.get("Edges", [])
        if e["ReferenceId"] in by_ref
    }


def table_setting(transport: Transport, db: str, table: str, name: str) -> str | None:
    """The table setting ``name`` as the table's definition sets it (quotes taken off;
    None: the engine's default)."""
    query = (
        transport.query_arrow(
            "SELECT create_table_query FROM system.tables WHERE database = {db:String} "
            "AND name = {t:String}",
            {"db": db, "t": table},
        )
        .column(0)[0]
        .as_py()
    )
    for setting in query.rpartition(" SETTINGS ")[2].split(", "):
        key, _, value = setting.partition(" = ")
        if key == name:
            return str(value).strip("'")
    return None


def two_entity_traces(start: float, count: int) -> list[dict[str, Any]]:
    """``count`` traces a second apart from ``start``: a segment and a streamed
    subsegment each."""
    docs: list[dict[str, Any]] = []
    for k in range(count):
        trace_id = new_trace_id(start + k)
        root = new_entity_id()
        docs.append({"trace_id": trace_id, "id": root, "name": "frontend",
                     "start_time": start + k, "end_time": start + k + 0.2,
                     "http": {"response": {"status": 200}}})  # fmt: skip
        docs.append({"trace_id": trace_id, "id": new_entity_id(), "parent_id": root,
                     "type": "subsegment", "name": "orders", "namespace": "aws",
                     "start_time": start + k + 0.05, "end_time": start + k + 0.15})  # fmt: skip
    return docs


def stored_once(
    store: Store, counters: Mapping[str, int], good: list[dict[str, Any]], lost: int
) -> None:
    """Every document of ``good`` (one entity each) is stored exactly once, and the
    pipeline whose ``counters`` these are dropped ``lost`` others as unstorable."""
    assert counters["lost_unstorable"] == lost
    assert counters["stored_documents"] == len(good)
    found = store.entities([doc["trace_id"] for doc in good])
    assert {tid: len(rows) for tid, rows in found.items()} == {doc["trace_id"]: 1 for doc in good}


def summarized_without(store: Store, good: list[dict[str, Any]], trace_id: str) -> None:
    """Every trace of ``good`` is summarized (stored in the last ten minutes), and nothing
    of the refused document of ``trace_id`` was merged into its summary."""
    page = store.summaries(time.time() - 600, time.time() + 600, limit=1000)
    summaries = {s.id: s for s in page.summaries}
    assert set(summaries) == {doc["trace_id"] for doc in good}
    assert summaries[trace_id].http is None
