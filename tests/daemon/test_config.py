"""``fluoroscope daemon``'s settings: explicit argument > environment > default, strictly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fluoroscope.config import ConfigError, resolve_daemon_config


def test_defaults_and_precedence() -> None:
    config = resolve_daemon_config(server="127.0.0.1:9000", env={})
    assert (config.server, config.host, config.port) == ("http://127.0.0.1:9000", "127.0.0.1", 2000)
    assert (config.buffer_memory, config.buffer_disk, config.batch_size) == (64, 1024, 50)
    assert config.buffer_dir.name == "fluoroscope-daemon-buffer"
    assert (config.token, config.access_key, config.region) == (None, None, "us-east-1")
    env = {
        "FLUOROSCOPE_DAEMON_SERVER": "http://a:1",
        "FLUOROSCOPE_DAEMON_LISTEN": "127.0.0.1:2500",
        "FLUOROSCOPE_DAEMON_BUFFER_MEMORY": "8",
        "FLUOROSCOPE_DAEMON_BUFFER_DISK": "0",
        "FLUOROSCOPE_DAEMON_TOKEN": "t",
        "AWS_ACCESS_KEY_ID": "AK",
        "AWS_SECRET_ACCESS_KEY": "SK",
        "AWS_REGION": "eu-west-1",
    }
    config = resolve_daemon_config(env=env)
    assert (config.server, config.port, config.buffer_memory, config.buffer_disk) == (
        "http://a:1", 2500, 8, 0,
    )  # fmt: skip
    assert (config.token, config.access_key, config.secret_key) == ("t", "AK", "SK")
    assert config.region == "eu-west-1"
    config = resolve_daemon_config(
        server="http://b:2", buffer_memory=16, region="ap-south-1", env=env
    )
    assert (config.server, config.buffer_memory, config.region) == ("http://b:2", 16, "ap-south-1")


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        ({}, {}, "--server (or FLUOROSCOPE_DAEMON_SERVER) is required"),
        ({"server": "ftp://x"}, {}, "expected http://HOST:PORT"),
        ({"server": "http://x", "buffer_memory": 0}, {}, "--buffer-memory: must be 1 to"),
        ({"server": "http://x"}, {"FLUOROSCOPE_DAEMON_BUFFER_DISK": "lots"}, "FLUOROSCOPE_DAEMON_BUFFER_DISK: expected a whole number, got 'lots'"),
        ({"server": "http://x", "batch_size": 1001}, {}, "--batch-size: must be 1 to 1000"),
        ({"server": "http://x"}, {"FLUOROSCOPE_DAEMON_DRAIN_SECONDS": "-1"}, "FLUOROSCOPE_DAEMON_DRAIN_SECONDS: must be 0 to 300"),
        ({"server": "http://x", "listen": "nohost"}, {}, "--listen: expected HOST:PORT"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_naming_their_source(
    kwargs: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_daemon_config(env=env, **kwargs)  # type: ignore[arg-type]


def test_the_command_says_what_is_missing() -> None:
    env = {"PATH": "/usr/bin:/bin"}
    env.update({k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME")})
    done = subprocess.run(
        [sys.executable, "-m", "fluoroscope", "daemon"], capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--server (or FLUOROSCOPE_DAEMON_SERVER) is required" in done.stderr
