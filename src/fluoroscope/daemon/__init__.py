"""The per-host daemon: ``fluoroscope daemon --server URL``.

Receives segment documents over UDP exactly as the AWS X-Ray daemon does (so applications
need no change), batches them, forwards them to a Fluoroscope server with PutTraceSegments,
proxies the sampling calls, and buffers (memory, then a bounded disk spool) while the
server is away. Imports the model only (DESIGN.md §5); talks to the server over HTTP.

- :class:`Daemon`, :class:`DaemonSettings`: the daemon (:mod:`fluoroscope.daemon.daemon`).
- :func:`run_daemon`: run one in this thread until SIGINT/SIGTERM; returns its stop line.
- :class:`Forwarder`, :class:`Result`, :class:`HttpForwarder`, :class:`Credentials`:
  forwarding (:mod:`fluoroscope.daemon.forward`).
- :class:`Spool`: the bounded memory-then-disk buffer (:mod:`fluoroscope.daemon.spool`).
"""

from __future__ import annotations

from fluoroscope.daemon.daemon import Daemon, DaemonSettings
from fluoroscope.daemon.forward import Credentials, Forwarder, HttpForwarder, Result, backoff
from fluoroscope.daemon.run import run_daemon
from fluoroscope.daemon.spool import Spool

__all__ = [
    "Credentials",
    "Daemon",
    "DaemonSettings",
    "Forwarder",
    "HttpForwarder",
    "Result",
    "Spool",
    "backoff",
    "run_daemon",
]
