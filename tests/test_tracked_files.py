"""Tests never modify tracked files: screenshots go to a git-ignored folder, and the
session-wide check in ``tests/conftest.py`` notices a tracked file that changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, tracked_digests


def test_screenshots_go_to_an_ignored_folder_unless_refreshing() -> None:
    code = "from tests.console.conftest import SCREENSHOTS; print(SCREENSHOTS)"
    env = {k: v for k, v in os.environ.items() if k != "FLUOROSCOPE_TEST_SCREENSHOTS"}
    found = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    folder = Path(found.stdout.strip())
    assert ROOT / "docs" not in (folder, *folder.parents), folder
    ignored = subprocess.run(
        ["git", "-C", str(ROOT), "check-ignore", "-q", str(folder / "traces.png")], timeout=60
    )
    assert ignored.returncode == 0, f"{folder} is not git-ignored"
    refreshing = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**env, "FLUOROSCOPE_TEST_SCREENSHOTS": "docs/screenshots"}, check=True,
    )  # fmt: skip
    assert Path(refreshing.stdout.strip()) == ROOT / "docs" / "screenshots"


def test_the_refresh_script_is_the_explicit_way() -> None:
    script = ROOT / "scripts" / "refresh-screenshots"
    assert os.access(script, os.X_OK)
    assert "FLUOROSCOPE_TEST_SCREENSHOTS=docs/screenshots" in script.read_text()


def test_a_changed_tracked_file_is_noticed(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    git("init", "-q")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text("one\n")
    (tmp_path / "docs" / "untracked.md").write_text("x\n")
    git("add", "docs/page.md")
    git("commit", "-qm", "page")
    before = tracked_digests(tmp_path)
    assert list(before) == ["docs/page.md"]
    (tmp_path / "docs" / "untracked.md").write_text("y\n")
    assert tracked_digests(tmp_path) == before  # untracked files may change
    (tmp_path / "docs" / "page.md").write_text("two\n")
    assert tracked_digests(tmp_path)["docs/page.md"] != before["docs/page.md"]
