"""Network addresses: which listen addresses stay on this machine.

Pure functions, no I/O (no name resolution): the server and the daemon decide from
them what may listen unauthenticated.
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether the listen address ``host`` is loopback only: ``localhost``, 127.0.0.0/8
    or ``::1`` (bracketed or not). Wildcards (``0.0.0.0``, ``::``, empty) and every other
    name or address are not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
