"""Shared fixtures: a real embedded store per test, a real server process per module.

chDB opens one data path per process, so in-process store tests share one path and are
isolated by database name; server tests run ``fluoroscope server`` as a subprocess with
its own data directory, exactly as a user would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from fluoroscope.store.store import Store
from tests.support import ServerProcess, start_server

# Shared, noisy machines: property tests judge correctness, never speed.
settings.register_profile(
    "fluoroscope", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("fluoroscope")


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
