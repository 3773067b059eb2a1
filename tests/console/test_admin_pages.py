"""The Sampling and Groups pages in a real browser, against a real server.

Rules are created, edited and deleted through the form, with the API's validation shown
at the field; live statistics follow what clients report; a what-if runs over stored
traces. Groups are managed with the filter checked as typed, and picked on Traces and
Analytics. Every page fails the test on a script error, a console error or a dialog.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from fluoroscope.model.ids import new_entity_id, new_trace_id
from tests.console.conftest import Watched, screenshot
from tests.support import ServerProcess, start_server, wait_for

PAYLOAD = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("admin-pages"))
    yield server
    server.stop()


@pytest.fixture
def page(browser: Browser, plain: ServerProcess) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=plain.url)
    opened = context.new_page()
    watched = Watched(opened, [], [])
    opened.on("console", lambda m: watched.problems.append(f"console {m.type}: {m.text}")
              if m.type in ("error", "warning") and "400 (Bad Request)" not in m.text else None)  # fmt: skip
    opened.on("pageerror", lambda e: watched.problems.append(f"page error: {e}"))

    def dialog(d: Any) -> None:
        watched.dialogs.append(d.message)
        d.dismiss()

    opened.on("dialog", dialog)
    opened.set_default_timeout(15_000)
    yield opened
    context.close()
    assert not watched.problems, watched.problems
    assert not watched.dialogs, watched.dialogs


def _names(page: Page) -> list[str]:
    return [
        str(n)
        for n in page.locator("#rule-list tbody tr").evaluate_all(
            "rows => rows.map(r => r.dataset.name)"
        )
    ]


def test_a_rule_is_created_edited_and_deleted_on_the_sampling_page(
    page: Page, plain: ServerProcess
) -> None:
    page.goto("/#/sampling")
    expect(page.locator("#rule-list[data-state=loaded]")).to_have_count(1)
    assert _names(page) == ["Default"]
    page.fill("#rule-RuleName", "checkout")
    page.fill("#rule-Priority", "10")
    page.fill("#rule-FixedRate", "1.5")
    page.fill("#rule-ServiceName", "shop")
    page.fill("#rule-URLPath", "/api/*")
    page.click("#rule-save")
    # the server's refusal, at the field it names
    expect(page.locator("#rule-FixedRate-error")).to_contain_text(
        "FixedRate must be between 0 and 1"
    )
    expect(page.locator("#rule-FixedRate")).to_have_attribute("aria-invalid", "true")
    page.fill("#rule-FixedRate", "0.25")
    page.click("#rule-save")
    expect(page.locator('#rule-list tr[data-name="checkout"]')).to_have_count(1)
    assert _names(page) == ["checkout", "Default"]  # priority order
    rule = plain.xray().get_sampling_rules()["SamplingRuleRecords"][0]["SamplingRule"]
    assert (rule["RuleName"], rule["FixedRate"], rule["ServiceName"]) == ("checkout", 0.25, "shop")

    page.locator('#rule-list tr[data-name="checkout"] [data-action="edit"]').click()
    expect(page).to_have_url(re.compile(r"edit=checkout"))
    expect(page.locator("#rule-RuleName")).to_be_disabled()
    page.fill("#rule-ReservoirSize", "7")
    page.fill("#rule-Priority", "0")
    page.click("#rule-save")
    expect(page.locator("#rule-Priority-error")).to_contain_text(
        "Priority must be between 1 and 9999"
    )
    page.fill("#rule-Priority", "20")
    page.click("#rule-save")
    expect(page).not_to_have_url(re.compile(r"edit="))
    expect(page.locator('#rule-list tr[data-name="checkout"]')).to_contain_text("7/s")
    screenshot(page, "sampling")

    delete = page.locator('#rule-list tr[data-name="checkout"] [data-action="delete"]')
    delete.click()
    expect(delete).to_have_text("Confirm delete")
    delete.click()
    expect(page.locator('#rule-list tr[data-name="checkout"]')).to_have_count(0)
    assert [r["SamplingRule"]["RuleName"] for r in
            plain.xray().get_sampling_rules()["SamplingRuleRecords"]] == ["Default"]  # fmt: skip
    expect(page.locator('#rule-list tr[data-name="Default"] [data-action="delete"]')).to_have_count(
        0
    )


def test_live_statistics_show_each_client(page: Page, plain: ServerProcess) -> None:
    client_id = uuid.uuid4().hex[:24]
    plain.xray(unsigned=True).get_sampling_targets(
        SamplingStatisticsDocuments=[
            {
                "RuleName": "Default",
                "ClientID": client_id,
                "Timestamp": time.time(),
                "RequestCount": 123,
                "SampledCount": 7,
                "BorrowCount": 1,
            }
        ]
    )
    page.goto("/#/sampling")
    row = page.locator('#rule-list tr[data-name="Default"]')
    expect(row.locator('[data-stat="clients"]')).to_have_text(re.compile(r"[1-9]"))
    expect(row.locator('[data-stat="requests"]')).not_to_have_text("—")
    expect(page.locator("#stats-rule")).to_have_value("Default")
    page.locator('details.clients[data-rule="Default"] summary').click()
    client = page.locator(f'details.clients tr[data-client="{client_id}"]')
    expect(client).to_contain_text("123")


def test_a_what_if_run_compares_the_proposal_with_the_current_rules(
    page: Page, plain: ServerProcess
) -> None:
    now = time.time()
    docs = [
        json.dumps(
            {
                "name": "whatif-shop",
                "id": new_entity_id(),
                "trace_id": new_trace_id(now),
                "start_time": now - 60 + i / 10,
                "end_time": now - 60 + i / 10 + 0.01,
                "http": {"request": {"url": "http://shop/api/cart", "method": "GET"}},
            }
        )
        for i in range(20)
    ]
    client = plain.xray()
    client.put_trace_segments(TraceSegmentDocuments=docs)
    wait_for(lambda: len(client.get_trace_summaries(
        StartTime=now - 120, EndTime=now + 5, FilterExpression='service("whatif-shop")'
    )["TraceSummaries"]) == 20, timeout=30)  # fmt: skip
    page.goto("/#/sampling?range=15m")
    expect(page.locator("#rule-list[data-state=loaded]")).to_have_count(1)
    page.fill("#rule-RuleName", "cart")
    page.fill("#rule-Priority", "5")
    page.fill("#rule-ServiceName", "whatif-shop")
    page.fill("#rule-ReservoirSize", "0")
    page.fill("#rule-FixedRate", "1")
    page.click("#rule-propose")
    proposal = json.loads(page.locator("#whatif-rules").input_value())
    assert [r["RuleName"] for r in proposal] == ["cart", "Default"]
    page.click("#whatif-run")
    expect(page.locator("#whatif-result[data-state=loaded]")).to_have_count(1)
    cart = page.locator('#whatif-table tr[data-rule="cart"]')
    expect(cart.locator('[data-col="matched"]')).to_have_text("20")
    expect(cart.locator('[data-col="kept"]')).to_have_text("20")  # a fixed rate of 1
    expect(page.locator("#whatif-summary")).to_contain_text("20 stored traces")
    # a bad proposal is refused with the rule it concerns
    page.fill("#whatif-rules", json.dumps([{**proposal[0], "FixedRate": 2}]))
    page.click("#whatif-run")
    expect(page.locator("#whatif-error")).to_contain_text("Rules[0]: FixedRate")


def test_groups_are_managed_with_the_filter_checked_as_typed(
    page: Page, plain: ServerProcess
) -> None:
    client = plain.xray()
    client.create_group(GroupName="hostile", FilterExpression=f'annotation.x = "{PAYLOAD}"')
    now = time.time()
    slow = {"name": "grp-svc", "id": new_entity_id(), "trace_id": new_trace_id(now),
            "start_time": now - 30, "end_time": now - 27}  # fmt: skip
    fast = {**slow, "id": new_entity_id(), "trace_id": new_trace_id(now), "end_time": now - 29.9}
    client.put_trace_segments(TraceSegmentDocuments=[json.dumps(slow), json.dumps(fast)])
    page.goto("/#/groups")
    expect(page.locator("#group-list[data-state=loaded]")).to_have_count(1)
    expect(page.locator('#group-list tr[data-name="hostile"]')).to_contain_text(PAYLOAD)  # as text
    page.fill("#group-name", "slow")
    page.locator("#group-filter").press_sequentially('service("grp-svc") AND responsetime >')
    expect(page.locator("#group-filter-error mark")).to_have_count(1)
    expect(page.locator("#group-filter")).to_have_attribute("aria-invalid", "true")
    page.locator("#group-filter").press_sequentially(" 2")
    expect(page.locator("#group-filter-status")).to_have_text("✓ valid")
    page.click("#group-save")
    expect(page.locator('#group-list tr[data-name="slow"]')).to_have_count(1)
    page.fill("#group-name", "slow")
    page.click("#group-save")
    expect(page.locator("#group-name-error")).to_contain_text("already exists")

    page.locator('#group-list tr[data-name="slow"] a', has_text="Traces").click()
    expect(page).to_have_url(re.compile(r"#/traces\?.*group=slow"))
    expect(page.locator("#trace-list[data-state=loaded][data-group=slow]")).to_have_count(1)
    ids = page.locator("#trace-list tbody tr").evaluate_all("rows => rows.map(r => r.dataset.id)")
    assert ids == [slow["trace_id"]]
    page.locator("#group").select_option("")
    expect(page).not_to_have_url(re.compile(r"group="))
    expect(page.locator(f'#trace-list tr[data-id="{fast["trace_id"]}"]')).to_have_count(1)

    page.goto("/#/analytics?range=15m")
    page.locator("#group").select_option("slow")
    expect(page).to_have_url(re.compile(r"group=slow"))

    page.goto("/#/groups?edit=slow")
    expect(page.locator("#group-name")).to_be_disabled()
    page.fill("#group-filter", 'service("grp-svc")')
    page.click("#group-save")
    expect(page.locator('#group-list tr[data-name="slow"] code')).to_have_text('service("grp-svc")')
    assert client.get_group(GroupName="slow")["Group"]["FilterExpression"] == 'service("grp-svc")'
    delete = page.locator('#group-list tr[data-name="slow"] [data-action="delete"]')
    delete.click()
    expect(delete).to_have_text("Confirm delete")
    delete.click()
    expect(page.locator('#group-list tr[data-name="slow"]')).to_have_count(0)
    screenshot(page, "groups")


def test_narrow_windows_have_no_sideways_scrolling(page: Page) -> None:
    page.set_viewport_size({"width": 420, "height": 800})
    for view in ("sampling", "groups", "traces"):
        page.goto(f"/#/{view}?range=15m")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (view, overflow)
