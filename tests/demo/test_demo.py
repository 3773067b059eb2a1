"""``fluoroscope demo`` end to end: the command runs the sample app, the X-Ray API shows it.

Each test runs the real command as a subprocess (as a user would), on loopback ports,
and reads what it produced through boto3's ``xray`` client: the service graph of
client → API Gateway stage → Lambda → function → DynamoDB / S3 / the third-party host,
cold and warm invocations, and valid documents — with an AWS profile and endpoint in the
environment (and an HTTP proxy) that the demo must ignore. Ctrl-C (SIGINT) stops everything with
exit status 0; ``--duration`` ends the run by itself and leaves a reused server alone.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fluoroscope.model.documents import validate_document
from tests.support import (
    DEMO_EDGES,
    ServerProcess,
    free_port,
    run_demo,
    service_edges,
    start_server,
    wait_for,
)


def _run_demo(port: int, data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    # a hostile setup the demo must ignore: a missing profile, a wrong endpoint, a proxy
    hostile = {
        "AWS_PROFILE": "no-such-profile",
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "HTTP_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
    }
    return run_demo(port, data_dir, "--rate", "12", *extra, env=hostile)


def _finish(proc: subprocess.Popen[str], timeout: float = 90) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"demo did not stop within {timeout} s:\n{out}")
    return out or ""


def _check_messages(out: str, duration: int) -> None:
    """A run with ``--duration``: no Ctrl-C hint, and the last progress line (drawn
    whole: stdout is a pipe) counts what the closing summary counts."""
    assert "Ctrl-C" not in out, out
    assert "Traceback" not in out, out  # a caller that stopped waiting is no crash
    # the banner's longest line, whole on one line though stdout is not a terminal
    assert re.search(
        r"^X-Ray API:   (\S+)  \(boto3\.client\('xray', endpoint_url='\1'\)\)$", out, re.M
    )
    assert f"Traffic for {duration} s, then the demo stops." in out, out
    progress = re.findall(r"(\d+) requests?  (\d+) ok  (\d+) 4xx  (\d+) throttled  (\d+) 5xx", out)
    summary = re.search(
        r"Sent (\d+) requests?: (\d+) ok, (\d+) client errors?, (\d+) throttled, "
        r"(\d+) server errors?, \d+ unanswered\.",
        out,
    )
    assert progress and summary, out
    assert progress[-1] == summary.groups()[:5], out
    for noun in ("request", "client error", "server error"):
        assert not re.search(rf"\b1 {noun}s\b", out), out


def _xray(port: int) -> Any:
    return ServerProcess(port, Path(), None).xray()  # type: ignore[arg-type]


def _all_documents(client: Any) -> list[dict[str, Any]]:
    now = time.time()
    ids = [
        s["Id"]
        for page in client.get_paginator("get_trace_summaries").paginate(
            StartTime=now - 600, EndTime=now + 60
        )
        for s in page["TraceSummaries"]
    ]
    docs: list[dict[str, Any]] = []
    for i in range(0, len(ids), 5):
        for trace in client.batch_get_traces(TraceIds=ids[i : i + 5])["Traces"]:
            docs += [json.loads(s["Document"]) for s in trace["Segments"]]
    return docs


def _function_segments(docs: list[dict[str, Any]]) -> tuple[int, int]:
    """(cold, warm) counts of ``AWS::Lambda::Function`` segments."""
    cold = warm = 0
    for doc in docs:
        # an inferred node for a Lambda-to-Lambda call shares the type until the callee's
        # own segment replaces it (a window that widens on a busy machine): not a function
        if doc.get("origin") != "AWS::Lambda::Function" or doc.get("inferred"):
            continue
        names = [s["name"] for s in doc.get("subsegments", [])]
        assert "Invocation" in names and "Overhead" in names, doc
        if "Initialization" in names:
            cold += 1
        else:
            warm += 1
    return cold, warm


@pytest.fixture
def own_server_demo(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = free_port()
    proc = _run_demo(port, tmp_path / "data", "--duration", "120")
    yield port, proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def test_demo_shows_the_serverless_app_and_stops_cleanly_on_ctrl_c(
    own_server_demo: tuple[int, subprocess.Popen[str]],
) -> None:
    port, proc = own_server_demo
    client = _xray(port)

    def graph_complete() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"demo exited early:\n{_finish(proc)}")
        try:
            return service_edges(client) >= DEMO_EDGES
        except Exception:  # the server is still starting
            return False

    wait_for(graph_complete, timeout=90, interval=0.5)

    def cold_and_warm() -> tuple[int, int] | None:
        docs = _all_documents(client)
        for doc in docs:
            validate_document(doc, now=time.time())
        cold, warm = _function_segments(docs)
        return (cold, warm) if cold and warm else None

    wait_for(cold_and_warm, timeout=30, interval=0.5)

    proc.send_signal(signal.SIGINT)
    out = _finish(proc)
    assert proc.returncode == 0, out
    # the demo points at the web console its server serves
    assert f"Console:     http://127.0.0.1:{port}/" in out, out
    assert "Stopped. Stored" in out, out


def test_demo_reuses_a_running_server_and_every_document_is_valid(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server")
    try:
        proc = _run_demo(server.port, tmp_path / "unused", "--duration", "4")
        out = _finish(proc)
        assert proc.returncode == 0, out
        assert "already running" in out, out
        _check_messages(out, duration=4)
        assert server.process.poll() is None, "the reused server must keep running"
        client = server.xray()
        docs = wait_for(lambda: _all_documents(client), timeout=15)
        now = time.time()
        for doc in docs:
            validate_document(doc, now=now)
        origins = {d.get("origin") for d in docs}
        assert {"AWS::ApiGateway::Stage", "AWS::Lambda", "AWS::Lambda::Function"} <= origins
        stages = [d for d in docs if d.get("origin") == "AWS::ApiGateway::Stage"]
        for stage in stages:
            assert stage["name"] == "orders-api/prod"
            assert stage["resource_arn"].startswith("arn:aws:apigateway:us-east-1::/restapis/")
            assert set(stage["annotations"]) >= {"aws:api_id", "aws:api_stage"}
            assert stage["aws"]["api_gateway"]["stage"] == "prod"
            assert [s["name"] for s in stage["subsegments"]] == ["Lambda"]
        assert not (tmp_path / "unused").exists(), "no second server was started"
    finally:
        server.stop()


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _data_dir_free(data_dir: Path) -> bool:
    """No process holds the server's lock on ``data_dir`` (the server stops answering on its
    port before it has finished flushing and let the directory go)."""
    fd = os.open(data_dir / "server.pid", os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            return False
        raise
    finally:
        os.close(fd)  # closing drops a lock taken here
    return True


def test_a_killed_demo_leaves_no_server_behind(tmp_path: Path) -> None:
    """The demo's own server stops cleanly when the demo dies without stopping it (SIGKILL):
    its port and data directory are free again, and what it stored is kept."""
    port = free_port()
    proc = _run_demo(port, tmp_path / "data", "--duration", "120")
    try:
        wait_for(lambda: _answers(port) and service_edges(_xray(port)), timeout=90)
    finally:
        proc.kill()
        proc.communicate()
    wait_for(lambda: not _answers(port), timeout=60)
    wait_for(lambda: _data_dir_free(tmp_path / "data"), timeout=60)
    server = start_server(tmp_path / "data", port=port)  # the data directory is free
    try:
        assert service_edges(server.xray())
    finally:
        server.stop()


def test_port_zero_runs_the_demo_on_a_free_port(tmp_path: Path) -> None:
    """``--listen 127.0.0.1:0``: the demo picks a port free for HTTP and UDP, starts its
    server there and says where, and the app's traces reach it."""
    proc = _run_demo(0, tmp_path / "data", "--duration", "3")
    out = _finish(proc)
    assert proc.returncode == 0, out
    _check_messages(out, duration=3)
    started = re.search(r"Started the Fluoroscope server on 127\.0\.0\.1:(\d+) ", out)
    assert started and int(started[1]) != 0, out
    assert f"Console:     http://127.0.0.1:{started[1]}/" in out, out
    stored = re.search(r"Stopped\. Stored (\d+) documents", out)
    assert stored and int(stored[1]) > 0, out
