"""In Chromium, on the demo's traffic: a trace's critical path marked on its timeline with
self times, and two traces picked on the Traces list compared."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

from playwright.sync_api import expect

from tests.console.conftest import Demo, Watched


def _post(demo: Demo, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{demo.url}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_the_critical_path_is_marked_on_the_timeline(watched: Watched, demo: Demo) -> None:
    page = watched.page
    page.goto("/#/traces?range=15m")
    first = page.locator("#trace-list[data-state=loaded] tbody tr").first
    trace_id = first.get_attribute("data-id")
    assert trace_id
    page.goto(f"/#/trace/{trace_id}")
    marked = page.locator("#timeline .tl-row.critical")
    expect(marked.first).to_be_visible()
    answer = _post(demo, "/api/trace/critical-path", {"TraceId": trace_id})
    expected = {e["Id"] for e in answer["Entries"]}
    ids = {marked.nth(i).get_attribute("data-id") for i in range(marked.count())}
    assert ids == expected
    # every entity row carries its self time, shown as the duration's tooltip
    row = marked.first
    assert float(row.get_attribute("data-self") or "nan") >= 0
    assert (row.locator(".tl-dur").get_attribute("title") or "").startswith("self time ")
    expect(row.locator(".tl-crit")).to_contain_text("◆")
    page.locator("#compare-with").click()
    expect(page.locator('input[name="a"]')).to_have_value(trace_id)


def test_two_traces_picked_on_the_list_are_compared(watched: Watched, demo: Demo) -> None:
    page = watched.page
    page.goto("/#/traces?range=15m")
    rows = page.locator("#trace-list[data-state=loaded] tbody tr")
    expect(rows.nth(1)).to_be_visible()
    button = page.locator("#compare-selected")
    expect(button).to_be_disabled()
    picked = [rows.nth(i).get_attribute("data-id") for i in (0, 1)]
    rows.nth(0).locator("input.cmp-pick").check()
    rows.nth(1).locator("input.cmp-pick").check()
    expect(button).to_be_enabled()
    button.click()
    expect(page.locator("#comparison[data-state=loaded]")).to_be_visible()
    assert page.url.endswith(f"a={picked[0]}&b={picked[1]}")
    answer = _post(demo, "/api/trace/compare", {"TraceIds": picked})
    matched = page.locator("#compare-matched tbody tr")
    expect(matched).to_have_count(len(answer["Matched"]))
    expect(page.locator("#compare-critical tbody tr")).to_have_count(len(answer["CriticalPath"]))
    expect(page.locator("#compare-only-a")).to_be_visible()
    expect(page.locator("#compare-only-b")).to_be_visible()


def test_the_critical_path_across_traces_is_ranked_and_stacked(
    watched: Watched, demo: Demo
) -> None:
    page = watched.page
    page.goto("/#/map?range=15m")
    page.locator('nav.views a[data-view="critical-path"]').click()
    expect(page.locator("#cp-result[data-state=loaded]")).to_be_visible(timeout=60_000)
    rows = page.locator("#cp-table tbody tr")
    expect(rows.first).to_be_visible()
    assert page.locator("#cp-bar-p99 .cp-seg").count() >= 1
    # the demo's requests: the API Gateway stage and the function on every path
    names = {rows.nth(i).get_attribute("data-name") for i in range(rows.count())}
    assert len(names) >= 2
    assert page.locator("#cp-bar-p50 .cp-seg").count() >= 1
    page.locator("#cp-slowest").select_option("1")
    page.locator("#cp-filter").fill("fault")
    page.locator("#cp-filter").press("Enter")
    expect(page).to_have_url(re.compile(r"slowest=1"))
    expect(page.locator("#cp-result[data-state=loaded]")).to_be_visible(timeout=60_000)
    page.locator("#cp-filter").fill("service((")
    watched.allow("400")
    page.locator("#cp-filter").press("Enter")
    expect(page.locator("#cp-result[data-state=error]")).to_contain_text("could not be computed")
