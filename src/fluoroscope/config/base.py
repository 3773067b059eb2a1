"""Settings of the server, the terminal commands and the demo: the common parsing
(listen addresses, numbers, lists) and what ``fluoroscope server``, ``demo`` and the
commands that talk to a server read (see the package docstring)."""

from __future__ import annotations

import math
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fluoroscope.model.errors import FluoroscopeError
from fluoroscope.model.net import is_loopback

__all__ = [
    "DEFAULT_CACHED_TRACES",
    "DEFAULT_DATA_DIR",
    "DEFAULT_DEMO_RATE",
    "DEFAULT_INSIGHTS_INTERVAL",
    "DEFAULT_LISTEN",
    "DEFAULT_RETENTION_DAYS",
    "DEFAULT_SERVER",
    "ENV_ACCESS_KEYS",
    "ENV_ALLOWED_HOSTS",
    "ENV_API_KEYS",
    "ENV_CACHED_TRACES",
    "ENV_DATA_DIR",
    "ENV_DEMO_DURATION",
    "ENV_DEMO_OPEN",
    "ENV_DEMO_RATE",
    "ENV_DEMO_TEMPLATE",
    "ENV_INGEST_WORKERS",
    "ENV_INSECURE_NO_AUTH",
    "ENV_INSIGHTS_INTERVAL",
    "ENV_LISTEN",
    "ENV_RETENTION_DAYS",
    "ENV_SERVER",
    "ENV_STORE",
    "ENV_UDP_LISTEN",
    "ConfigError",
    "DemoConfig",
    "ServerConfig",
    "check_store_url",
    "default_ingest_workers",
    "parse_listen",
    "resolve_demo_config",
    "resolve_insights_interval",
    "resolve_server_config",
    "resolve_server_url",
]

ENV_LISTEN: Final = "FLUOROSCOPE_LISTEN"
ENV_UDP_LISTEN: Final = "FLUOROSCOPE_UDP_LISTEN"  # segments over UDP (default: see --udp-listen)
ENV_ACCESS_KEYS: Final = "FLUOROSCOPE_ACCESS_KEYS"  # ID:SECRET,ID:SECRET (SigV4)
ENV_API_KEYS: Final = "FLUOROSCOPE_API_KEYS"  # TOKEN,TOKEN (Authorization: Bearer)
ENV_ALLOWED_HOSTS: Final = "FLUOROSCOPE_ALLOWED_HOSTS"  # extra Host names, comma-separated
ENV_INSECURE_NO_AUTH: Final = "FLUOROSCOPE_INSECURE_NO_AUTH"  # 1: serve beyond loopback, open
ENV_DATA_DIR: Final = "FLUOROSCOPE_DATA_DIR"
ENV_STORE: Final = "FLUOROSCOPE_STORE"
ENV_RETENTION_DAYS: Final = "FLUOROSCOPE_RETENTION_DAYS"
ENV_CACHED_TRACES: Final = "FLUOROSCOPE_CACHED_TRACES"  # traces ingest keeps merge state for
ENV_INGEST_WORKERS: Final = "FLUOROSCOPE_INGEST_WORKERS"  # ingest worker processes
ENV_INSIGHTS_INTERVAL: Final = "FLUOROSCOPE_INSIGHTS_INTERVAL"  # seconds between Insights passes
ENV_SERVER: Final = "FLUOROSCOPE_SERVER"  # where terminal commands find the API
ENV_DEMO_RATE: Final = "FLUOROSCOPE_DEMO_RATE"  # fluoroscope demo: requests per second
ENV_DEMO_DURATION: Final = "FLUOROSCOPE_DEMO_DURATION"  # seconds of traffic (unset: until Ctrl-C)
ENV_DEMO_OPEN: Final = "FLUOROSCOPE_DEMO_OPEN"  # 0/false/no: never open a browser
ENV_DEMO_TEMPLATE: Final = "FLUOROSCOPE_DEMO_TEMPLATE"  # SAM template with the tracing switches

DEFAULT_LISTEN: Final = "127.0.0.1:2000"
DEFAULT_DATA_DIR: Final = "fluoroscope-data"
DEFAULT_STORE: Final = "chdb"
DEFAULT_RETENTION_DAYS: Final = 30
DEFAULT_CACHED_TRACES: Final = 20_000
MIN_CACHED_TRACES: Final = 100
MAX_INGEST_WORKERS: Final = 64
MIN_SECRET_LENGTH: Final = 16


