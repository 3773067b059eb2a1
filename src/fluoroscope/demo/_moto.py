"""``python -m fluoroscope.demo._moto HOST PORT``: moto's server, ending with its parent.

The demo starts the AWS emulator in its own session (so Ctrl-C reaches only the demo)
with a pipe on stdin; when that pipe closes — the demo exited, even if it was killed —
this process exits too, instead of outliving it. Otherwise it is moto's own server.
"""

from __future__ import annotations

import os
import sys
import threading


def _exit_with_parent() -> None:
    sys.stdin.read()  # returns at end of file: the parent is gone
    os._exit(0)


def main(argv: list[str]) -> None:
    """Serve moto on ``argv = [host, port]`` until stdin closes."""
    from moto.server import main as moto_main

    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()
    host, port = argv
    moto_main(["-H", host, "-p", port])


if __name__ == "__main__":
    main(sys.argv[1:])
