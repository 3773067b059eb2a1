"""The terminal commands against a server that requires credentials: the key in
``FLUOROSCOPE_API_KEY`` is sent as ``Authorization: Bearer``; without it (or with a wrong
one) the refusal says what to set."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support import ServerProcess, segment, start_server, wait_for

KEY = "terminal-test-key-0123456789"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("keyed"), "--api-key", KEY, api_key=KEY)
    yield server
    server.stop()


def _run(server: ServerProcess, key: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUOROSCOPE_")}
    env["FLUOROSCOPE_SERVER"] = server.url
    if key is not None:
        env["FLUOROSCOPE_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "fluoroscope", *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [("traces",), ("logs", "query", "fields @message"), ("critical-path",)],
    ids=["traces", "logs-query", "critical-path"],
)
def test_without_a_key_the_refusal_says_what_to_set(
    keyed: ServerProcess, args: tuple[str, ...]
) -> None:
    done = _run(keyed, None, *args)
    assert done.returncode == 2
    assert "set FLUOROSCOPE_API_KEY to one of the server's --api-key keys" in done.stderr
    wrong = _run(keyed, "not-the-key", *args)
    assert wrong.returncode == 2
    assert "the key in FLUOROSCOPE_API_KEY was refused" in wrong.stderr


def test_with_the_key_every_command_reads_the_server(keyed: ServerProcess) -> None:
    doc = segment(name="keyed-svc")
    keyed.send_documents(doc)

    def listed() -> subprocess.CompletedProcess[str] | None:
        done = _run(keyed, KEY, "traces")
        assert done.returncode == 0, done.stderr
        return done if doc["trace_id"] in done.stdout else None

    wait_for(listed, timeout=60, interval=0.5)
    trace = _run(keyed, KEY, "trace", doc["trace_id"], "--logs")
    assert trace.returncode == 0, trace.stderr
    assert "keyed-svc" in trace.stdout
    logs = _run(keyed, KEY, "logs", "query", "fields @message", "--since", "1h")
    assert logs.returncode == 0, logs.stderr
    path = _run(keyed, KEY, "critical-path")
    assert path.returncode == 0, path.stderr
