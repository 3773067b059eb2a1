"""The ``clickhouse://`` store path (HttpTransport over clickhouse-connect), on loopback only.

Always run: nothing listening, a stand-in HTTP server that answers like an old ClickHouse,
the CLI's exit on an unreachable store, and the Arrow tables matching the table columns.
With a real ``clickhouse-server`` installed (Debian's ``apt-get install clickhouse-server``
gives 18.16; a modern ``/usr/bin/clickhouse`` also works), one is started on a free loopback
port in a temporary directory: too old, it must be refused by version; new enough, the schema
is migrated and a trace makes a write/read round trip through :class:`Store`.
"""

from __future__ import annotations

import http.server
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fluoroscope.ingest.assemble import Assembler
from fluoroscope.ingest.logwriter import LogWriter
from fluoroscope.model.errors import StoreUnavailable
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.store import encode
from fluoroscope.store.http_check import MIN_SERVER_VERSION, parse_version
from fluoroscope.store.logs import EVENT_SCHEMA, LogStore
from fluoroscope.store.store import Store
from fluoroscope.store.transport import HttpTransport
from tests import log_lines
from tests.support import free_port

_REQUIRED = ".".join(map(str, MIN_SERVER_VERSION))


def test_nothing_listening_is_a_clear_store_unavailable() -> None:
    port = free_port()
    with pytest.raises(StoreUnavailable) as info:
        HttpTransport(f"clickhouse://default:@127.0.0.1:{port}/fluoroscope")
    message = str(info.value)
    assert f"cannot reach ClickHouse at 127.0.0.1:{port}" in message
    assert "Connection refused" in message


