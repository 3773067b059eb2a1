"""The command line and its configuration precedence: argument > environment > default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fluoroscope.config import ConfigError, resolve_server_config


def test_help_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fluoroscope", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "server" in result.stdout and "version" in result.stdout


def test_defaults() -> None:
    config = resolve_server_config(env={})
    assert (config.host, config.port, config.store_url, config.retention_days) == (
        "127.0.0.1",
        2000,
        "chdb",
        30,
    )
    assert config.data_dir == Path("fluoroscope-data").resolve()
    assert config.cached_traces == 20_000


def test_environment_beats_default_and_argument_beats_environment(tmp_path: Path) -> None:
    env = {
        "FLUOROSCOPE_LISTEN": "0.0.0.0:3000",
        "FLUOROSCOPE_DATA_DIR": str(tmp_path / "env"),
        "FLUOROSCOPE_STORE": "clickhouse://u:p@db:8123/traces",
        "FLUOROSCOPE_RETENTION_DAYS": "7",
        "FLUOROSCOPE_CACHED_TRACES": "5000",
        "FLUOROSCOPE_INSECURE_NO_AUTH": "1",  # 0.0.0.0 needs credentials or this
    }
    from_env = resolve_server_config(env=env)
    assert (from_env.host, from_env.port, from_env.retention_days) == ("0.0.0.0", 3000, 7)
    assert from_env.cached_traces == 5000
    assert resolve_server_config(cached_traces=800, env=env).cached_traces == 800
    assert from_env.store_url == "clickhouse://u:p@db:8123/traces"
    explicit = resolve_server_config(
        listen="[::1]:4000", data_dir=str(tmp_path), store="chdb", retention_days=3, env=env
    )
    assert (explicit.host, explicit.port, explicit.store_url, explicit.retention_days) == (
        "::1",
        4000,
        "chdb",
        3,
    )
    assert explicit.data_dir == tmp_path


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"listen": "2000"}, "--listen: expected HOST:PORT"),
        (
            {"listen": "h:port"},
            "--listen: expected HOST:PORT \\(a port from 0 to 65535\\), got 'h:port'",
        ),
        ({"listen": "h:70000"}, "got 'h:70000'"),
        ({"store": "postgres://x"}, "--store: expected 'chdb'"),
        ({"env": {"FLUOROSCOPE_LISTEN": "nope"}}, "FLUOROSCOPE_LISTEN: expected HOST:PORT"),
        ({"env": {"FLUOROSCOPE_RETENTION_DAYS": "a week"}}, "FLUOROSCOPE_RETENTION_DAYS"),
        (
            {"retention_days": 0},
            "--retention-days: expected a whole number of days \\(1 or more\\), got 0",
        ),
        (
            {"env": {"FLUOROSCOPE_CACHED_TRACES": "lots"}},
            "FLUOROSCOPE_CACHED_TRACES: expected a whole number >= 100, got 'lots'",
        ),
        (
            {"env": {"FLUOROSCOPE_CACHED_TRACES": "10"}},
            "FLUOROSCOPE_CACHED_TRACES: expected a whole number >= 100, got 10",
        ),
        ({"cached_traces": 0}, "--cached-traces: expected a whole number >= 100, got 0"),
    ],
)
def test_bad_values_name_their_source(kwargs: dict[str, object], message: str) -> None:
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError, match=message):
        resolve_server_config(**kwargs)  # type: ignore[arg-type]


def test_bad_listen_flag_exits_with_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fluoroscope", "server", "--listen", "nowhere"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert "error: --listen: expected HOST:PORT" in result.stderr


def test_schema_prints_the_cluster_ddl() -> None:
    from fluoroscope.store.cluster import cluster_ddl

    result = subprocess.run(
        [sys.executable, "-m", "fluoroscope", "schema", "--cluster", "prod", "--database", "fl"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(f"{sql};\n" for sql in cluster_ddl("prod", "fl"))
    bad = subprocess.run(
        [sys.executable, "-m", "fluoroscope", "schema", "--cluster", "a;b"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "error: not a plain ClickHouse identifier: 'a;b'" in bad.stderr
