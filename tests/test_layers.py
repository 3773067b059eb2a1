"""The rooms of ``src/fluoroscope`` import downward only (DESIGN.md §5).

``cli → server → {ingest, query} → store → model``; ``sdk`` and ``daemon`` depend on
``model`` alone; ``native`` (what the build compiles) on nothing; ``demo`` uses the public SDK. The check reads every module's imports
(including those inside functions and ``TYPE_CHECKING`` blocks) with ``ast``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fluoroscope"

ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "sdk": {"model"},
    "daemon": {"model"},
    "store": {"model"},
    "ingest": {"store", "model"},
    "query": {"store", "model"},
    "server": {"ingest", "query", "store", "model", "native"},
    "native": set(),  # which modules the build compiles (mypyc): standard library only
    "demo": {"sdk", "model"},
    "console": set(),
    "terminal": {"model"},  # fluoroscope traces / trace: the X-Ray API over HTTP only
    "logs_terminal": {
        "terminal",
        "tracelines_terminal",
        "model",
    },  # fluoroscope logs ...: the Logs API over HTTP only
    "tracelines_terminal": {"terminal", "model"},  # fluoroscope trace --logs: over HTTP only
    "critpath_terminal": {"terminal", "model"},  # fluoroscope critical-path: over HTTP only
}
# the composition root may import anything
TOP_LEVEL = {"cli", "cliutil", "democli", "logcli", "config", "__main__", "__init__"}


def _room(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imported_rooms(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:
                pytest.fail(f"{path}: relative import at line {node.lineno}; use absolute imports")
            names = [node.module or ""]
        for name in names:
            parts = name.split(".")
            if parts[0] == "fluoroscope" and len(parts) > 1:
                found.add((parts[1], node.lineno))
    return found


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_there_are_modules_to_check() -> None:
    rooms = {_room(p) for p in _modules()}
    assert {"model", "cli"} <= rooms


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_downward(path: Path) -> None:
    room = _room(path)
    if room in TOP_LEVEL:
        return
    assert room in ALLOWED, f"{room!r} is not a known room; add it to DESIGN.md §5 and here"
    for target, line in _imported_rooms(path):
        if target == room:
            continue
        assert target in ALLOWED[room], (
            f"{path.relative_to(SRC)}:{line} imports fluoroscope.{target}; "
            f"{room} may import only {sorted(ALLOWED[room]) or 'nothing of the project'}"
        )


def test_checker_catches_an_upward_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from fluoroscope.server import app\nimport fluoroscope.ingest.pipeline\n")
    assert {room for room, _ in _imported_rooms(bad)} == {"server", "ingest"}
