"""OpenTelemetry JS (the official ``@opentelemetry/sdk-trace-node`` with its OTLP/HTTP
exporters, JSON and protobuf, from npm) exporting to a server with nothing but
``OTEL_EXPORTER_OTLP_ENDPOINT`` set, read back through boto3's ``xray`` client: the
trace in either id form, its fault, the failed HTTP call with its exception, the
resource attributes. The SDK is installed into ``~/.cache/fluoroscope/node-otel``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.node import npm_modules
from tests.support import ServerProcess, get_documents, wait_for

SCRIPT = Path(__file__).resolve().parent / "node" / "otel_export.js"
PACKAGES = [
    "@opentelemetry/api@1",
    "@opentelemetry/sdk-trace-node@2",
    "@opentelemetry/resources@2",
    "@opentelemetry/exporter-trace-otlp-http@0.223",
    "@opentelemetry/exporter-trace-otlp-proto@0.223",
]


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return npm_modules("node-otel", PACKAGES, "@opentelemetry/exporter-trace-otlp-proto")


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_otel_js_exports_a_trace_that_reads_back_as_xray_segments(
    node_modules: Path, server: ServerProcess, encoding: str
) -> None:
    service = f"node-shop-{encoding}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "NODE_PATH": str(node_modules),
        "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
    }
    done = subprocess.run(
        ["node", str(SCRIPT), service, encoding],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    hex32 = json.loads(done.stdout.strip().splitlines()[-1])["traceId"]
    client = server.xray()
    docs = wait_for(lambda: get_documents(client, hex32), timeout=30)
    xray_form = f"1-{hex32[:8]}-{hex32[8:]}"
    assert docs == get_documents(client, xray_form)
    (root,) = [d for d in docs if "parent_id" not in d]
    assert root["name"] == service
    assert root["fault"] is True
    assert root["aws"]["xray"]["sdk"] == "opentelemetry for nodejs"
    assert root["http"]["request"]["method"] == "GET"
    assert root["http"]["response"]["status"] == 502
    (call,) = root["subsegments"]
    assert call["namespace"] == "remote"
    # the Collector's rule: new conventions' server.address does not name a call, so
    # the (sanitised) span name does
    assert call["name"] == "GET"
    assert call["fault"] is True
    assert call["http"]["response"]["status"] == 503
    (cause,) = call["cause"]["exceptions"]
    assert cause["message"] == "payments unavailable"
    assert cause["stack"], "the exception's stack is kept"
    assert root["metadata"]["default"]["otel.resource.deployment.environment"] == "test"
    # the remote end of the call is inferred, as for X-Ray SDK data
    (inferred,) = [d for d in docs if d.get("inferred")]
    assert inferred["parent_id"] == call["id"] and inferred["fault"] is True
