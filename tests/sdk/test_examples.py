"""The SDK examples run and send valid documents (to a socket on loopback)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.sdk.conftest import UDPDaemon, flatten

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(script: str, daemon: UDPDaemon, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        env={**os.environ, "AWS_XRAY_DAEMON_ADDRESS": daemon.address, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_asyncio_worker(daemon: UDPDaemon) -> None:
    _run("asyncio_worker.py", daemon)
    docs = daemon.documents(5)
    assert sorted(d["annotations"]["job"] for d in docs) == [0, 1, 2, 3, 4]
    failed = [e for e in flatten(docs).values() if e.get("fault")]
    assert [e["name"] for e in failed] == ["fetch"]
    assert failed[0]["cause"]["exceptions"][0]["type"] == "TimeoutError"


def test_lambda_handler(daemon: UDPDaemon) -> None:
    root = f"1-{int(time.time()):08x}-abcdef0123456789abcdef01"
    header = f"Root={root};Parent=53995c3f42cd8ad8;Sampled=1"
    out = _run("lambda_handler.py", daemon, _X_AMZN_TRACE_ID=header)
    assert out.count('"total": 7') == 2
    docs = daemon.documents(2)
    assert [d["annotations"]["cold_start"] for d in docs] == [True, False]
    assert all(d["parent_id"] == "53995c3f42cd8ad8" and d["trace_id"] == root for d in docs)
    assert {s["name"] for d in docs for s in d["subsegments"]} == {"validate", "price"}
