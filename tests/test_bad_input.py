"""Bad input on the real command line: every flag given a wrong value and every
environment variable set to garbage gets ONE line on stderr naming the flag or
variable, what it got and what it expects, and exit status 2.

``--listen :PORT`` means 127.0.0.1:PORT (loopback, the default host; never every
interface), and ``[::1]:PORT`` is IPv6 loopback: both are valid, and both work.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support import free_port, wait_for

VALID_TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"

# (command line, environment, words the one line must hold)
CASES: list[tuple[list[str], dict[str, str], list[str]]] = [
    (["daemon"], {}, ["--server", "FLUOROSCOPE_DAEMON_SERVER", "http://HOST:PORT"]),
    (["daemon", "--server", "ftp://x:1"], {}, ["--server", "'ftp://x:1'", "http://HOST:PORT"]),
    (
        ["daemon", "--server", "http://127.0.0.1:9", "--listen", "localhost:99999"],
        {},
        ["--listen", "'localhost:99999'", "0 to 65535"],
    ),
    (
        ["daemon", "--server", "http://127.0.0.1:9", "--batch-size", "0"],
        {},
        ["--batch-size", "1 to 1000", "got 0"],
    ),
    (["server", "--listen", "localhost:99999"], {}, ["--listen", "'localhost:99999'", "HOST:PORT"]),
    (["server", "--listen", "nowhere"], {}, ["--listen", "'nowhere'", "expected HOST:PORT"]),
    (["server", "--listen", "[::1"], {}, ["--listen", "'[::1'", "expected HOST:PORT"]),
    (["server", "--listen", "host:port"], {}, ["--listen", "'host:port'", "0 to 65535"]),
    (["server", "--udp-listen", "10.0.0.1"], {}, ["--udp-listen", "'10.0.0.1'", "HOST:PORT"]),
    (
        ["server", "--store", "clikhouse://app:hunter2secret@127.0.0.1:8123/db"],
        {},
        ["--store", "clikhouse://app:***@127.0.0.1:8123/db", "expected 'chdb' or clickhouse://"],
    ),
    (
        ["server", "--store", "clickhouse://127.0.0.1:81x23/db"],
        {},
        ["--store", "'clickhouse://127.0.0.1:81x23/db'", "expected"],
    ),
    (["server", "--store", "chbd"], {}, ["--store", "'chbd'", "expected 'chdb'"]),
    (["server", "--retention-days", "a week"], {}, ["--retention-days", "'a week'", "whole"]),
    (["server", "--retention-days", "0"], {}, ["--retention-days", "got 0", "1 or more"]),
    (["server", "--cached-traces", "lots"], {}, ["--cached-traces", "'lots'", "whole number"]),
    (["server", "--cached-traces", "5"], {}, ["--cached-traces", "got 5", ">= 100"]),
    (["server", "--ingest-workers", "0"], {}, ["--ingest-workers", "got 0", "1 to 64"]),
    (["server", "--ingest-workers", "two"], {}, ["--ingest-workers", "'two'", "whole number"]),
    (["server", "--access-key", "AKIDONLY"], {}, ["--access-key", "'AKIDONLY'", "ACCESS_KEY_ID"]),
    (["server", "--access-key", "AK:short"], {}, ["--access-key", "one of 5", "at least 16"]),
    (["server", "--api-key", "tiny"], {}, ["--api-key", "one of 4", "at least 16"]),
    (["server", "--allowed-host", "http://x/"], {}, ["--allowed-host", "'http://x/'", "host name"]),
    (["traces", "--since", "1y"], {}, ["--since", "'1y'", "expected a duration"]),
    (["traces", "--limit", "0"], {}, ["--limit", "'0'", ">= 1"]),
    (["traces", "--limit", "many"], {}, ["--limit", "'many'", "whole number"]),
    (["traces", "--server", "ftp://127.0.0.1"], {}, ["--server", "'ftp://127.0.0.1'", "http://"]),
    (["traces", "--server", "127.0.0.1:20x0"], {}, ["--server", "20x0", "expected http://"]),
    (["trace", "not-an-id"], {}, ["'not-an-id'", "expected 1-XXXXXXXX"]),
    (["trace", VALID_TRACE_ID, "--server", "gopher://x"], {}, ["--server", "'gopher://x'"]),
    (["demo", "--rate", "fast"], {}, ["--rate", "'fast'", "expected a number"]),
    (["demo", "--rate", "0"], {}, ["--rate", "got 0", "at most 500"]),
    (["demo", "--duration", "soon"], {}, ["--duration", "'soon'", "expected a number"]),
    (["demo", "--duration", "-1"], {}, ["--duration", "got -1", "0 or more"]),
    (["demo", "--listen", "here"], {}, ["--listen", "'here'", "HOST:PORT"]),
    (["server"], {"FLUOROSCOPE_LISTEN": "garbage"}, ["FLUOROSCOPE_LISTEN", "'garbage'", "HOST"]),
    (["server"], {"FLUOROSCOPE_UDP_LISTEN": "%%%"}, ["FLUOROSCOPE_UDP_LISTEN", "'%%%'"]),
    (["server"], {"FLUOROSCOPE_STORE": "garbage"}, ["FLUOROSCOPE_STORE", "'garbage'", "expected"]),
    (["server"], {"FLUOROSCOPE_RETENTION_DAYS": "x"}, ["FLUOROSCOPE_RETENTION_DAYS", "'x'"]),
    (["server"], {"FLUOROSCOPE_RETENTION_DAYS": "-3"}, ["FLUOROSCOPE_RETENTION_DAYS", "got -3"]),
    (["server"], {"FLUOROSCOPE_CACHED_TRACES": "x"}, ["FLUOROSCOPE_CACHED_TRACES", "'x'"]),
    (["server"], {"FLUOROSCOPE_INGEST_WORKERS": "x"}, ["FLUOROSCOPE_INGEST_WORKERS", "'x'"]),
    (["server"], {"FLUOROSCOPE_INGEST_WORKERS": "999"}, ["FLUOROSCOPE_INGEST_WORKERS", "999"]),
    (["server"], {"FLUOROSCOPE_ACCESS_KEYS": "x"}, ["FLUOROSCOPE_ACCESS_KEYS", "'x'", "ID:SECRET"]),
    (["server"], {"FLUOROSCOPE_API_KEYS": "x"}, ["FLUOROSCOPE_API_KEYS", "one of 1", "16"]),
    (["server"], {"FLUOROSCOPE_ALLOWED_HOSTS": "a/b"}, ["FLUOROSCOPE_ALLOWED_HOSTS", "'a/b'"]),
    (["server"], {"FLUOROSCOPE_INSECURE_NO_AUTH": "maybe"}, ["FLUOROSCOPE_INSECURE_NO_AUTH"]),
    (["traces"], {"FLUOROSCOPE_SERVER": "ftp://x"}, ["FLUOROSCOPE_SERVER", "'ftp://x'", "http"]),
    (["demo"], {"FLUOROSCOPE_DEMO_RATE": "fast"}, ["FLUOROSCOPE_DEMO_RATE", "'fast'", "number"]),
    (["demo"], {"FLUOROSCOPE_DEMO_DURATION": "x"}, ["FLUOROSCOPE_DEMO_DURATION", "'x'"]),
    (["demo"], {"FLUOROSCOPE_DEMO_OPEN": "maybe"}, ["FLUOROSCOPE_DEMO_OPEN", "'maybe'"]),
    (["server", "--bogus"], {}, ["--bogus", "No such option"]),
]


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUOROSCOPE_")}
    env.update(extra)
    return env


@pytest.mark.parametrize(
    ("args", "env", "words"), CASES, ids=[" ".join(a) + str(e) for a, e, _ in CASES]
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], words: list[str]
) -> None:
    if args[0] in ("server", "demo"):  # should a case not fail, nothing lands in the checkout
        args = [*args, "--data-dir", str(tmp_path / "data")]
    result = subprocess.run(
        [sys.executable, "-m", "fluoroscope", *args],
        capture_output=True, text=True, timeout=60, env=_env(env), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    assert "hunter2secret" not in result.stderr


def _start(listen: str, data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "server", "--listen", listen,
         "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env({}),
    )  # fmt: skip


def _answers(url: str, proc: subprocess.Popen[str]) -> bool:
    if proc.poll() is not None:
        out = proc.stdout.read() if proc.stdout else ""
        raise AssertionError(f"the server exited:\n{out}")
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(f"{url}/api/status", timeout=5) as response:
            return isinstance(json.loads(response.read()), dict)
    except OSError:
        return False


@pytest.mark.parametrize(("template", "base"), [
    (":{port}", "http://127.0.0.1:{port}"),
    ("[::1]:{port}", "http://[::1]:{port}"),
])  # fmt: skip
def test_a_bare_port_and_ipv6_loopback_listen_and_answer(
    tmp_path: Path, template: str, base: str
) -> None:
    port = free_port()
    proc = _start(template.format(port=port), tmp_path)
    try:
        wait_for(lambda: _answers(base.format(port=port), proc), timeout=90)
    finally:
        proc.send_signal(2)
        out, _ = proc.communicate(timeout=60)
    assert f"and {base.format(port=port)} (X-Ray API)" in out
    assert proc.returncode == 0, out
