"""Browser tests of the web console: Playwright driving Debian's Chromium.

The browser is installed by ``scripts/install-browser`` when missing (apt; it needs root).
The server is fed the way a user's would be: ``fluoroscope demo`` runs the sample
serverless app against it for the whole module (so live views have live traffic), and the
official ``aws-xray-sdk`` sends the hostile trace. Every page a test opens fails the test
on a JavaScript error, a console error (a Content-Security-Policy violation is one) or an
``alert``. Screenshots of each view go to ``tests/artifacts/screenshots`` (git-ignored):
tests never modify tracked files. ``scripts/refresh-screenshots`` runs these tests with
``FLUOROSCOPE_TEST_SCREENSHOTS=docs/screenshots`` to refresh the README's pictures.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support import (
    DEMO_EDGES,
    ServerProcess,
    free_port,
    run_demo,
    service_edges,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
# where screenshot() saves; docs/screenshots only when asked (scripts/refresh-screenshots)
SCREENSHOTS = ROOT / os.environ.get("FLUOROSCOPE_TEST_SCREENSHOTS", "tests/artifacts/screenshots")
WAIT_MS = 15_000
"""How long a page action or an ``expect`` waits for its condition (Playwright's default
for ``expect`` is 5 s: a render after a poll or a reload took longer than that on this
2-core machine at load 30)."""
expect.set_options(timeout=WAIT_MS)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-proxy-server",  # loopback only, whatever the environment's proxy says
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("FLUOROSCOPE_CHROMIUM", "/usr/bin/chromium")
    if not os.access(path, os.X_OK):
        done = subprocess.run(
            ["bash", str(ROOT / "scripts" / "install-browser")],
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
        if done.returncode != 0 or not os.access(path, os.X_OK):
            pytest.fail(f"the browser tests need Chromium at {path}:\n{done.stdout}{done.stderr}")
    return path


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    # module scope: Playwright's sync API keeps an event loop running in this thread until
    # it stops, and later tests that call asyncio.run() need the thread without one
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


Demo = ServerProcess
"""``fluoroscope demo`` on a loopback port: its server answers there (``url``, ``xray()``,
``send_udp``), and ``stop()`` sends the demo Ctrl-C, which stops the app and the server."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("console")
    proc = run_demo(port, data_dir, "--rate", "8")
    running = Demo(port, data_dir, proc)
    client = running.xray()

    def complete() -> bool:
        if proc.poll() is not None:
            out, _ = proc.communicate()
            pytest.fail(f"the demo exited early:\n{out}")
        try:
            return service_edges(client, 900) >= DEMO_EDGES
        except Exception:  # still starting
            return False

    try:
        wait_for(complete, timeout=120, interval=0.5)
        yield running
    finally:
        running.stop(timeout=90)


@dataclass
class Watched:
    """A page, and what went wrong on it."""

    page: Page
    problems: list[str]
    dialogs: list[str]
    allowed: list[str] = field(default_factory=list)

    def allow(self, fragment: str) -> None:
        """A console message containing ``fragment`` is expected (an API error under test)."""
        self.allowed.append(fragment)


@pytest.fixture
def watched(browser: Browser, demo: Demo) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=demo.url)
    page = context.new_page()
    problems: list[str] = []
    dialogs: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def dialog(d: Any) -> None:
        dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.set_default_timeout(WAIT_MS)
    watched = Watched(page, problems, dialogs)
    yield watched
    context.close()
    unexpected = [p for p in problems if not any(a in p for a in watched.allowed)]
    assert not unexpected, unexpected
    assert not dialogs, f"a page opened a dialog: {dialogs}"


def screenshot(page: Page, name: str) -> None:
    """Save the page as <name>.png in :data:`SCREENSHOTS` (the README shows the copies in
    docs/screenshots that scripts/refresh-screenshots takes)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def map_scale(page: Page) -> float:
    """The service map's current zoom (the scale of its viewport's transform)."""
    transform = page.locator("#service-map g.viewport").get_attribute("transform") or ""
    found = re.search(r"scale\(([0-9.]+)\)", transform)
    assert found, transform
    return float(found[1])
