"""Settings of ``fluoroscope daemon`` (see the package docstring)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fluoroscope.config.base import (
    DEFAULT_LISTEN,
    ConfigError,
    _env_int,
    _pick,
    parse_listen,
    resolve_server_url,
)

__all__ = [
    "DEFAULT_DAEMON_BUFFER_DIR",
    "ENV_DAEMON_BUFFER_DIR",
    "ENV_DAEMON_BUFFER_DISK",
    "ENV_DAEMON_BUFFER_MEMORY",
    "ENV_DAEMON_LISTEN",
    "ENV_DAEMON_SERVER",
    "ENV_DAEMON_TOKEN",
    "DaemonConfig",
    "resolve_daemon_config",
]


# -- fluoroscope daemon ----------------------------------------------------------------

ENV_DAEMON_SERVER: Final = "FLUOROSCOPE_DAEMON_SERVER"  # the server segments go to
ENV_DAEMON_LISTEN: Final = "FLUOROSCOPE_DAEMON_LISTEN"  # UDP segments + TCP sampling proxy
ENV_DAEMON_BUFFER_DIR: Final = "FLUOROSCOPE_DAEMON_BUFFER_DIR"  # where the spool spills
ENV_DAEMON_BUFFER_MEMORY: Final = "FLUOROSCOPE_DAEMON_BUFFER_MEMORY"  # MiB held in memory
ENV_DAEMON_BUFFER_DISK: Final = "FLUOROSCOPE_DAEMON_BUFFER_DISK"  # MiB of spool files (0: none)
ENV_DAEMON_BATCH_SIZE: Final = "FLUOROSCOPE_DAEMON_BATCH_SIZE"  # documents per PutTraceSegments
ENV_DAEMON_CONCURRENCY: Final = "FLUOROSCOPE_DAEMON_CONCURRENCY"  # requests in flight
ENV_DAEMON_DRAIN_SECONDS: Final = "FLUOROSCOPE_DAEMON_DRAIN_SECONDS"  # sending on at a stop
ENV_DAEMON_TOKEN: Final = "FLUOROSCOPE_DAEMON_TOKEN"  # bearer token for the server
ENV_DAEMON_REGION: Final = "FLUOROSCOPE_DAEMON_REGION"  # SigV4 region (else AWS_REGION, ...)
# SigV4 credentials: the standard AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN

DEFAULT_DAEMON_BUFFER_DIR: Final = "fluoroscope-daemon-buffer"
DEFAULT_DAEMON_BUFFER_MEMORY: Final = 64
DEFAULT_DAEMON_BUFFER_DISK: Final = 1024
DEFAULT_DAEMON_BATCH_SIZE: Final = 50
DEFAULT_DAEMON_CONCURRENCY: Final = 8
DEFAULT_DAEMON_DRAIN_SECONDS: Final = 5.0
DEFAULT_DAEMON_REGION: Final = "us-east-1"


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """Resolved settings of ``fluoroscope daemon`` (sizes in MiB)."""

    server: str
    host: str
    port: int
    buffer_dir: Path
    buffer_memory: int
    buffer_disk: int
    batch_size: int
    concurrency: int
    drain_seconds: float
    token: str | None
    region: str
    access_key: str | None
    secret_key: str | None
    session_token: str | None


def resolve_daemon_config(
    *,
    server: str | None = None,
    listen: str | None = None,
    buffer_dir: str | None = None,
    buffer_memory: int | None = None,
    buffer_disk: int | None = None,
    batch_size: int | None = None,
    concurrency: int | None = None,
    drain_seconds: float | None = None,
    token: str | None = None,
    region: str | None = None,
    env: Mapping[str, str] | None = None,
) -> DaemonConfig:
    """Combine explicit arguments, the environment (default ``os.environ``) and defaults.
    ``--server`` (or ``FLUOROSCOPE_DAEMON_SERVER``) is required; buffer memory is at least
    1 MiB, disk 0 (memory only) or more, batch size 1-1000, concurrency 1-64, drain
    seconds 0-300."""
    env = os.environ if env is None else env
    if server is None and not env.get(ENV_DAEMON_SERVER):
        raise ConfigError(f"--server (or {ENV_DAEMON_SERVER}) is required: http://HOST:PORT")
    server_url = resolve_server_url(
        server if server is not None else env[ENV_DAEMON_SERVER], env={}
    )
    listen_value, listen_source = _pick(listen, env, ENV_DAEMON_LISTEN, DEFAULT_LISTEN)
    host, port = parse_listen(
        listen_value, "--listen" if listen_source == "argument" else listen_source
    )
    dir_value, _ = _pick(buffer_dir, env, ENV_DAEMON_BUFFER_DIR, DEFAULT_DAEMON_BUFFER_DIR)

    def whole(value: int | None, name: str, flag: str, default: int, low: int, high: int) -> int:
        source = flag
        if value is None:
            source = name if env.get(name) else flag
            value = _env_int(env, name, default, "a whole number")
        if not low <= value <= high:
            raise ConfigError(f"{source}: must be {low} to {high}, got {value}")
        return value

    memory = whole(buffer_memory, ENV_DAEMON_BUFFER_MEMORY, "--buffer-memory",
                   DEFAULT_DAEMON_BUFFER_MEMORY, 1, 1 << 20)  # fmt: skip
    disk = whole(buffer_disk, ENV_DAEMON_BUFFER_DISK, "--buffer-disk",
                 DEFAULT_DAEMON_BUFFER_DISK, 0, 1 << 24)  # fmt: skip
    size = whole(batch_size, ENV_DAEMON_BATCH_SIZE, "--batch-size",
                 DEFAULT_DAEMON_BATCH_SIZE, 1, 1000)  # fmt: skip
    workers = whole(concurrency, ENV_DAEMON_CONCURRENCY, "--concurrency",
                    DEFAULT_DAEMON_CONCURRENCY, 1, 64)  # fmt: skip
    drain_source = "--drain-seconds"
    if drain_seconds is None:
        raw = env.get(ENV_DAEMON_DRAIN_SECONDS)
        drain_source = ENV_DAEMON_DRAIN_SECONDS
        try:
            drain_seconds = float(raw) if raw else DEFAULT_DAEMON_DRAIN_SECONDS
        except ValueError:
            raise ConfigError(f"{ENV_DAEMON_DRAIN_SECONDS}: {raw!r} is not a number") from None
    if not 0 <= drain_seconds <= 300:
        raise ConfigError(f"{drain_source}: must be 0 to 300 seconds, got {drain_seconds:g}")
    token_value = token if token is not None else env.get(ENV_DAEMON_TOKEN) or None
    region_value = (
        region
        or env.get(ENV_DAEMON_REGION)
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or DEFAULT_DAEMON_REGION
    )
    return DaemonConfig(
        server_url,
        host,
        port,
        Path(dir_value).expanduser().resolve(),
        memory,
        disk,
        size,
        workers,
        drain_seconds,
        token_value,
        region_value,
        env.get("AWS_ACCESS_KEY_ID") or None,
        env.get("AWS_SECRET_ACCESS_KEY") or None,
        env.get("AWS_SESSION_TOKEN") or None,
    )
