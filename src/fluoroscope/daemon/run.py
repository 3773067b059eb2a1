"""Running a :class:`~fluoroscope.daemon.daemon.Daemon` in the calling thread.

:func:`run_daemon` binds (raising OSError when the address is taken), announces, serves
on uvloop (asyncio elsewhere) until SIGINT or SIGTERM, stops as
:class:`~fluoroscope.daemon.daemon.Daemon` documents (bounded: ``drain_seconds`` plus a
few seconds), and returns the stop line. A second signal cuts the drain short.
Call it from the main thread (it installs signal handlers on the loop).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from fluoroscope.daemon.daemon import Daemon, DaemonSettings

__all__ = ["run_daemon"]


def run_daemon(settings: DaemonSettings, announce: Callable[[str], None] = print) -> str:
    """Run until SIGINT/SIGTERM; returns the stop line (also announced)."""
    daemon = Daemon(settings)
    host, port = daemon.bind()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def on_signal() -> None:
            if stop.is_set():
                daemon.hurry()
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)

        def ready() -> None:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            spool = daemon.spool
            disk = (
                f"then up to {spool.disk_limit // 2**20} MiB on disk in {settings.buffer_dir}"
                if spool.disk_limit
                else "no disk spill"
            )
            announce(
                f"Fluoroscope daemon on {where} (UDP segments; TCP sampling proxy and /status), "
                f"forwarding to {settings.server} (auth: {settings.credentials.kind}); "
                f"buffer: {spool.memory_limit // 2**20} MiB in memory, {disk}."
            )
            if spool.restored_docs:
                announce(f"{spool.restored_docs} documents left on disk by the last run go first.")

        await daemon.run(stop, ready=ready)

    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(main())
    else:
        uvloop.run(main())
    line = daemon.stop_line()
    announce(line)
    return line
