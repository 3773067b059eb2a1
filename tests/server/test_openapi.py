"""The OpenAPI description the server ships is the one the generator writes today, and
the server serves it."""

from __future__ import annotations

import importlib.util
import json
import urllib.request
from pathlib import Path
from types import ModuleType

from fluoroscope.server.app import OPERATIONS
from fluoroscope.server.openapi import OPENAPI_PATH
from tests.support import ServerProcess

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "generate_openapi.py"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_openapi", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_description_is_up_to_date() -> None:
    assert OPENAPI_PATH.read_text(encoding="utf-8") == _generator().render(), (
        "src/fluoroscope/server/openapi.json is stale: run scripts/generate_openapi.py"
    )


def test_every_route_is_described_and_served(server: ServerProcess) -> None:
    with urllib.request.urlopen(f"{server.url}/openapi.json", timeout=10) as response:
        assert response.headers["content-type"] == "application/json"
        served = json.loads(response.read())
    assert served == json.loads(OPENAPI_PATH.read_bytes())
    described = {
        path: operation["operationId"]
        for path, methods in served["paths"].items()
        for operation in methods.values()
    }
    assert {p: described.get(p) for p in OPERATIONS} == OPERATIONS
    assert {"/api/status", "/metrics", "/openapi.json"} <= described.keys()
