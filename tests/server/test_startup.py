"""Start-up failures of the real ``fluoroscope server`` name their real cause.

Each case runs the command as a user would and expects exit status 2 and one line on
stderr naming the path or address and the reason: a data directory that cannot be
made (under a file, where not permitted), one that cannot be written, one held by
another server (which is named), a port in use, a store URL nothing answers at. The
engine's own message and error codes appear only with ``--debug``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support import free_port, start_server, wait_for


def _server(*args: str, port: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUOROSCOPE_")}
    # OTLP's own default ports may be held by another server on this machine: its warning
    # would be a second line
    env["FLUOROSCOPE_OTLP_HTTP_LISTEN"] = env["FLUOROSCOPE_OTLP_GRPC_LISTEN"] = "off"
    return subprocess.run(
        [sys.executable, "-m", "fluoroscope", "server", "--listen",
         f"127.0.0.1:{port or free_port()}", *args],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single error line of a failed start (asserting there is exactly one)."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr and "Code:" not in result.stderr
    assert "cannot listen" not in lines[0] or "--listen" in lines[0]
    return lines[0]


def test_a_data_dir_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    line = _one_line(_server("--data-dir", str(tmp_path / "file" / "data")))
    assert f"cannot create the data directory {tmp_path / 'file' / 'data'}" in line
    assert f"{tmp_path / 'file'} is a file, not a directory" in line


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    line = _one_line(_server("--data-dir", str(tmp_path / "file")))
    assert f"the data directory {tmp_path / 'file'} is a file, not a directory" in line


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux sysfs")
def test_a_data_dir_where_directories_cannot_be_made() -> None:
    # sysfs refuses new directories to everyone, root included
    path = f"/sys/fluoroscope-{uuid.uuid4().hex[:8]}"
    line = _one_line(_server("--data-dir", path))
    assert f"cannot create the data directory {path}: " in line
    assert line.endswith(("Operation not permitted", "Permission denied"))


@pytest.mark.skipif(not os.path.isdir("/sys/kernel"), reason="needs Linux sysfs")
def test_a_data_dir_that_is_not_writable() -> None:
    # an existing directory no one may create files in, root included
    line = _one_line(_server("--data-dir", "/sys"))
    assert "the data directory /sys is not writable: " in line


def test_a_data_dir_held_by_another_server_names_it(tmp_path: Path) -> None:
    first = start_server(tmp_path)
    try:
        line = _one_line(_server("--data-dir", str(tmp_path)))
        assert f"the data directory {tmp_path} is in use by another Fluoroscope server" in line
        assert f"pid {first.process.pid}: " in line
        assert "--data-dir" in line
        assert first.status()  # the first one is untouched
    finally:
        first.stop()
    # once it stopped, the directory is free again
    again = start_server(tmp_path)
    again.stop()


def test_the_engine_refusing_the_store_is_one_line_unless_debug(tmp_path: Path) -> None:
    """Another process (not a Fluoroscope server) holds the embedded engine's files."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from chdb import session\n"
         f"s = session.Session({str(tmp_path / 'chdb')!r}); print('open', flush=True)\n"
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        line = _one_line(_server("--data-dir", str(tmp_path)))
        assert f"cannot open the embedded store at {tmp_path / 'chdb'}" in line
        debug = _server("--data-dir", str(tmp_path), "--debug")
        assert debug.returncode == 2
        assert "Traceback" in debug.stderr and "Code: " in debug.stderr
        assert debug.stderr.splitlines()[-1] == line
    finally:
        holder.communicate("", timeout=60)


def test_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _one_line(_server("--data-dir", str(tmp_path), port=port))
    assert f"cannot listen on 127.0.0.1:{port} (HTTP): " in line
    assert "in use" in line and "--listen" in line


def test_a_udp_port_in_use(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", port))
        line = _one_line(_server("--data-dir", str(tmp_path), port=port))
    assert f"cannot listen on 127.0.0.1:{port} (UDP segments): " in line


def test_a_store_url_nothing_answers_at(tmp_path: Path) -> None:
    port = free_port()
    listen = wait_for(lambda: (p := free_port()) != port and p)  # else it answers itself
    url = f"clickhouse://user:secret@127.0.0.1:{port}/traces"
    line = _one_line(_server("--data-dir", str(tmp_path), "--store", url, port=listen))
    assert f"cannot reach ClickHouse at 127.0.0.1:{port} (Connection refused)" in line
    assert "secret" not in line
    assert not (tmp_path / "server.pid").exists()  # the embedded store's dir is not used


def test_a_started_server_writes_its_pid(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        pid = wait_for(lambda: (tmp_path / "server.pid").read_text().strip())
        assert pid == str(server.process.pid)
    finally:
        server.stop()


def test_port_zero_listens_on_one_free_port_and_announces_it(tmp_path: Path) -> None:
    """``--listen 127.0.0.1:0`` picks one port free for both HTTP and UDP (as a daemon
    address has one port) and announces that port, not 0; both protocols answer there."""
    import json
    import re
    import signal
    import threading

    import boto3
    from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
    from aws_xray_sdk.core.models.segment import Segment

    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUOROSCOPE_")}
    env["FLUOROSCOPE_OTLP_HTTP_LISTEN"] = env["FLUOROSCOPE_OTLP_GRPC_LISTEN"] = "off"
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "server", "--listen", "127.0.0.1:0",
         "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
    reader.start()
    announced = re.compile(
        r"listening on udp://127\.0\.0\.1:(\d+) \(segments\) and http://127\.0\.0\.1:(\d+) "
    )
    try:
        found = wait_for(lambda: next(filter(None, map(announced.search, lines)), None), 60)
        udp_port, http_port = int(found[1]), int(found[2])
        assert udp_port == http_port != 0, lines
        assert f"Console: http://127.0.0.1:{http_port}/\n" in "".join(lines)
        segment = Segment("port-zero")
        segment.close()
        emitter = UDPEmitter(f"127.0.0.1:{udp_port}")
        emitter.send_entity(segment)
        emitter._socket.close()  # the SDK never closes its socket
        client = boto3.client(
            "xray", endpoint_url=f"http://127.0.0.1:{http_port}", region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
        )  # fmt: skip
        stored = wait_for(
            lambda: client.batch_get_traces(TraceIds=[segment.trace_id])["Traces"], 30
        )
        assert json.loads(stored[0]["Segments"][0]["Document"])["name"] == "port-zero"
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        reader.join(10)  # the pipe ends with the process
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == 0, "".join(lines)
