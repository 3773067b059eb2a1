"""Every environment variable the server side reads, named in one place.

Precedence is always: explicit argument > environment > default. Values are parsed
strictly; a malformed value raises :class:`ConfigError` naming the variable.
(The SDK reads the X-Ray variables such as ``AWS_XRAY_DAEMON_ADDRESS`` itself, in
``fluoroscope.sdk``, because it must not depend on this module.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fluoroscope.model.errors import FluoroscopeError

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_LISTEN",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_SERVER",
    "ENV_DATA_DIR",
    "ENV_LISTEN",
    "ENV_RETENTION_DAYS",
    "ENV_SERVER",
    "ENV_STORE",
    "ConfigError",
    "ServerConfig",
    "parse_listen",
    "resolve_server_config",
    "resolve_server_url",
]

ENV_LISTEN: Final = "FLUOROSCOPE_LISTEN"
ENV_DATA_DIR: Final = "FLUOROSCOPE_DATA_DIR"
ENV_STORE: Final = "FLUOROSCOPE_STORE"
ENV_RETENTION_DAYS: Final = "FLUOROSCOPE_RETENTION_DAYS"
ENV_SERVER: Final = "FLUOROSCOPE_SERVER"  # where terminal commands find the API

DEFAULT_LISTEN: Final = "127.0.0.1:2000"
DEFAULT_DATA_DIR: Final = "fluoroscope-data"
DEFAULT_STORE: Final = "chdb"
DEFAULT_RETENTION_DAYS: Final = 30
DEFAULT_SERVER: Final = "http://127.0.0.1:2000"


class ConfigError(FluoroscopeError):
    """A flag or environment variable has a value that cannot be used."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Resolved settings of ``fluoroscope server``."""

    host: str
    port: int
    data_dir: Path
    store_url: str
    retention_days: int


def parse_listen(value: str, source: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:2000`` for IPv6); ``source`` names the flag or variable."""
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host:
        raise ConfigError(f"{source}: expected HOST:PORT, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"{source}: port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{source}: port {port} is out of range")
    return host, port


def _pick(argument: str | None, env: Mapping[str, str], name: str, default: str) -> tuple[str, str]:
    if argument is not None:
        return argument, "argument"
    if env.get(name):
        return env[name], name
    return default, "default"


def resolve_server_config(
    *,
    listen: str | None = None,
    data_dir: str | None = None,
    store: str | None = None,
    retention_days: int | None = None,
    env: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Combine explicit arguments, the environment (default ``os.environ``) and defaults."""
    env = os.environ if env is None else env
    listen_value, listen_source = _pick(listen, env, ENV_LISTEN, DEFAULT_LISTEN)
    host, port = parse_listen(
        listen_value, "--listen" if listen_source == "argument" else listen_source
    )
    dir_value, _ = _pick(data_dir, env, ENV_DATA_DIR, DEFAULT_DATA_DIR)
    store_value, store_source = _pick(store, env, ENV_STORE, DEFAULT_STORE)
    if not (store_value == "chdb" or store_value.startswith(("clickhouse://", "clickhouses://"))):
        where = "--store" if store_source == "argument" else store_source
        raise ConfigError(
            f"{where}: expected 'chdb' or clickhouse://user:pass@host:8123/db, got {store_value!r}"
        )
    if retention_days is None:
        raw = env.get(ENV_RETENTION_DAYS)
        try:
            retention_days = int(raw) if raw else DEFAULT_RETENTION_DAYS
        except ValueError:
            raise ConfigError(
                f"{ENV_RETENTION_DAYS}: {raw!r} is not a whole number of days"
            ) from None
    if retention_days < 1:
        raise ConfigError(f"retention must be at least 1 day, got {retention_days}")
    return ServerConfig(
        host, port, Path(dir_value).expanduser().resolve(), store_value, retention_days
    )


def resolve_server_url(argument: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The X-Ray API base URL of the terminal commands (``--server``, then
    ``FLUOROSCOPE_SERVER``, then :data:`DEFAULT_SERVER`), without a trailing ``/``.
    A bare ``HOST:PORT`` means ``http://HOST:PORT``; a path prefix (behind a proxy) is
    kept; any scheme but http(s) is refused with :class:`ConfigError`."""
    env = os.environ if env is None else env
    value, source = _pick(argument, env, ENV_SERVER, DEFAULT_SERVER)
    value = value.strip().rstrip("/")
    if "://" not in value:
        value = f"http://{value}"
    scheme, _, rest = value.partition("://")
    if scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
        where = "--server" if source == "argument" else source
        raise ConfigError(f"{where}: expected http://HOST:PORT, got {value!r}")
    return value
