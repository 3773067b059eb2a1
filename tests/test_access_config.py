"""Resolving the access settings of ``fluoroscope server``: credentials, the UDP address,
allowed host names, and the refusal to listen beyond loopback without credentials."""

from __future__ import annotations

import socket

import pytest

from fluoroscope.config import ConfigError, resolve_server_config
from fluoroscope.model.net import is_loopback
from fluoroscope.server.auth import AccessPolicy

SECRET = "0123456789abcdefXYZ"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.1.2.3", False),
        ("example.com", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_is_open_and_udp_shares_its_address() -> None:
    config = resolve_server_config(listen="127.0.0.1:2100", env={})
    assert (config.udp_host, config.udp_port) == ("127.0.0.1", 2100)
    assert config.access_keys == () and config.api_keys == () and not config.insecure_no_auth


@pytest.mark.parametrize("listen", ["0.0.0.0:2000", "[::]:2000", "10.1.2.3:2000"])
def test_a_wide_address_needs_credentials_or_insecure(listen: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_server_config(listen=listen, env={})
    message = str(err.value)
    assert "\n" not in message
    for hint in ("--access-key", "FLUOROSCOPE_ACCESS_KEYS", "--api-key", "--insecure-no-auth"):
        assert hint in message
    with pytest.raises(ConfigError):
        resolve_server_config(listen=listen, env={"FLUOROSCOPE_INSECURE_NO_AUTH": "0"})
    assert resolve_server_config(listen=listen, insecure_no_auth=True, env={}).insecure_no_auth
    assert resolve_server_config(listen=listen, env={"FLUOROSCOPE_API_KEYS": SECRET}).api_keys


def test_udp_stays_on_loopback_when_http_is_wide() -> None:
    wide = resolve_server_config(listen="0.0.0.0:2200", api_keys=[SECRET], env={})
    assert (wide.udp_host, wide.udp_port) == ("127.0.0.1", 2200)
    wide6 = resolve_server_config(listen="[::]:2200", api_keys=[SECRET], env={})
    assert wide6.udp_host == "::1"
    explicit = resolve_server_config(
        listen="0.0.0.0:2200",
        udp_listen="0.0.0.0:2201",
        api_keys=[SECRET],
        env={"FLUOROSCOPE_UDP_LISTEN": "127.0.0.1:9"},
    )
    assert (explicit.udp_host, explicit.udp_port) == ("0.0.0.0", 2201)
    from_env = resolve_server_config(env={"FLUOROSCOPE_UDP_LISTEN": "127.0.0.1:2300"})
    assert (from_env.udp_host, from_env.udp_port) == ("127.0.0.1", 2300)


def test_credentials_from_flags_beat_the_environment() -> None:
    env = {
        "FLUOROSCOPE_ACCESS_KEYS": f"AKID1:{SECRET}, AKID2:{SECRET}2\nAKID3:{SECRET}3",
        "FLUOROSCOPE_API_KEYS": f"{SECRET}a,{SECRET}b",
        "FLUOROSCOPE_ALLOWED_HOSTS": "traces.example.com, proxy.internal:8080",
    }
    config = resolve_server_config(env=env)
    assert config.access_keys == (
        ("AKID1", SECRET),
        ("AKID2", SECRET + "2"),
        ("AKID3", SECRET + "3"),
    )
    assert config.api_keys == (SECRET + "a", SECRET + "b")
    assert config.allowed_hosts == ("traces.example.com", "proxy.internal:8080")
    flags = resolve_server_config(
        access_keys=[f"MINE:{SECRET}:with:colons"], api_keys=[SECRET], env=env
    )
    assert flags.access_keys == (("MINE", f"{SECRET}:with:colons"),)
    assert flags.api_keys == (SECRET,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"access_keys": ["nocolon"]}, "--access-key: expected ACCESS_KEY_ID:SECRET"),
        ({"access_keys": [":secret-without-id-0000"]}, "expected ACCESS_KEY_ID:SECRET"),
        (
            {"access_keys": ["AKID:short"]},
            "expected a secret of at least 16 characters for 'AKID', got one of 5",
        ),
        ({"api_keys": ["short"]}, "--api-key: expected API keys of at least 16 characters"),
        (
            {"env": {"FLUOROSCOPE_API_KEYS": "tiny"}},
            "FLUOROSCOPE_API_KEYS: expected API keys of at least 16",
        ),
        ({"env": {"FLUOROSCOPE_INSECURE_NO_AUTH": "maybe"}}, "FLUOROSCOPE_INSECURE_NO_AUTH"),
        ({"udp_listen": "nope"}, "--udp-listen: expected HOST:PORT"),
    ],
)
def test_malformed_access_settings_are_named(kwargs: dict[str, object], message: str) -> None:
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as err:
        resolve_server_config(**kwargs)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_the_policy_knows_the_names_of_this_server() -> None:
    local = AccessPolicy.build("127.0.0.1", wide=False, allowed_hosts=["Proxy.Example:8080"])
    assert local.allowed_hosts == {"localhost", "proxy.example"}
    assert not local.requires_credentials
    named = AccessPolicy.build("traces.example.com", wide=True, api_keys=[SECRET])
    assert {"localhost", "traces.example.com", socket.gethostname().lower()} <= set(
        named.allowed_hosts
    )
    assert named.requires_credentials
    assert "*" in AccessPolicy.build("0.0.0.0", wide=True, allowed_hosts=["*"]).allowed_hosts
