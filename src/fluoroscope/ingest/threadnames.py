"""Python threads named for the operating system, so ``top -H`` and ``/proc`` tell them apart.

Python 3.11 keeps a thread's name to itself: the kernel sees every Python thread under the
process's own name (``python``), beside the engine's threads, which name themselves
(``ThreadPool``, ``MergeMutate``, ...). After :func:`install`, each thread the
:mod:`threading` module starts names itself at its start: ``py-`` and its Python name,
less a ``fluoroscope-`` prefix, in the kernel's 15 bytes (``fluoroscope-hub-0`` is
``py-hub-0``, an executor's ``asyncio_0`` is ``py-asyncio_0``); the main thread keeps
the process's name. Threads already running are named by :func:`install` too.

Linux only (a thread's ``/proc/self/task/<id>/comm``); elsewhere, and in a process where
something else (a profiler) set :func:`threading.setprofile`, :func:`install` does nothing.
The hook runs once per thread, at its start, and removes itself from that thread.
"""

from __future__ import annotations

import os
import sys
import threading
from types import FrameType
from typing import Any, Final

__all__ = ["PREFIX", "install", "os_name"]

PREFIX: Final = "py-"
"""Starts the name of every Python thread the kernel sees (benchmarks tell them so)."""
_LIMIT: Final = 15  # bytes of a thread's name in the kernel, its terminating NUL excluded
_TASKS: Final = "/proc/self/task"


def os_name(name: str) -> bytes:
    """The kernel's name for a Python thread named ``name`` (see the module docstring)."""
    short = PREFIX + name.removeprefix("fluoroscope-")
    return short.encode()[:_LIMIT].decode(errors="ignore").encode()


def _name(native_id: int, name: str) -> None:
    try:
        with open(f"{_TASKS}/{native_id}/comm", "wb") as comm:
            comm.write(os_name(name))
    except OSError:  # the thread ended meanwhile
        pass


def _name_self(frame: FrameType, event: str, arg: Any) -> None:
    """The profile hook every new thread starts with: name it, then leave."""
    sys.setprofile(None)
    _name(threading.get_native_id(), threading.current_thread().name)


def install() -> bool:
    """Name every thread started from now on, and those running but the main thread
    (process-wide; idempotent). False when it cannot (see the module docstring)."""
    if not os.path.isdir(_TASKS):
        return False
    current = threading.getprofile()
    if current is _name_self:
        return True
    if current is not None:
        return False
    threading.setprofile(_name_self)
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and thread.native_id is not None:
            _name(thread.native_id, thread.name)
    return True
