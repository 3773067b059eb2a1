"""A helper process's tie to the server that started it: when the server dies, however
it dies (SIGKILL, a crash, a clean stop), its helpers end too, quietly and at once.

The server's helpers (the UDP receiving process, the ingest workers) keep nothing of
their own that outlives the server: what they hold can only be stored through it. So a
helper whose server is gone has nothing left to do; lingering would keep the UDP port
bound and print tracebacks from writes to a closed pipe.

Two mechanisms, both needed:

* Linux: :func:`tie_to_parent` asks the kernel for ``SIGKILL`` when the parent dies
  (``prctl(PR_SET_PDEATHSIG)``). The kernel sends it when the *thread* that started the
  helper ends, so helpers are started from threads that outlive them (the server's main
  thread, or the thread that watches that helper and restarts it).
* Everywhere: the helper notices its pipes closing and calls :func:`leave_quietly`: a
  worker on end of file on stdin before it was told to stop, or a broken pipe on
  stdout; the UDP receiving process, for which end of file on stdin also means "stop",
  when :func:`parent_gone` says so then, or on a broken pipe on stdout.

``parent`` is the process id of the server, passed on the helper's command line: a
helper whose server died before the tie was made sees another parent and leaves at
once. Standard library only, and cheap: helpers call it first thing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Final, NoReturn

__all__ = ["leave_quietly", "parent_gone", "tie_to_parent"]

_PR_SET_PDEATHSIG: Final = 1


def tie_to_parent(parent: int) -> None:
    """Have this process killed when its parent dies (Linux); leave at once if the
    parent ``parent`` is already gone. Call first thing in the helper."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass  # the pipes still tell
    if parent_gone(parent):
        leave_quietly()


def parent_gone(parent: int) -> bool:
    """True once the process ``parent`` is no longer this process's parent (it died:
    this process was handed to another)."""
    return os.getppid() != parent


def leave_quietly() -> NoReturn:
    """End this process now, without a word: the server is gone, and with it everyone
    who could use what this process holds. No cleanup runs (nothing here outlives the
    server)."""
    os._exit(0)
