"""The ingest merge compiled by mypyc writes exactly what its Python source writes.

``setup.py`` compiles the modules of :data:`fluoroscope.native.COMPILED` into C
extensions where it can; where it cannot they run as Python. Both must store the same
rows: the same seeded stream of documents (in-progress copies, streamed subsegments,
re-sends, late documents whose traces are evicted and reloaded from a real store) goes
through each in a process of its own, and every Arrow table the merge encodes must be
byte-identical. (A change to one line of the summary's arithmetic, run as Python, made
20 of the 100 tables differ.)
"""

from __future__ import annotations

import importlib.machinery
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from fluoroscope.native import COMPILED, compiled, stale

ROOT = Path(__file__).resolve().parents[2]


def _run(mode: str, seed: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.ingest.nativediff", mode, str(seed)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


@pytest.mark.slow
def test_compiled_and_pure_python_write_the_same_rows() -> None:
    built = [name for name, is_compiled in compiled().items() if is_compiled]
    if not built:
        pytest.skip("no C extension was built (FLUOROSCOPE_PURE_PYTHON=1, or no compiler)")
    native = _run("compiled", 7)
    pure = _run("pure", 7)
    assert [n for n, c in native["compiled"].items() if c] == built
    assert not any(pure["compiled"].values())
    assert native["reloaded"] == pure["reloaded"] > 100  # evictions and reloads exercised
    assert len(native["digests"]) == len(pure["digests"]) >= 60
    for ours, theirs in zip(native["digests"], pure["digests"], strict=True):
        assert ours == theirs, f"batch {ours[0]}, table {ours[1]} differs"


def test_every_compiled_module_is_built_where_a_compiler_is() -> None:
    """An install made with the README's command builds every module; a partial build
    would run part of the merge as Python without a word."""
    found = compiled()
    assert set(found) == set(COMPILED)
    if os.environ.get("FLUOROSCOPE_PURE_PYTHON") != "1" and any(found.values()):
        assert all(found.values()), found


def test_a_source_edited_after_its_build_is_reported(tmp_path: Path) -> None:
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    library = tmp_path / f"fluoroscope_native__mypyc{suffix}"  # the compiled code
    name = COMPILED[0]
    *package, module = name.split(".")
    where = tmp_path.joinpath(*package)
    where.mkdir(parents=True)
    source = where / f"{module}.py"
    shim = where / f"{module}{suffix}"  # loads the library; rebuilt only when its
    for path in (source, shim, library):  # interface changes
        path.write_bytes(b"")
    os.utime(shim, (500, 500))
    os.utime(source, (1_000, 1_000))
    os.utime(library, (2_000, 2_000))
    assert stale(tmp_path) == []  # the shim older than the source: no matter
    os.utime(source, (3_000, 3_000))  # edited after the build
    assert stale(tmp_path) == [name]
    shim.unlink()  # no extension for it: it runs as Python, nothing stale
    assert stale(tmp_path) == []
