"""Finding causes in the console (Chromium, ``fluoroscope demo``): root causes, the trace-id box.

A legacy order makes the demo's ``getOrder`` function raise ``KeyError`` three levels
down, in ``loadLegacyOrder``: its trace must open with that root cause stated (service,
entity path, exception and stack) and the timeline scrolled to the entry holding it,
selected and marked. The Analytics view lists fault, error and response-time root causes
of the chosen set, and a cause's link lists exactly traces that hold it. The header's
trace-id box opens a trace from either id form (or a whole X-Amzn-Trace-Id value) and
points out anything else. The live map loses no click while it refreshes, zooms with
buttons, and a node's panel gives its p50 / p90 / p99 and its latency and faults over time.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse

from playwright.sync_api import Route, expect

from tests.console.conftest import Demo, Watched, map_scale, screenshot
from tests.support import DEMO_FUNCTION, wait_for

LEGACY = 'rootcause.fault.entity { last and name = "loadLegacyOrder" }'


def _legacy_trace(demo: Demo) -> str | None:
    now = time.time()
    found = demo.xray().get_trace_summaries(
        StartTime=now - 900, EndTime=now + 5, FilterExpression=LEGACY
    )["TraceSummaries"]
    return str(found[0]["Id"]) if found else None


def test_a_failed_trace_opens_on_its_root_cause(watched: Watched, demo: Demo) -> None:
    trace_id = wait_for(lambda: _legacy_trace(demo), timeout=120, interval=1)
    page = watched.page
    page.set_viewport_size({"width": 1280, "height": 500})  # the entry starts off-screen
    page.goto(f"/#/trace/{trace_id}")
    panel = page.locator("#root-causes")
    expect(panel).to_be_visible()
    expect(panel.locator("h2")).to_have_text("Root cause")
    fault = panel.locator('.rc-cause[data-category="fault"]').first
    expect(fault).to_have_attribute("data-entity", "loadLegacyOrder")
    expect(fault.locator(".rc-path .rc-step.last")).to_contain_text("loadLegacyOrder")
    expect(fault.locator(".rc-path .rc-step.last")).to_contain_text("KeyError")
    expect(fault.locator(".rc-ex-title")).to_contain_text("KeyError")
    expect(fault.locator(".rc-stack li").first).to_contain_text("_parse_legacy")
    assert fault.get_attribute("data-service")

    row = page.locator('#timeline .tl-row[data-name="loadLegacyOrder"]')
    expect(row).to_have_class(re.compile(r"\brc-entry\b"))
    expect(row).to_have_class(re.compile(r"\bselected\b"))
    expect(row).to_have_attribute("data-rootcause", re.compile("fault"))
    expect(row).to_be_in_viewport()
    expect(page).to_have_url(re.compile(r"select="))
    expect(page.locator("#details h2")).to_have_text("loadLegacyOrder")
    screenshot(page, "root-cause")

    # an entry chosen in the link wins over the root cause
    invocation = page.locator("#timeline .tl-row").first.get_attribute("data-id")
    page.goto(f"/#/trace/{trace_id}?select={invocation}")
    expect(page.locator("#root-causes")).to_be_visible()
    expect(page.locator(f'#timeline .tl-row[data-id="{invocation}"]')).to_have_class(
        re.compile(r"\bselected\b")
    )
    expect(row).not_to_have_class(re.compile(r"\bselected\b"))


def test_analytics_ranks_root_causes_and_links_to_their_traces(
    watched: Watched, demo: Demo
) -> None:
    wait_for(lambda: _legacy_trace(demo), timeout=120, interval=1)
    page = watched.page
    page.goto("/#/analytics?range=15m")
    tables = page.locator("#root-cause-tables")
    for category in ("fault", "error", "responsetime"):
        expect(tables.locator(f'.rc-table-panel[data-category="{category}"]')).to_be_visible()
    legacy = tables.locator('table[data-category="fault"] tr[data-entity="loadLegacyOrder"]')
    expect(legacy).to_have_count(1)
    expect(legacy.locator("td").nth(2)).to_have_text("KeyError")
    expect(tables.locator('table[data-category="responsetime"] tbody tr').first).to_be_visible()

    link = legacy.locator("a")
    target = link.get_attribute("href") or ""
    expression = urllib.parse.parse_qs(target.split("?", 1)[1])["filter"][0]
    assert "loadLegacyOrder" in expression and "KeyError" in expression
    link.click()
    expect(page.locator("#trace-list[data-state=loaded]")).to_have_count(1)
    listed = page.locator("#trace-list tbody tr").all()
    assert listed
    now = time.time()
    holding = demo.xray().get_trace_summaries(
        StartTime=now - 900, EndTime=now + 5, FilterExpression=expression
    )["TraceSummaries"]
    assert holding
    for summary in holding:
        causes = summary["FaultRootCauses"]
        assert any(
            c["Services"][0]["EntityPath"][-1]["Name"] == "loadLegacyOrder" for c in causes
        ), causes


def test_the_header_box_opens_a_trace_by_either_id_form(watched: Watched, demo: Demo) -> None:
    trace_id = wait_for(lambda: _legacy_trace(demo), timeout=120, interval=1)
    w3c = trace_id[2:].replace("-", "").upper()  # 32 hex digits, as OpenTelemetry shows it
    page = watched.page
    page.goto("/#/map?range=15m")
    box = page.locator("#trace-id-box")
    box.fill("not-a-trace")
    box.press("Enter")
    expect(box).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#trace-id-error")).to_contain_text("Not a trace id")
    expect(page).to_have_url(re.compile(r"#/map"))

    box.fill(f" {w3c} ")
    box.press("Enter")
    expect(page).to_have_url(re.compile(f"#/trace/{trace_id}$"))
    expect(page.locator("#root-causes")).to_be_visible()
    expect(page.locator("#timeline .tl-row").first).to_be_visible()
    expect(box).to_have_value("")

    page.goto("/#/traces?range=15m")
    page.locator("#trace-id-box").fill(f"Root={trace_id};Parent=53995c3f42cd8ad8;Sampled=1")
    page.locator("#trace-id-box").press("Enter")
    expect(page).to_have_url(re.compile(f"#/trace/{trace_id}$"))
    expect(page.locator("h1 .tl-trace-id")).to_have_text(trace_id)


def test_map_clicks_are_never_lost_while_it_refreshes(watched: Watched, demo: Demo) -> None:
    """100 clicks, each held down 150 ms while the live map redraws every second: every
    click opens its node's panel (a redraw under a press used to swallow the click)."""
    page = watched.page
    page.goto("/#/map?range=15m")
    chosen = [("orders-api/prod", "AWS::ApiGateway::Stage"), DEMO_FUNCTION]
    names = [name for name, _ in chosen]
    nodes = [
        page.locator(
            f"#service-map g.node[data-name={json.dumps(n)}][data-type={json.dumps(t)}] circle.hub"
        )
        for n, t in chosen
    ]
    for node in nodes:
        expect(node).to_be_visible()
    canvas = page.locator(".map-canvas")
    refreshes = set()
    for i in range(100):
        name = names[i % 2]
        nodes[i % 2].click(delay=150)
        expect(page.locator("#node-details h2").first).to_have_text(name)
        refreshes.add(canvas.get_attribute("data-updated"))
    assert len(refreshes) >= 5, "the map did not refresh during the clicks"

    panel = page.locator("#node-details")
    expect(panel.locator("dt", has_text="p50 / p90 / p99")).to_have_count(1)
    assert re.fullmatch(
        r"\S+ \S+ / \S+ \S+ / \S+ \S+",
        panel.locator("dt:text-is('p50 / p90 / p99') + dd").inner_text(),
    )

    # and its latency and faults over the range, from the time-series API
    expect(page.locator("#node-latency[data-points]")).to_have_count(1)
    assert int(page.locator("#node-latency").get_attribute("data-points") or 0) >= 1
    expect(page.locator("#node-latency .uplot")).to_have_count(1)
    expect(page.locator("#node-faults .uplot")).to_have_count(1)

    before = map_scale(page)
    page.get_by_role("button", name="Zoom in").click()
    assert map_scale(page) > before
    page.get_by_role("button", name="Zoom out").click()
    page.get_by_role("button", name="Zoom out").click()
    assert map_scale(page) < before


