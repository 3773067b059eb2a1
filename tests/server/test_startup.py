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
    url = f"clickhouse://user:secret@127.0.0.1:{port}/traces"
    line = _one_line(_server("--data-dir", str(tmp_path), "--store", url))
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
