"""npm packages for tests that drive real Node clients: installed on first use into a
cache directory (``~/.cache/fluoroscope/<name>``, or ``$XDG_CACHE_HOME``), never into
the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def npm_modules(name: str, packages: list[str], marker: str) -> Path:
    """The ``node_modules`` directory of ``packages`` installed under the cache
    directory ``name`` (skipping the install when ``marker``'s ``package.json`` is
    there already). Fails the test, with npm's own words, when node, npm or the
    install is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("these tests need node and npm (apt-get install nodejs npm)")
    cache = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    prefix = Path(cache) / "fluoroscope" / name
    modules = prefix / "node_modules"
    if not (modules / marker / "package.json").exists():
        prefix.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", *packages],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    return modules