def test_the_filter_box_completes_from_what_is_stored_and_recalls_filters(
    watched: Watched, demo: Demo
) -> None:
    page = watched.page
    page.goto("/#/traces?range=15m")
    box = page.locator("#filter")
    options = page.locator("#filter-suggestions [role=option]")
    box.click()
    box.press_sequentially("respon")
    expect(options.first).to_have_text(re.compile(r"^responsetime"))
    box.fill("")

    function = DEMO_FUNCTION[0]
    box.press_sequentially(f'service("{function[:-3]}')
    expect(page.locator("#filter-suggestions")).to_be_visible()
    wanted = options.filter(has_text=re.compile(f"^{re.escape(function)}service$"))
    expect(wanted).to_have_count(1)
    wanted.click()
    expect(box).to_have_value(f'service("{function}")')

    box.press_sequentially(" AND annotation.cold")
    expect(options.first).to_have_text(re.compile(r"^annotation\.cold_start"))
    box.press("ArrowDown")
    box.press("Enter")
    expect(box).to_have_value(f'service("{function}") AND annotation.cold_start ')
    box.press_sequentially("= ")
    expect(options).to_have_text([re.compile("^false"), re.compile("^true")])
    options.filter(has_text="true").click()
    expression = f'service("{function}") AND annotation.cold_start = true'
    expect(box).to_have_value(expression + " ")
    box.press("Enter")
    expect(page.locator("#trace-list[data-state=loaded]")).to_have_count(1)
    expect(page.locator("#trace-list tbody tr").first).to_be_visible()

    page.goto("/#/analytics?range=15m")  # another view, another box: the filter is recalled
    page.locator("#filter").click()
    recent = page.locator("#filter-suggestions [role=option][data-kind=recent]")
    expect(recent.first).to_have_text(re.compile("^" + re.escape(expression)))
    page.locator("#filter").press("ArrowDown")
    page.locator("#filter").press("Enter")
    expect(page.locator("#filter")).to_have_value(expression)
    assert page.locator("#filter-suggestions li").evaluate_all(
        "els => els.every(e => e.children.length <= 1)"
    )


