"""glibc's malloc with one arena for every thread of the process.

Importing pyarrow starts threads (its bundled jemalloc's background thread among them)
that allocate with glibc's malloc, and so make an arena of their own: the setting must
come before anything imports pyarrow. ``python -m fluoroscope.ingest.keepout`` (which
starts the ingest workers) and ``fluoroscope server`` call :func:`one_malloc_arena` first.

Standard library only: importing this module must not import pyarrow. :func:`libc`
loads the C library once per process for this module and :mod:`~fluoroscope.ingest.heap`
(``malloc_trim``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Final

__all__ = ["libc", "one_malloc_arena"]

_M_ARENA_MAX: Final = -8  # glibc's mallopt() parameter: the most arenas malloc makes


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The process's C library (loaded once: finding it runs ``ldconfig``), or None
    where it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def one_malloc_arena() -> bool:
    """glibc's malloc serves every thread of this process from one arena (process-wide;
    call once, first thing: before anything starts a thread); False where the C
    library has no such setting (musl, macOS).

    By default each thread that allocates gets an arena of its own (up to 8 per core),
    and an arena keeps what its threads freed where ``malloc_trim`` cannot return it.
    Measured in an ingest worker at 10,000 segments/s (``mallinfo2`` every 5 s,
    ``benchmarks/ingest.py``): with the default, 5 arenas, 85-107 MB of heap of which
    72-91 MB free, anonymous memory 82-122 MB (86-93 after a ``malloc_trim``); with one
    arena, 18-23 MB of heap of which 5-12 MB free, anonymous memory 67-77 MB. The
    threads run Python, which allocates under the GIL, so they hardly contend for the
    one arena: the workers' CPU per document 21.5-21.6 us against 19.6-24.2 in the runs
    around it."""
    mallopt = getattr(libc(), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, 1))
