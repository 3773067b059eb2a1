"""The modules the package's build compiles with mypyc, and which of them run compiled.

The ingest workers spend most of their CPU merging documents into traces, one entity
at a time (``benchmarks/ingest_cpu.py``'s ``assemble`` stage), and translating
OpenTelemetry spans into documents, one attribute at a time. Those modules are typed
Python that ``setup.py`` compiles with mypyc into C extensions when the package is
installed (``pip install .`` or ``pip install -e .``): the same code, ~27 % less CPU in
that stage and ~35 % less in translation. Where no extension could be built, or with
``FLUOROSCOPE_PURE_PYTHON=1`` at install time, they run as Python, with the same
behaviour (``tests/ingest/test_native.py`` compares the two).

An editable install builds the extensions beside their sources, and Python imports an
extension before a source of the same name: an edited source is not what runs until the
package is installed again. :func:`stale` names such modules; the test suite refuses to
run with any (``tests/conftest.py``) and the server logs them at start.

Standard library only; importing this module imports none of :data:`COMPILED`.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
from pathlib import Path
from typing import Final

__all__ = ["COMPILED", "compiled", "stale"]

COMPILED: Final = (
    "fluoroscope.ingest.assemble",
    "fluoroscope.ingest.otlp.blocks",
    "fluoroscope.ingest.otlp.decode",
    "fluoroscope.ingest.otlp.translate",
    "fluoroscope.ingest.otlp.wire",
    "fluoroscope.ingest.shards",
    "fluoroscope.ingest.udp",
    "fluoroscope.model.documents",
    "fluoroscope.model.entityrecords",
    "fluoroscope.model.inference",
    "fluoroscope.model.rootcause",
    "fluoroscope.model.stats",
    "fluoroscope.model.summarycolumns",
    "fluoroscope.model.tracestate",
    "fluoroscope.model.tracesummary",
    "fluoroscope.store.spandoc",
)
"""The modules ``setup.py`` compiles (read there without importing the package). Each
must pass ``mypy --strict``; no interpreted class may inherit from a class defined in
one, and their ``Final`` names are constants (a test cannot patch them). None may be
one the SDK imports: a compiled module loads mypyc's shared library, and the SDK loads
the standard library alone (``fluoroscope.model.ids`` stays Python for that)."""

_PACKAGE: Final = Path(__file__).resolve().parent
_RECORD: Final = "native.sha256"
"""Beside this module: the SHA-256 of each source ``setup.py`` compiled, by module."""


def _built(base: Path) -> Path | None:
    """The C extension ``base`` plus this interpreter's extension suffix, if built."""
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = base.with_name(base.name + suffix)
        if path.exists():
            return path
    return None


def compiled() -> dict[str, bool]:
    """For each module of :data:`COMPILED`: whether it is imported from (or would be
    imported from) a C extension. Does not import the modules."""
    found: dict[str, bool] = {}
    for name in COMPILED:
        spec = importlib.util.find_spec(name)
        found[name] = spec is not None and isinstance(
            spec.loader, importlib.machinery.ExtensionFileLoader
        )
    return found


def stale(root: Path = _PACKAGE.parent) -> list[str]:
    """The modules of :data:`COMPILED` under ``root`` (default: this installation's)
    that were built from other sources than those beside them (an editable install not
    rebuilt since the source changed): what runs is not what the source says. Judged by
    content, from the record the build left; no record, nothing to judge."""
    record = root / "fluoroscope" / _RECORD
    try:
        built: dict[str, str] = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    late: list[str] = []
    for name in COMPILED:
        base = root.joinpath(*name.split("."))
        source = base.with_name(base.name + ".py")
        if _built(base) is None or not source.exists():
            continue
        if hashlib.sha256(source.read_bytes()).hexdigest() != built.get(name):
            late.append(name)
    return late