def test_a_view_that_is_gone_takes_no_focus_while_the_next_one_loads(
    watched: Watched, demo: Demo
) -> None:
    """A view's module is fetched the first time it is shown; until it is there the old
    view stays on the page. Its filter box must not take the focus meanwhile (a click on
    it used to, so the new view's box, recalling the recent filters, never got it)."""
    page = watched.page
    held: list[Route] = []
    page.route("**/js/views/analytics.js", lambda route: held.append(route))
    page.goto("/#/traces?range=15m")
    box = page.locator("#filter")
    box.fill("responsetime >= 0")
    box.press("Enter")
    expect(page.locator("#trace-list[data-state=loaded]")).to_have_count(1)

    page.goto("/#/analytics?range=15m")
    expect(page.locator("#view[aria-busy=true]")).to_have_count(1)

    def requested() -> bool:
        page.evaluate("0")  # a round trip, in which Playwright hands the request over
        return bool(held)

    wait_for(requested, timeout=15)
    old = page.locator("#filter")
    expect(old).to_have_attribute("name", "filter")  # still the Traces view's box
    assert not old.evaluate("el => { el.focus(); return document.activeElement === el; }")

    held[0].continue_()
    expect(page.locator("#view[aria-busy]")).to_have_count(0)
    page.locator("#filter").click()
    recent = page.locator("#filter-suggestions [role=option][data-kind=recent]")
    expect(recent.first).to_have_text(re.compile(r"^responsetime >= 0"))


def test_a_press_on_the_panel_s_link_survives_a_refresh(watched: Watched, demo: Demo) -> None:
    """ "View traces" held down while the live map refreshes (every second) still opens the
    traces: the refresh rebuilds the panel, and it waits for the press to end (a rebuilt
    panel under the press used to swallow the click)."""
    page = watched.page
    page.goto("/#/map?range=15m")
    name, kind = DEMO_FUNCTION
    hub = page.locator(
        f"#service-map g.node[data-name={json.dumps(name)}][data-type={json.dumps(kind)}] "
        "circle.hub"
    )
    hub.click()
    expect(page.locator("#node-details h2").first).to_have_text(name)
    # the node's series charts are drawn once their statistics are in (this moves the links)
    expect(page.locator("#node-latency[data-points]")).to_have_count(1)
    link = page.locator("#view-traces")
    canvas = page.locator(".map-canvas")
    # every frame painted across two refreshes shows the link where it was: the panel is
    # rebuilt, its figures change and its charts are drawn a moment later, and none of it
    # moves the links (a pointer on one lost it when the figures above it wrapped a line)
    tops = page.evaluate(
        """() => new Promise((done) => {
            const canvas = document.querySelector('.map-canvas');
            const first = canvas.dataset.updated;
            const tops = [];
            let seen = 0;
            let after = 0;
            let last = first;
            const frame = () => {
                tops.push(document.querySelector('#view-traces').getBoundingClientRect().top);
                if (canvas.dataset.updated !== last) { last = canvas.dataset.updated; seen += 1; }
                // a few frames past the second refresh, so its charts are drawn too
                if (seen >= 2 && ++after > 10) {
                    done(tops);
                    return;
                }
                requestAnimationFrame(frame);
            };
            requestAnimationFrame(frame);
        })"""
    )
    assert len(set(tops)) == 1, f"the link moved during a refresh: {sorted(set(tops))}"
    link.hover()
    box = link.bounding_box()
    assert box is not None
    before = canvas.get_attribute("data-updated")
    page.mouse.down()
    # the refresh came (its answer is in) while the button is still down
    page.wait_for_function(
        "(before) => document.querySelector('.map-canvas').dataset.updated !== before",
        arg=before,
    )
    page.mouse.up()
    expect(page).to_have_url(re.compile(r"#/traces\?"))
    expect(page.locator("#filter")).to_have_value(f'service(id(name: "{name}", type: "{kind}"))')
