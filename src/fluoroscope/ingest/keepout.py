"""numpy, pandas and ``pyarrow.dataset`` kept out of the server's processes, as if they
were not installed.

pyarrow imports numpy, when installed, at its own import, and pandas at its first
conversion of a Python list (only to ask whether the list is a pandas object); chDB
imports pandas for ``Python()`` inserts and "ArrowTable" results; ``pyarrow.acero``
(``Table.group_by``: ``store/outcomes.py``, ``store/streamtimes.py``) imports
``pyarrow.dataset`` when it can, and with it pandas, parquet and the filesystems (S3's
library, OpenSSL's libcrypto), and does without it otherwise. Nothing in the ingest
workers or the server uses any of them (``store/outcomes.py`` sums with Arrow compute,
``store/transport.py`` reaches the engine without pandas), and without them pyarrow
converts, computes and groups exactly as before. Measured in a fresh interpreter:
pandas costs ~43 MB of RSS (73 -> 116 MB with the worker's modules) and ~0.3 s of CPU;
numpy 2.4 ~11 MB (``import pyarrow``: 54 MB with it, 43 MB without) and OpenBLAS's
``blas_thread_server`` thread, started at its import; the first ``group_by`` 19 MB with
``pyarrow.dataset``, 8 MB without.

:func:`keep_out` must run before anything imports pyarrow: ``fluoroscope server``
calls it before the server's modules; an ingest worker, whose module imports pyarrow as
it loads, is started as ``python -m fluoroscope.ingest.keepout
fluoroscope.ingest.worker ARG...``, which keeps them out and then runs the worker as
``python -m fluoroscope.ingest.worker ARG...`` would.

Standard library only: importing this module must not import pyarrow.
"""

from __future__ import annotations

import runpy
import sys
from typing import ClassVar, Final

from fluoroscope.ingest.mallocarena import one_malloc_arena

__all__ = ["KEPT_OUT", "keep_out"]

KEPT_OUT: Final = ("numpy", "pandas", "pyarrow.dataset")


class _KeptOut:
    """A meta path finder refusing :data:`KEPT_OUT`'s modules (and their submodules)
    not yet imported."""

    refused: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def find_spec(cls, name: str, path: object = None, target: object = None) -> None:
        if any(name == kept or name.startswith(f"{kept}.") for kept in cls.refused):
            raise ModuleNotFoundError(
                f"No module named {name!r} (kept out of this process: keep_out)", name=name
            )


def keep_out() -> None:
    """Refuse :data:`KEPT_OUT`'s modules in this process from now on (those already
    imported stay usable: their submodules load as before). Idempotent."""
    _KeptOut.refused = frozenset(name for name in KEPT_OUT if name not in sys.modules)
    if _KeptOut not in sys.meta_path:
        sys.meta_path.insert(0, _KeptOut)


def main(argv: list[str]) -> None:
    """``python -m fluoroscope.ingest.keepout MODULE ARG...``: run ``MODULE`` as
    ``python -m MODULE ARG...`` would, with :data:`KEPT_OUT` kept out from the start,
    and glibc's malloc on one arena (:mod:`~fluoroscope.ingest.mallocarena`)."""
    one_malloc_arena()
    keep_out()
    sys.argv = argv
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
