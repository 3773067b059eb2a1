"""Builds the ingest path's merging modules as C extensions with mypyc, when it can.

Everything else about the package is in ``pyproject.toml``. The modules listed in
``src/fluoroscope/native.py`` (``COMPILED``: the ingest workers' per-entity merge,
summaries and statistics, and the OpenTelemetry translation) are type-checked Python that
mypyc, the compiler of the mypy project, turns into C extensions: the same code, about a
third less CPU in ``benchmarks/ingest_cpu.py``'s ``assemble`` stage. An extension that cannot be built
(no C compiler, an unsupported interpreter) is skipped with a warning and its module
runs as Python, as it does with ``FLUOROSCOPE_PURE_PYTHON=1``; either way the behaviour is
the same, which ``tests/ingest/test_native.py`` checks.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.machinery
import json
import os
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent


def _compiled_modules() -> list[str]:
    """``COMPILED`` from src/fluoroscope/native.py, read without importing the package."""
    tree = ast.parse((ROOT / "src/fluoroscope/native.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "COMPILED"
            and node.value is not None
        ):
            return [str(name) for name in ast.literal_eval(node.value)]
    raise RuntimeError("src/fluoroscope/native.py defines no COMPILED")


def _clear_stale(keep: list[str]) -> None:
    """Remove the C extensions an earlier in-place build (an editable install) left in
    src/ for modules this build does not compile: Python would import them before the
    sources, and a module's extension only loads from the shared library it was built
    with. ``keep``: the modules compiled now (their extensions are rebuilt)."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    src = ROOT / "src"
    for path in [*src.glob("fluoroscope/**/*.so"), *src.glob("fluoroscope/**/*.pyd")]:
        if not path.name.endswith(suffixes):
            continue
        stem = path.name[: -len(next(x for x in suffixes if path.name.endswith(x)))]
        module = ".".join((*path.parent.relative_to(src).parts, stem))
        if module not in keep:
            path.unlink()
    if not keep:
        for path in src.glob("fluoroscope_native__mypyc*"):
            path.unlink()
        (src / "fluoroscope/native.sha256").unlink(missing_ok=True)


def _extensions() -> list[object]:
    if os.environ.get("FLUOROSCOPE_PURE_PYTHON") == "1":
        _clear_stale([])
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:  # mypy is a build requirement; a build without it stays Python
        _clear_stale([])
        return []
    modules = _compiled_modules()
    _clear_stale(modules)
    paths = [f"src/{name.replace('.', '/')}.py" for name in modules]
    # The build environment lacks the server's dependencies (pyarrow, orjson...): their
    # types are Any there, so the checks that Any trips are off for this build only (the
    # suite runs mypy --strict with them installed).
    relaxed = ["--ignore-missing-imports", "--no-warn-return-any", "--no-warn-unused-ignores"]
    extensions = mypycify(
        [*relaxed, *paths],
        opt_level="3",
        group_name="fluoroscope_native",  # its shared library: fluoroscope_native__mypyc
    )
    for extension in extensions:
        extension.optional = True  # a failed build leaves the module as Python
    # What was compiled, by content: fluoroscope.native.stale() tells an edited source
    # from the one built (an editable install's extensions sit beside the sources).
    built = {
        name: hashlib.sha256((ROOT / path).read_bytes()).hexdigest()
        for name, path in zip(modules, paths, strict=True)
    }
    record = ROOT / "src/fluoroscope/native.sha256"
    record.write_text(json.dumps(built, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return list(extensions)


setup(ext_modules=_extensions())
