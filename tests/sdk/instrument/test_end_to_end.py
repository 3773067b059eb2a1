"""End to end: instrumented boto3 and requests calls → UDP → the real server → read back.

The AWS calls go to moto on loopback, the HTTP call to a recording server; the
documents travel over UDP to a ``fluoroscope server`` subprocess, and the server's
X-Ray API (read with an uninstrumented boto3 client) returns the trace with the
downstream nodes inferred from what the instrumentations recorded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from fluoroscope.sdk import Tracer
from fluoroscope.sdk.instrument import get_instrumentor
from tests.sdk.instrument.conftest import RecordingServer
from tests.sdk.instrument.test_botocore import Moto, client
from tests.support import ServerProcess, get_documents, start_server, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def xray_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(tmp_path_factory.mktemp("server"))
    yield proc
    proc.stop()


@pytest.fixture
def moto() -> Iterator[Moto]:
    server = Moto()
    yield server
    server.close()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def _entities(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = list(docs)
    while stack:
        doc = stack.pop()
        stack.extend(doc.get("subsegments", []))
        found.append(doc)
    return found


@pytest.mark.usefixtures("aws_env")
def test_instrumented_calls_reach_the_server_and_infer_downstream_nodes(
    xray_server: ServerProcess, moto: Moto, server: RecordingServer
) -> None:
    tracer = Tracer(
        service="checkout", daemon_address=f"127.0.0.1:{xray_server.port}", sampling=False
    )
    names = ("botocore", "requests", "urllib3")
    insts = [get_instrumentor(name) for name in names]
    ddb = client("dynamodb", moto.url)
    ddb.create_table(
        TableName="carts",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        for inst in insts:
            assert inst is not None
            assert inst.instrument()
        with tracer.segment() as seg:
            ddb.put_item(TableName="carts", Item={"id": {"S": "c1"}})
            requests.get(f"{server.url}/status/503", timeout=5)
        tracer.flush()
    finally:
        for inst in insts:
            assert inst is not None
            inst.uninstrument()
        tracer.close()
    xray = xray_server.xray()

    def stored() -> list[dict[str, Any]] | None:
        docs = get_documents(xray, seg.trace_id)
        return docs if docs and any(d.get("inferred") for d in docs) else None

    docs = wait_for(stored)
    recorded = {e["name"]: e for e in _entities(docs) if not e.get("inferred")}
    assert recorded["DynamoDB"]["aws"]["table_name"] == "carts"
    assert recorded["127.0.0.1"]["fault"] is True

    # Statistics are written right after the rows that made the documents readable.
    def graph_nodes() -> set[tuple[str, str | None]] | None:
        graph = xray.get_service_graph(StartTime=time.time() - 120, EndTime=time.time() + 5)
        nodes = {(s["Name"], s.get("Type")) for s in graph["Services"]}
        wanted = {("carts", "AWS::DynamoDB::Table"), ("127.0.0.1", "remote")}
        return nodes if wanted <= nodes else None

    wait_for(graph_nodes)