def default_ingest_workers() -> int:
    """One ingest worker per core this process may run on, 2 at most: a worker keeps a
    core busy, and the engine's inserts and the receiving process need the rest."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # platforms without sched_getaffinity
        cores = os.cpu_count() or 1
    return max(1, min(2, cores))


DEFAULT_SERVER: Final = "http://127.0.0.1:2000"
DEFAULT_DEMO_RATE: Final = 5.0


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
    cached_traces: int = DEFAULT_CACHED_TRACES
    ingest_workers: int = 1
    udp_host: str = "127.0.0.1"
    udp_port: int = 2000
    access_keys: tuple[tuple[str, str], ...] = ()  # (access key id, secret)
    api_keys: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    insecure_no_auth: bool = False


def _items(
    argument: Sequence[str] | None, env: Mapping[str, str], name: str, flag: str
) -> tuple[list[str], str]:
    """The values given with a repeatable ``flag``, else the comma/space-separated
    ``env[name]``; and where they came from."""
    if argument:
        return [a.strip() for a in argument], flag
    return [v for v in re.split(r"[,\s]+", env.get(name, "")) if v], name


def _access(
    access_keys: Sequence[str] | None,
    api_keys: Sequence[str] | None,
    insecure_no_auth: bool | None,
    env: Mapping[str, str],
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...], bool]:
    pairs: list[tuple[str, str]] = []
    values, source = _items(access_keys, env, ENV_ACCESS_KEYS, "--access-key")
    for value in values:
        key_id, sep, secret = value.partition(":")
        if not sep or not key_id or not secret or any(c.isspace() for c in value):
            raise ConfigError(f"{source}: expected ACCESS_KEY_ID:SECRET, got {key_id!r}:...")
        if len(secret) < MIN_SECRET_LENGTH:
            raise ConfigError(
                f"{source}: expected a secret of at least {MIN_SECRET_LENGTH} characters for "
                f"{key_id!r}, got one of {len(secret)}"
            )
        pairs.append((key_id, secret))
    tokens, source = _items(api_keys, env, ENV_API_KEYS, "--api-key")
    for token in tokens:
        if len(token) < MIN_SECRET_LENGTH or any(c.isspace() or c == "," for c in token):
            raise ConfigError(
                f"{source}: expected API keys of at least {MIN_SECRET_LENGTH} characters "
                f"without spaces or commas, got one of {len(token)} characters"
            )
    if insecure_no_auth is None:
        raw = env.get(ENV_INSECURE_NO_AUTH, "").strip().lower()
        if raw and raw not in _FALSE | _TRUE:
            raise ConfigError(f"{ENV_INSECURE_NO_AUTH}: expected 1/0, true/false, got {raw!r}")
        insecure_no_auth = raw in _TRUE
    return tuple(pairs), tuple(tokens), insecure_no_auth


LISTEN_HOST_DEFAULT: Final = "127.0.0.1"  # the host of a bare ``:PORT``


def parse_listen(value: str, source: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:2000`` for IPv6; ``:2000`` means ``127.0.0.1:2000``,
    loopback, never every interface); ``source`` names the flag or variable."""
    expected = f"{source}: expected HOST:PORT (a port from 0 to 65535), got {value!r}"
    host, sep, port_text = value.strip().rpartition(":")
    if not sep:
        raise ConfigError(expected)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif host.startswith("[") or host.endswith("]") or (":" in host and host.count(":") < 2):
        raise ConfigError(expected)
    host = host or LISTEN_HOST_DEFAULT
    if any(c.isspace() or c in "/[]@?#" for c in host):
        raise ConfigError(expected)
    if not port_text.isascii() or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(expected)
    return host, int(port_text)


_HOST_NAME: Final = re.compile(r"\*|[A-Za-z0-9_.-]+(:\d{1,5})?|\[[0-9A-Fa-f:.]+\](:\d{1,5})?")


def _pick(argument: str | None, env: Mapping[str, str], name: str, default: str) -> tuple[str, str]:
    if argument is not None:
        return argument, "argument"
    if env.get(name):
        return env[name], name
    return default, "default"


def _env_int(env: Mapping[str, str], name: str, default: int, what: str) -> int:
    """The whole number in ``env[name]``, ``default`` when unset or empty; ConfigError
    naming the variable, what it got and that it expects ``what`` otherwise."""
    raw = env.get(name)
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name}: expected {what}, got {raw!r}") from None


DEFAULT_INSIGHTS_INTERVAL: Final = 60


