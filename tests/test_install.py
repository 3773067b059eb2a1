"""``pip install fluoroscope`` without extras: the SDK works on the standard library
alone, and the ``fluoroscope`` command says in one line which extra it needs (exit 2).

The package is built from this checkout (a copy, so the checkout stays clean) and
installed with ``--no-deps`` into a fresh virtual environment that does not see this
interpreter's packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def sdk_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment holding fluoroscope and nothing else; returns its bin dir."""
    base = tmp_path_factory.mktemp("sdk-only")
    project = base / "project"
    project.mkdir()
    shutil.copy(ROOT / "pyproject.toml", project)
    shutil.copy(ROOT / "README.md", project)
    shutil.copytree(ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__"))
    built = _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--no-index", "--wheel-dir", base / "dist", project,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (base / "dist").glob("fluoroscope-*.whl")
    venv = base / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    bin_dir = venv / ("Scripts" if sys.platform == "win32" else "bin")
    installed = _run(
        sys.executable, "-m", "pip", "--python", bin_dir / "python", "install", "--quiet",
        "--no-deps", "--no-index", wheel,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    return bin_dir


def _clean_env() -> dict[str, str]:
    """This environment without what would let the venv see this checkout or its packages."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


@pytest.mark.slow
@pytest.mark.parametrize("args", [["--help"], ["server"], ["version"]])
def test_the_command_names_the_missing_extra(sdk_only: Path, args: list[str]) -> None:
    result = _run(sdk_only / "fluoroscope", *args, env=_clean_env())
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install 'fluoroscope[server]'" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_python_m_fluoroscope_says_the_same(sdk_only: Path) -> None:
    result = _run(sdk_only / "python", "-m", "fluoroscope", "--help", env=_clean_env())
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert "pip install 'fluoroscope[server]'" in result.stderr


@pytest.mark.slow
def test_the_sdk_imports_with_the_standard_library_only(sdk_only: Path) -> None:
    code = (
        "import sys, fluoroscope.sdk as sdk\n"
        "assert 'typer' not in sys.modules and 'orjson' not in sys.modules\n"
        "print(sdk.__name__, sys.prefix)\n"
    )
    result = _run(sdk_only / "python", "-c", code, env=_clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["fluoroscope.sdk", str(sdk_only.parent)]
