"""The web examples (Flask, FastAPI) run, answer with the trace header and send valid segments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.sdk.conftest import UDPDaemon, by_name

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"


def _self_test(script: str, daemon: UDPDaemon) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--self-test"],
        env={**os.environ, "AWS_XRAY_DAEMON_ADDRESS": daemon.address},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_flask_example(daemon: UDPDaemon) -> None:
    lines = _self_test("flask_app.py", daemon)
    assert lines == [
        f"/orders/42 200 Root={TRACE_ID};Sampled=1",
        f"/fail 500 Root={TRACE_ID};Sampled=1",
    ]
    docs = daemon.documents(2)
    assert {d["name"] for d in docs} == {"orders-web"}
    failed = next(d for d in docs if d.get("fault"))
    assert failed["cause"]["exceptions"][0]["type"] == "RuntimeError"
    ok = next(d for d in docs if not d.get("fault"))
    assert by_name([ok])["load"]["annotations"] == {"order_id": 42}


def test_fastapi_example(daemon: UDPDaemon) -> None:
    lines = _self_test("fastapi_app.py", daemon)
    assert [line.split(" ", 1)[0] for line in lines] == ["/orders/42", "/report", "/stream"]
    assert all(line.endswith(f"200 Root={TRACE_ID};Sampled=1") for line in lines)
    docs = daemon.documents(3)
    names = {sub["name"] for d in docs for sub in d.get("subsegments", ())}
    assert names == {"load", "render"}
    assert all(d["trace_id"] == TRACE_ID and d["name"] == "orders-api" for d in docs)
