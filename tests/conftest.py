"""Shared fixtures: a real embedded store per test, a real server process per module.

chDB opens one data path per process, so in-process store tests share one path and are
isolated by database name; server tests run ``fluoroscope server`` as a subprocess with
its own data directory, exactly as a user would. Tests never modify tracked files: the
session fails if a tracked file under ``docs/`` or ``examples/`` changed while it ran.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from fluoroscope.native import stale
from fluoroscope.store.store import Store
from tests.support import ServerProcess, start_server

# a test stuck in a C call ends the run with every thread's stack (tests/watchdog.py)
pytest_plugins = ("tests.watchdog",)

# Shared, noisy machines: property tests judge correctness, never speed.
settings.register_profile(
    "fluoroscope", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("fluoroscope")


ROOT = Path(__file__).resolve().parents[1]
WATCHED = ("docs", "examples", "README.md")  # tracked files no test may write


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test older code than the checkout holds: an editable install builds the
    ingest merge's C extensions beside their sources (``fluoroscope.native``), and a
    source edited since is not what would run."""
    late = stale()
    if late:
        raise pytest.UsageError(
            f"compiled from older sources than the checkout's: {', '.join(late)}; "
            "run `pip install -e '.[dev]'` again (or install with FLUOROSCOPE_PURE_PYTHON=1)"
        )


def tracked_digests(root: Path = ROOT) -> dict[str, str]:
    """SHA-256 of each git-tracked file under :data:`WATCHED` (empty outside a checkout)."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-z", "--", *WATCHED],
            capture_output=True, timeout=60, check=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return {}
    digests = {}
    for name in filter(None, listed.stdout.decode().split("\0")):
        try:
            digests[name] = hashlib.sha256((root / name).read_bytes()).hexdigest()
        except OSError:
            digests[name] = "missing"
    return digests


@pytest.fixture(scope="session", autouse=True)
def tracked_files_unchanged() -> Iterator[None]:
    """Fail the session if a test wrote a tracked file (scripts/refresh-screenshots,
    which sets FLUOROSCOPE_TEST_SCREENSHOTS, is the one allowed to)."""
    before = tracked_digests()
    yield
    if os.environ.get("FLUOROSCOPE_TEST_SCREENSHOTS"):
        return
    after = tracked_digests()
    changed = sorted(name for name, digest in before.items() if after.get(name) != digest)
    assert not changed, f"tests modified tracked files: {changed}"


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def store(chdb_dir: Path) -> Iterator[Store]:
    """A fresh, migrated store (its own database) on the embedded engine."""
    st = Store.open("chdb", chdb_dir, 30, database=f"t_{uuid.uuid4().hex[:12]}")
    yield st
    st.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real ``fluoroscope server`` subprocess on a free loopback port (per module)."""
    proc = start_server(tmp_path_factory.mktemp("server"))
    yield proc
    proc.stop()
