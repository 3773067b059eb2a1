"""The Insights page in a real browser, against a real server evaluating in the background.

Generated traffic (``tests.insightgen``) whose last minutes hold an incident in ledger
is stored; the page must show the insight as active, naming ledger, with its timeline
(the fault rate against the band) and its impact. Traffic back to normal is then
stored for the minutes after the incident, and the page must show the insight closed.
A group with too short a history is listed as learning, with its reason.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import WAIT_MS, Watched, screenshot
from tests.insightgen import traffic
from tests.support import ServerProcess, start_server

FIRST = (int(time.time()) - 56 * 60) // 60 * 60
INCIDENT = range(44, 50)
GROUPS = (("checkout", 'service("api")'), ("newcomer", 'service("later")'))


def _put(server: ServerProcess, docs: list[dict[str, Any]]) -> None:
    client = server.xray()
    for k in range(0, len(docs), 50):
        sent = client.put_trace_segments(
            TraceSegmentDocuments=[json.dumps(d) for d in docs[k : k + 50]]
        )
        assert not sent["UnprocessedTraceSegments"]


@pytest.fixture(scope="module")
def insights_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(
        tmp_path_factory.mktemp("insights-page"),
        env_changes={"FLUOROSCOPE_INSIGHTS_INTERVAL": "1"},
    )
    _put(server, traffic(FIRST, INCIDENT.stop, INCIDENT))
    client = server.xray()
    for name, expression in GROUPS:
        client.create_group(
            GroupName=name,
            FilterExpression=expression,
            InsightsConfiguration={"InsightsEnabled": True},
        )
    yield server
    server.stop()


@pytest.fixture
def page(browser: Browser, insights_server: ServerProcess) -> Iterator[Page]:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=insights_server.url
    )
    opened = context.new_page()
    watched = Watched(opened, [], [])
    opened.on("console", lambda m: watched.problems.append(f"console {m.type}: {m.text}")
              if m.type in ("error", "warning") else None)  # fmt: skip
    opened.on("pageerror", lambda e: watched.problems.append(f"page error: {e}"))

    def dialog(d: Any) -> None:
        watched.dialogs.append(d.message)
        d.dismiss()

    opened.on("dialog", dialog)
    opened.set_default_timeout(WAIT_MS)
    yield opened
    context.close()
    assert not watched.problems, watched.problems
    assert not watched.dialogs, watched.dialogs


def _card(page: Page, state: str) -> Any:
    """The insight card in ``state``, reloading the page until the server shows it and
    the states of every group of :data:`GROUPS` from a finished evaluation pass (a pass
    stores an insight as it evaluates its group, and publishes the groups' states once
    every group is done; until the first pass ends the page says so, and a pass that
    began between the two groups' creation lists only the first)."""
    card = page.locator(f'article.insight[data-state="{state}"]')
    rows = page.locator("#insight-group-states tr[data-group]")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        page.goto("/#/insights?range=3h")
        page.locator("#insight-list > *").first.wait_for()
        page.locator("#insight-groups > *").first.wait_for()
        if card.count() and rows.count() == len(GROUPS):
            return card
        page.wait_for_timeout(500)
    raise AssertionError(f"no {state} insight shown: {page.locator('#view').inner_text()}")


def test_an_incident_is_shown_active_then_closed(
    page: Page, insights_server: ServerProcess
) -> None:
    active = _card(page, "ACTIVE")
    expect(active).to_have_count(1)
    expect(active.locator(".root-cause")).to_contain_text("ledger")
    expect(active.locator(".client-impact")).to_contain_text("faults of")
    assert active.locator("svg.insight-timeline polyline.rate").count() == 1
    assert active.locator("svg.insight-timeline polygon.band").count() == 1
    points = active.locator("polyline.rate").get_attribute("points") or ""
    assert len(points.split()) >= INCIDENT.stop - INCIDENT.start
    link = active.locator(".insight-traces").get_attribute("href") or ""
    assert link.startswith("#/traces?filter=service%28%22ledger%22%29")
    assert f"from={FIRST + INCIDENT.start * 60}" in link
    learning = page.locator('#insight-group-states tr[data-group="newcomer"]')
    expect(learning).to_have_attribute("data-state", "LEARNING")
    expect(learning).to_contain_text("a band needs")
    screenshot(page, "insights-active")

    _put(insights_server, traffic(FIRST + INCIDENT.stop * 60, 4, ()))
    closed = _card(page, "CLOSED")
    expect(closed).to_have_count(1)
    expect(closed.locator(".root-cause")).to_contain_text("ledger")
    expect(closed.locator(".insight-events li")).to_have_count(2)
    assert page.locator('article.insight[data-state="ACTIVE"]').count() == 0
    screenshot(page, "insights-closed")


def test_a_narrow_window_has_no_sideways_scrolling(page: Page) -> None:
    page.set_viewport_size({"width": 420, "height": 800})
    page.goto("/#/insights?range=3h")
    page.locator("#insight-list > *").first.wait_for()
    page.locator("#insight-groups > *").first.wait_for()
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, overflow
