"""The process's heap as ingest keeps it: the cyclic collector tuned for millions of
long-lived objects and paused while a batch is merged, glibc's freed memory returned to the
OS, and Arrow's buffers allocated by glibc.

Contract: every function here acts on the whole process, from any thread.
:func:`tune_gc` and :func:`arrow_on_glibc` are called once, at a process's start-up,
before batches flow (the server, an ingest worker). :func:`malloc_trim` gives a callable
to call as often as wanted (each call short when made often), or None where the C library
has none. :func:`_pause_collector` and :func:`_resume_collector` bracket each batch
(:class:`~fluoroscope.ingest.pipeline.Pipeline`, any number at once, in any threads);
:func:`_thaw` hands frozen objects back to the collector when a pipeline closes.
"""

from __future__ import annotations

import ctypes
import gc
import threading
import time
from collections.abc import Callable
from typing import Final

import pyarrow as pa

from fluoroscope.ingest.mallocarena import libc

__all__ = ["arrow_on_glibc", "malloc_trim", "tune_gc"]


def malloc_trim() -> Callable[[], object] | None:
    """glibc's ``malloc_trim(0)`` (returns freed heap pages to the OS), or None where
    the C library has none (musl, macOS). ctypes releases the GIL during the call."""
    trim = getattr(libc(), "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


def arrow_on_glibc() -> None:
    """Arrow allocates its buffers with glibc's malloc in this process, not its bundled
    allocator (process-wide; call once, at start-up, before batches flow).

    The bundled allocator (mimalloc in the pyarrow wheels) keeps pages it freed for
    reuse; the processes here also return glibc's freed memory at least once a second
    (:func:`malloc_trim`), so on glibc a batch's Arrow tables leave nothing behind.
    Measured with ``benchmarks/ingest.py --rate 10000`` (idle, two interleaved pairs):
    all processes' RSS at the largest sample 621/624 -> 583/580 MB (workers ~10 MB
    each, the server 5-30 MB), the processes' peaks summed 628/634 -> 601/598, CPU per
    document 164.9/164.8 -> 174.4/162.2 us (the first pair's server outlying at 87)."""
    pa.set_memory_pool(pa.system_memory_pool())


def tune_gc() -> None:
    """Keep the cyclic collector from stalling ingest (process-wide; call once).

    Ingest keeps millions of long-lived objects (the trace cache) and allocates a few
    million more per second. With the default thresholds full collections ran every few
    seconds and each held the GIL for 0.3-1 s, longer than the socket buffer lasts
    (8 MiB, ~0.07 s at 50k datagrams/s). Start-up objects are frozen out of collection,
    young generations keep their defaults, and full collections become rare (they still
    run: cycles are reclaimed). From now on, what each batch leaves alive is frozen too
    (see :func:`_resume_collector`).
    """
    global _freeze_survivors
    gc.collect()
    gc.freeze()
    _freeze_survivors = True
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100_000)


_THAW_INTERVAL: Final = 600.0
"""Seconds between two full collections of what batches left frozen (cycles among them
are reclaimed then: ingest's state makes none, measured)."""
_collector_lock = threading.Lock()
_paused = 0  # batches between _pause_collector and _resume_collector, in any thread
_resume = False  # whether the collector was enabled when the first of them began
_freeze_survivors = False  # set by tune_gc
_thawed = time.monotonic()


def _pause_collector() -> None:
    """Turn the cyclic collector off while a batch is parsed, merged and encoded (it is
    process-wide: for every thread); :func:`_resume_collector` ends the pause, after the
    batch's documents are freed.

    A batch allocates a few hundred thousand tracked objects (its parsed documents and
    rows, the state of its traces) that young and middle collections, every 700 and
    7,000 allocations, traversed to no use: documents and rows are freed by reference
    counting at the batch's end, and trace states live on. In a process tuned by
    :func:`tune_gc` (an ingest worker) what the batch leaves alive is then frozen out of
    collection (``gc.freeze``, which moves the generations without traversing them), and
    every :data:`_THAW_INTERVAL` everything is unfrozen and collected once. Measured with
    a pipeline of the worker's shape (scratch benchmark, batches of 10,000 benchmark
    documents): the collector took 7-13 us of wall time per document before, none after;
    CPU per document 73-74 us against 77-83 us interleaved."""
    global _paused, _resume
    with _collector_lock:
        if _paused == 0:
            _resume = gc.isenabled()
            gc.disable()
        _paused += 1


def _resume_collector() -> None:
    """End a :func:`_pause_collector`; the collector comes back once no batch runs."""
    global _paused, _thawed
    with _collector_lock:
        _paused -= 1
        if _paused or not _resume:
            return
        if _freeze_survivors:
            now = time.monotonic()
            if now - _thawed >= _THAW_INTERVAL:
                _thawed = now
                gc.unfreeze()
                gc.collect()
            gc.freeze()
        gc.enable()


def _thaw() -> None:
    """Hand what batches left frozen back to the collector (a pipeline closing): frozen
    objects outlive the modules they belong to at interpreter exit, and an embedded
    store among them crashed the interpreter there (measured: a segmentation fault)."""
    with _collector_lock:
        if _freeze_survivors:
            gc.unfreeze()
