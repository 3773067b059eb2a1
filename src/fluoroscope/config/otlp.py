"""OpenTelemetry settings of ``fluoroscope server`` (see the package docstring)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from fluoroscope.config.base import _FALSE, _TRUE, ConfigError, _items, _pick, parse_listen
from fluoroscope.model.net import is_loopback

__all__ = [
    "DEFAULT_OTLP_GRPC_LISTEN",
    "DEFAULT_OTLP_HTTP_LISTEN",
    "ENV_OTLP_GRPC_LISTEN",
    "ENV_OTLP_HTTP_LISTEN",
    "ENV_OTLP_INDEXED_ATTRIBUTES",
    "ENV_OTLP_INDEX_ALL_ATTRIBUTES",
    "OtlpConfig",
    "OtlpListen",
    "resolve_otlp_config",
]


# -- OpenTelemetry in (OTLP/HTTP, OTLP/gRPC) --------------------------------------------

ENV_OTLP_HTTP_LISTEN: Final = "FLUOROSCOPE_OTLP_HTTP_LISTEN"  # HOST:PORT or off
ENV_OTLP_GRPC_LISTEN: Final = "FLUOROSCOPE_OTLP_GRPC_LISTEN"  # HOST:PORT or off
ENV_OTLP_INDEXED_ATTRIBUTES: Final = "FLUOROSCOPE_OTLP_INDEXED_ATTRIBUTES"  # comma-separated
ENV_OTLP_INDEX_ALL_ATTRIBUTES: Final = "FLUOROSCOPE_OTLP_INDEX_ALL_ATTRIBUTES"  # 1/0
DEFAULT_OTLP_HTTP_LISTEN: Final = "127.0.0.1:4318"
DEFAULT_OTLP_GRPC_LISTEN: Final = "127.0.0.1:4317"
_OFF: Final = frozenset({"off", "none", "0", "false", "no"})


@dataclass(frozen=True, slots=True)
class OtlpListen:
    """Where an OTLP listener binds; ``explicit`` when asked for (a flag or variable),
    so that failing to bind it is an error, where the default's is only reported."""

    host: str
    port: int
    explicit: bool


@dataclass(frozen=True, slots=True)
class OtlpConfig:
    """Resolved OpenTelemetry settings of ``fluoroscope server``: the extra OTLP
    listeners (None: off) and which span attributes become annotations (the awsxray
    exporter's ``indexed_attributes`` and ``index_all_attributes``)."""

    http: OtlpListen | None = None
    grpc: OtlpListen | None = None
    indexed_attributes: tuple[str, ...] = ()
    index_all_attributes: bool = False


def _otlp_listen(
    argument: str | None, env: Mapping[str, str], name: str, flag: str, default: str
) -> OtlpListen | None:
    value, source = _pick(argument, env, name, default)
    if value.strip().lower() in _OFF:
        return None
    host, port = parse_listen(value, flag if source == "argument" else source)
    return OtlpListen(host, port, source != "default")


def resolve_otlp_config(
    *,
    http_listen: str | None = None,
    grpc_listen: str | None = None,
    indexed_attributes: Sequence[str] | None = None,
    index_all_attributes: bool | None = None,
    credentials: bool = False,
    insecure_no_auth: bool = False,
    env: Mapping[str, str] | None = None,
) -> OtlpConfig:
    """Combine explicit arguments, the environment (default ``os.environ``) and
    defaults. An OTLP address beyond loopback needs what ``--listen`` would need there:
    ``credentials`` configured (then HTTP asks for them; gRPC for a Bearer API key), or
    ``insecure_no_auth``."""
    env = os.environ if env is None else env
    http = _otlp_listen(
        http_listen, env, ENV_OTLP_HTTP_LISTEN, "--otlp-http-listen", DEFAULT_OTLP_HTTP_LISTEN
    )
    grpc = _otlp_listen(
        grpc_listen, env, ENV_OTLP_GRPC_LISTEN, "--otlp-grpc-listen", DEFAULT_OTLP_GRPC_LISTEN
    )
    for listener, flag in ((http, "--otlp-http-listen"), (grpc, "--otlp-grpc-listen")):
        wide = listener is not None and not is_loopback(listener.host)
        if wide and listener is not None and not credentials and not insecure_no_auth:
            raise ConfigError(
                f"{flag}: {listener.host or '*'}:{listener.port} is reachable beyond this "
                "machine, so it needs credentials (--access-key/--api-key) or "
                "--insecure-no-auth"
            )
    names, _ = _items(
        indexed_attributes, env, ENV_OTLP_INDEXED_ATTRIBUTES, "--otlp-indexed-attribute"
    )
    if index_all_attributes is None:
        raw = env.get(ENV_OTLP_INDEX_ALL_ATTRIBUTES, "").strip().lower()
        if raw and raw not in _FALSE | _TRUE:
            raise ConfigError(
                f"{ENV_OTLP_INDEX_ALL_ATTRIBUTES}: expected 1/0, true/false, got {raw!r}"
            )
        index_all_attributes = raw in _TRUE
    return OtlpConfig(http, grpc, tuple(names), index_all_attributes)