def test_server_command_exits_2_with_the_error(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "fluoroscope", "server", "--listen", f"127.0.0.1:{free_port()}",
         "--data-dir", str(tmp_path), "--store", f"clickhouse://default:@127.0.0.1:{port}/fl"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert f"error: cannot reach ClickHouse at 127.0.0.1:{port}" in result.stderr


class _OldClickHouse(http.server.BaseHTTPRequestHandler):
    """Answers ``version()`` queries like a ClickHouse of ``version``, and fails every other
    query the way 18.16 fails clickhouse-connect's set-up (no ``system.settings.readonly``)."""

    version = "18.16.1"

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._answer(self.rfile.read(length).decode("utf-8", "replace"))

    def _answer(self, body: str = "") -> None:
        query = urllib.parse.unquote_plus(self.path) + " " + body
        if "version()" in query:
            payload = (self.version + ("\tUTC" if "timezone()" in query else "") + "\n").encode()
            self.send_response(200)
        else:
            payload = b"Code: 47, e.displayText() = DB::Exception: Unknown identifier: readonly"
            self.send_response(404)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def old_server(request: pytest.FixtureRequest) -> Iterator[int]:
    handler = type("Handler", (_OldClickHouse,), {"version": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("old_server", ["18.16.1", "21.8.15.7"], indirect=True)
def test_an_old_server_is_refused_by_version(old_server: int) -> None:
    with pytest.raises(StoreUnavailable) as info:
        HttpTransport(f"clickhouse://default:@127.0.0.1:{old_server}/fluoroscope")
    message = str(info.value)
    assert f"ClickHouse at 127.0.0.1:{old_server} is version " in message
    assert f"needs ClickHouse {_REQUIRED} or newer" in message


def test_a_connected_client_is_still_checked_for_its_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server whose set-up queries work (22.x) but that is below the floor."""
    closed: list[bool] = []

    class Client:
        server_version = "22.3.20.29"

        def close(self) -> None:
            closed.append(True)

    import clickhouse_connect

    monkeypatch.setattr(clickhouse_connect, "get_client", lambda **_: Client())
    with pytest.raises(StoreUnavailable, match=r"is version 22\.3\.20\.29, too old"):
        HttpTransport("clickhouse://default:@127.0.0.1:8123/fluoroscope")
    assert closed == [True]


def test_arrow_tables_name_the_table_columns(store: Store) -> None:
    """Both transports insert by column name: the Arrow schemas the store writes must name
    columns the migrated tables have, leaving out only those another writer fills."""
    schemas = {
        "spans": (encode._SPAN_SCHEMA, set()),
        "traces": (encode._SUMMARY_SCHEMA, {"groups"}),  # the group tracker's
        "node_stats": (encode._NODE_SCHEMA, set()),
        "edge_stats": (encode._EDGE_SCHEMA, set()),
    }
    for table, (schema, left_out) in schemas.items():
        columns = store._t.query_arrow(
            "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
            "ORDER BY position",
            {"db": store.database, "t": table},
        )
        names = columns.column(0).to_pylist()
        assert [n for n in names if n not in left_out] == schema.names, table


# -- a real ClickHouse server, when one is installed ------------------------------------


def _server_command(config: Path) -> list[str] | None:
    for candidate in ("clickhouse-server", "/usr/sbin/clickhouse-server"):
        found = shutil.which(candidate)
        if found:
            return [found, f"--config-file={config}"]
    for candidate in ("clickhouse", "/usr/bin/clickhouse"):
        found = shutil.which(candidate)
        if found:
            return [found, "server", f"--config-file={config}"]
    return None


def _write_config(root: Path, http_port: int, tcp_port: int) -> Path:
    (root / "users.xml").write_text(
        "<?xml version='1.0'?><yandex><profiles><default/></profiles><users><default>"
        "<password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile>"
        "<quota>default</quota></default></users><quotas><default/></quotas></yandex>"
    )
    config = root / "config.xml"
    config.write_text(
        f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{root}/server.log</log>
    <errorlog>{root}/server.err.log</errorlog><console>0</console></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <path>{root}/data/</path>
  <tmp_path>{root}/tmp/</tmp_path>
  <user_files_path>{root}/user_files/</user_files_path>
  <format_schema_path>{root}/format_schemas/</format_schema_path>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <users_config>{root}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mlock_executable>false</mlock_executable>
</yandex>
"""
    )
    return config


def _ask(port: int, query: str) -> str | None:
    url = f"http://127.0.0.1:{port}/?query=" + urllib.parse.quote(query)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return str(response.read().decode().strip())
    except (urllib.error.URLError, OSError):
        return None


@pytest.fixture(scope="module")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, str]]:
    """A real ClickHouse server on a free loopback port: (HTTP port, its version())."""
    root = tmp_path_factory.mktemp("clickhouse")
    http_port, tcp_port = free_port(), free_port()
    command = _server_command(_write_config(root, http_port, tcp_port))
    if command is None:
        pytest.skip(
            "no clickhouse-server binary on PATH, in /usr/sbin or at /usr/bin/clickhouse "
            "(apt-get install clickhouse-server gives Debian's 18.16)"
        )
    with open(root / "stdout.log", "w") as log:
        process = subprocess.Popen(
            command, cwd=root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        version = None
        while version is None and time.monotonic() < deadline and process.poll() is None:
            version = _ask(http_port, "SELECT version()")
            if version is None:
                time.sleep(0.2)
        if version is None:
            err = root / "server.err.log"
            tail = err.read_text()[-2000:] if err.exists() else ""
            pytest.fail(f"{command[0]} did not answer on 127.0.0.1:{http_port}: {tail}")
        yield http_port, version
    finally:
        process.terminate()  # its data is a temporary directory: no need to wait long
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_a_real_server_is_refused_or_round_trips(
    clickhouse_server: tuple[int, str], tmp_path: Path
) -> None:
    port, version = clickhouse_server
    url = f"clickhouse://default:@127.0.0.1:{port}/fluoroscope_test"
    if parse_version(version)[:2] < MIN_SERVER_VERSION:
        with pytest.raises(StoreUnavailable) as info:
            Store.open(url, tmp_path, 30)
        assert f"ClickHouse at 127.0.0.1:{port} is version {version}, too old" in str(info.value)
        return
    store = Store.open(url, tmp_path, 30)
    try:
        now = time.time()
        trace_id = new_trace_id(now)
        doc = {"name": "svc", "id": new_entity_id(), "trace_id": trace_id, "start_time": now,
               "end_time": now + 0.25, "annotations": {"k": "v\ttab"}}  # fmt: skip
        store.write(Assembler(store).assemble([doc, doc]))
        rows = store.entities([trace_id])[trace_id]
        assert [row.document for row in rows] == [doc]
        page = store.summaries(now - 60, now + 60)
        assert [summary.id for summary in page.summaries] == [trace_id]
        assert store.stats("node", now - 120, now + 120).num_rows >= 1
    finally:
        store.close()


def test_the_log_event_rows_name_the_table_columns(store: Store) -> None:
    """Both transports insert log events by column name: every column the writer sends
    exists in ``log_events``, and those it leaves out are computed (``json``) or none."""
    columns = store.transport.query_arrow(
        "SELECT name, default_kind FROM system.columns WHERE database = {db:String} "
        "AND table = 'log_events' ORDER BY position",
        {"db": store.database},
    ).to_pylist()
    stored = [c["name"] for c in columns if c["default_kind"] != "ALIAS"]
    assert stored == EVENT_SCHEMA.names


def test_a_real_server_stores_and_finds_log_lines(
    clickhouse_server: tuple[int, str], tmp_path: Path
) -> None:
    port, version = clickhouse_server
    if parse_version(version)[:2] < MIN_SERVER_VERSION:
        pytest.skip(f"ClickHouse {version} is refused (see the round trip test)")
    store = Store.open(f"clickhouse://default:@127.0.0.1:{port}/fluoroscope_logs", tmp_path, 30)
    logs = LogStore(store, 30)
    writer = LogWriter(logs)
    try:
        group = f"/aws/lambda/f{new_entity_id()}"
        logs.create_group(group)
        logs.create_stream(group, "s")
        now = int(time.time() * 1000)
        lines = [log_lines.START, log_lines.PY_INFO, log_lines.END, log_lines.REPORT]
        writer.submit(group, "s", [now] * len(lines), lines).result(timeout=60)
        assert [e.message for e in logs.events(group).events] == lines
        found = logs.trace_lines(log_lines.LAMBDA_TRACE, groups=[group])
        assert [e.message for e in found] == lines
        assert logs.get_stream(group, "s").last_event == now
        logs.put_retention(group, 7, wait=True)
        logs.delete_group(group)
        assert logs.trace_lines(log_lines.LAMBDA_TRACE, groups=[group]) == []
    finally:
        writer.close()
        store.close()