def resolve_insights_interval(env: Mapping[str, str] | None = None) -> int:
    """Seconds between two evaluations of the Insights of every group (1-3600)."""
    env = os.environ if env is None else env
    value = _env_int(env, ENV_INSIGHTS_INTERVAL, DEFAULT_INSIGHTS_INTERVAL, "seconds (1-3600)")
    if not 1 <= value <= 3600:
        raise ConfigError(f"{ENV_INSIGHTS_INTERVAL}: expected seconds (1-3600), got {value}")
    return value


def _masked(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{hostpart}"


def check_store_url(value: str, where: str) -> str:
    """``value`` if it names a store (``chdb`` or ``clickhouse[s]://[user:pass@]host[:port][/db]``),
    else ConfigError naming ``where``, the value (password masked) and the forms expected."""
    expected = (
        f"{where}: expected 'chdb' or clickhouse://user:pass@host:8123/db, got {_masked(value)!r}"
    )
    if value in ("chdb", "chdb://"):
        return value
    if not value.startswith(("clickhouse://", "clickhouses://")):
        raise ConfigError(expected)
    parts = urllib.parse.urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(expected) from None
    if not parts.hostname or port == 0 or parts.query or parts.fragment:
        raise ConfigError(expected)
    if "/" in parts.path.strip("/") or any(c.isspace() for c in value):
        raise ConfigError(expected)
    return value


def resolve_server_config(
    *,
    listen: str | None = None,
    data_dir: str | None = None,
    store: str | None = None,
    retention_days: int | None = None,
    cached_traces: int | None = None,
    ingest_workers: int | None = None,
    udp_listen: str | None = None,
    access_keys: Sequence[str] | None = None,
    api_keys: Sequence[str] | None = None,
    allowed_hosts: Sequence[str] | None = None,
    insecure_no_auth: bool | None = None,
    env: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Combine explicit arguments, the environment (default ``os.environ``) and defaults.

    Access: an HTTP address beyond loopback needs credentials (``access_keys``
    ``ID:SECRET`` and/or ``api_keys``) or an explicit ``insecure_no_auth``, else
    ConfigError says how to configure them. UDP (which cannot authenticate) listens on
    the HTTP address when that is loopback, else on loopback at the same port, unless
    ``udp_listen`` says otherwise.
    """
    env = os.environ if env is None else env
    listen_value, listen_source = _pick(listen, env, ENV_LISTEN, DEFAULT_LISTEN)
    host, port = parse_listen(
        listen_value, "--listen" if listen_source == "argument" else listen_source
    )
    dir_value, _ = _pick(data_dir, env, ENV_DATA_DIR, DEFAULT_DATA_DIR)
    store_value, store_source = _pick(store, env, ENV_STORE, DEFAULT_STORE)
    check_store_url(store_value, "--store" if store_source == "argument" else store_source)
    source = "--retention-days"
    if retention_days is None:
        source = ENV_RETENTION_DAYS if env.get(ENV_RETENTION_DAYS) else source
        retention_days = _env_int(
            env, ENV_RETENTION_DAYS, DEFAULT_RETENTION_DAYS, "a whole number of days (1 or more)"
        )
    if retention_days < 1:
        raise ConfigError(
            f"{source}: expected a whole number of days (1 or more), got {retention_days}"
        )
    source = "--cached-traces"
    if cached_traces is None:
        source = ENV_CACHED_TRACES if env.get(ENV_CACHED_TRACES) else source
        cached_traces = _env_int(
            env, ENV_CACHED_TRACES, DEFAULT_CACHED_TRACES, f"a whole number >= {MIN_CACHED_TRACES}"
        )
    if cached_traces < MIN_CACHED_TRACES:
        raise ConfigError(
            f"{source}: expected a whole number >= {MIN_CACHED_TRACES}, got {cached_traces}"
        )
    source = "--ingest-workers"
    if ingest_workers is None:
        source = ENV_INGEST_WORKERS if env.get(ENV_INGEST_WORKERS) else source
        ingest_workers = _env_int(
            env, ENV_INGEST_WORKERS, default_ingest_workers(), f"1 to {MAX_INGEST_WORKERS}"
        )
    if not 1 <= ingest_workers <= MAX_INGEST_WORKERS:
        raise ConfigError(
            f"{source}: expected 1 to {MAX_INGEST_WORKERS} workers, got {ingest_workers}"
        )
    udp_value, udp_source = _pick(udp_listen, env, ENV_UDP_LISTEN, "")
    if udp_value:
        udp_host, udp_port = parse_listen(
            udp_value, "--udp-listen" if udp_source == "argument" else udp_source
        )
    else:
        udp_port = port
        udp_host = host if is_loopback(host) else "::1" if ":" in host else "127.0.0.1"
    keys, tokens, insecure = _access(access_keys, api_keys, insecure_no_auth, env)
    if not is_loopback(host) and not keys and not tokens and not insecure:
        where = "--listen" if listen_source == "argument" else listen_source
        raise ConfigError(
            f"{where}: {host or '*'}:{port} is reachable beyond this machine, so it needs "
            f"credentials: --access-key ID:SECRET ({ENV_ACCESS_KEYS}) for SigV4 and/or "
            f"--api-key TOKEN ({ENV_API_KEYS}) for Bearer tokens; or --insecure-no-auth "
            f"({ENV_INSECURE_NO_AUTH}=1) to serve anyone who can reach it"
        )
    hosts, hosts_source = _items(allowed_hosts, env, ENV_ALLOWED_HOSTS, "--allowed-host")
    for name in hosts:
        if not _HOST_NAME.fullmatch(name):
            raise ConfigError(
                f"{hosts_source}: expected a host name such as example.com, [::1] or '*', "
                f"got {name!r}"
            )
    return ServerConfig(
        host,
        port,
        Path(dir_value).expanduser().resolve(),
        store_value,
        retention_days,
        cached_traces,
        ingest_workers,
        udp_host,
        udp_port,
        keys,
        tokens,
        tuple(hosts),
        insecure,
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
    where = "--server" if source == "argument" else source
    expected = f"{where}: expected http://HOST:PORT, got {value!r}"
    if scheme.lower() not in ("http", "https") or not rest or rest.startswith("/"):
        raise ConfigError(expected)
    parts = urllib.parse.urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(expected) from None
    if not parts.hostname or port == 0 or any(c.isspace() for c in value):
        raise ConfigError(expected)
    return value


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """Resolved settings of ``fluoroscope demo`` besides the server's address and data."""

    rate: float
    duration: float | None
    open_browser: bool
    template: Path | None = None  # None: the template shipped with the demo


_FALSE: Final = frozenset(("0", "false", "no", "off"))
_TRUE: Final = frozenset(("1", "true", "yes", "on"))


def resolve_demo_config(
    *,
    rate: float | None = None,
    duration: float | None = None,
    open_browser: bool | None = None,
    template: str | None = None,
    env: Mapping[str, str] | None = None,
) -> DemoConfig:
    """Combine explicit arguments, the environment (default ``os.environ``) and defaults:
    ``rate`` in (0, 500] requests/s (5), ``duration`` ≥ 0 seconds (None: until Ctrl-C),
    ``open_browser`` (True), ``template`` (an existing file; None: the shipped one)."""
    env = os.environ if env is None else env

    def number(value: float | None, name: str, flag: str) -> tuple[float | None, str]:
        if value is not None:
            return value, flag
        raw = env.get(name)
        if not raw:
            return None, name
        try:
            return float(raw), name
        except ValueError:
            raise ConfigError(f"{name}: expected a number, got {raw!r}") from None

    picked_rate, rate_source = number(rate, ENV_DEMO_RATE, "--rate")
    if picked_rate is None:
        picked_rate = DEFAULT_DEMO_RATE
    if not 0 < picked_rate <= 500:
        raise ConfigError(
            f"{rate_source}: expected requests per second above 0 and at most 500, "
            f"got {picked_rate:g}"
        )
    picked_duration, duration_source = number(duration, ENV_DEMO_DURATION, "--duration")
    if picked_duration is not None and not 0 <= picked_duration < math.inf:
        raise ConfigError(
            f"{duration_source}: expected seconds (0 or more), got {picked_duration:g}"
        )
    if open_browser is None:
        raw = env.get(ENV_DEMO_OPEN, "").strip().lower()
        if raw and raw not in _FALSE | _TRUE:
            raise ConfigError(f"{ENV_DEMO_OPEN}: expected 1/0, true/false, yes/no, got {raw!r}")
        open_browser = raw not in _FALSE
    source = "--template" if template else ENV_DEMO_TEMPLATE
    picked_template = template or env.get(ENV_DEMO_TEMPLATE) or None
    template_path = None
    if picked_template:
        template_path = Path(picked_template).expanduser().resolve()
        if not template_path.is_file():
            raise ConfigError(f"{source}: no such file: {picked_template}")
    return DemoConfig(picked_rate, picked_duration, open_browser, template_path)
