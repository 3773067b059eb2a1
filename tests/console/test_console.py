"""The web console in a real browser, against a server fed by the sample app and the SDK.

Each test drives the console as a person does (typing, clicking, keys) and checks what it
shows against what the X-Ray API says. The ``watched`` page fails a test on any script
error, console error (CSP violations included) or dialog.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
import traceback
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import Demo, Watched, screenshot
from tests.support import DEMO_EDGES, DEMO_FUNCTION, start_server, wait_for

FUNCTION_FILTER = f'service(id(name: "{DEMO_FUNCTION[0]}", type: "{DEMO_FUNCTION[1]}"))'
PAYLOAD = "<img src=x onerror=alert(1)>"


def _entities(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    stack = list(docs)
    while stack:
        doc = stack.pop()
        stack.extend(doc.get("subsegments", []))
        found[doc["id"]] = doc
    return found


def _documents(client: Any, trace_id: str) -> list[dict[str, Any]]:
    traces = client.batch_get_traces(TraceIds=[trace_id])["Traces"]
    if not traces:
        return []
    return [json.loads(s["Document"]) for s in traces[0]["Segments"]]


def _summaries(client: Any, expression: str = "", seconds: float = 900) -> list[dict[str, Any]]:
    now = time.time()
    kwargs: dict[str, Any] = {"StartTime": now - seconds, "EndTime": now + 5}
    if expression:
        kwargs["FilterExpression"] = expression
    return list(client.get_trace_summaries(**kwargs)["TraceSummaries"])


def _close_emitter() -> None:
    sock = getattr(getattr(xray_recorder, "_emitter", None), "_socket", None)
    if sock is not None:  # the SDK never closes an emitter it replaces
        sock.close()


@pytest.fixture(scope="module", autouse=True)
def _sdk_emitter() -> Iterator[None]:
    yield
    _close_emitter()


def _emit(port: int, *, annotation: str, url: str, message: str) -> str:
    """One trace through the official aws-xray-sdk, over UDP; returns its id."""
    _close_emitter()
    xray_recorder.configure(
        sampling=False,
        context_missing="LOG_ERROR",
        emitter=UDPEmitter(f"127.0.0.1:{port}"),
        daemon_address=f"127.0.0.1:{port}",
        service="console-check",
    )
    segment = xray_recorder.begin_segment("console-check")
    segment.put_annotation("note", annotation)
    segment.put_metadata("payload", {"html": annotation}, "debug")
    segment.put_http_meta("url", url)
    segment.put_http_meta("method", "GET")
    segment.put_http_meta("status", 500)
    segment.set_user(annotation)
    sub = xray_recorder.begin_subsegment("render")
    try:
        raise ValueError(message)
    except ValueError as exc:
        sub.add_exception(exc, traceback.extract_stack())
    xray_recorder.end_subsegment()
    # a downstream call whose table name becomes an inferred node of the service map
    table = xray_recorder.begin_subsegment("DynamoDB", namespace="aws")
    table.set_aws({"operation": "GetItem", "table_name": annotation})
    table.put_http_meta("status", 200)
    xray_recorder.end_subsegment()
    xray_recorder.end_segment()
    return str(segment.trace_id)


def _attributes(page: Page, selector: str, *names: str) -> list[tuple[str, ...]]:
    """The attributes of every element matching ``selector``, read in one go (views redraw
    while live, so element by element could mix two renderings)."""
    rows: list[list[str]] = page.eval_on_selector_all(
        selector, "(els, names) => els.map(e => names.map(n => e.getAttribute(n) ?? ''))", names
    )
    return [tuple(row) for row in rows]


def _cells(page: Page, column: int) -> list[str]:
    """The text of one column of the loaded trace list."""
    texts: list[str] = page.eval_on_selector_all(
        f"#trace-list[data-state=loaded] tbody tr td:nth-child({column})",
        "els => els.map(e => e.innerText)",
    )
    return texts


def _loaded(page: Page, expression: str) -> None:
    """Wait until the trace list shows the traces matching ``expression``."""
    expect(
        page.locator("#trace-list[data-state=loaded]").and_(
            page.locator(f"#trace-list[data-filter={json.dumps(expression)}]")
        )
    ).to_have_count(1)


def test_the_service_map_shows_the_app_and_leads_to_traces(watched: Watched, demo: Demo) -> None:
    page = watched.page
    response = page.goto("/#/map?range=15m")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(
        page.locator('#service-map g.node[data-type="AWS::Lambda::Function"]').first
    ).to_be_visible()

    shown = {
        ((source, source_type), (target, target_type))
        for source, source_type, target, target_type in _attributes(
            page,
            "#service-map g.edge",
            "data-source",
            "data-source-type",
            "data-target",
            "data-target-type",
        )
    }
    assert shown >= DEMO_EDGES
    nodes = {(n, t) for n, t in _attributes(page, "#service-map g.node", "data-name", "data-type")}
    api_nodes = {(s["Name"], s.get("Type", "")) for s in _graph_services(demo)}
    assert nodes <= api_nodes and {n for edge in DEMO_EDGES for n in edge} <= nodes
    expect(page.locator("#service-map .edge-label").first).to_contain_text("/min")
    screenshot(page, "service-map")

    node = page.locator(
        f'#service-map g.node[data-name="{DEMO_FUNCTION[0]}"][data-type="{DEMO_FUNCTION[1]}"] circle.hub'
    )
    node.click()
    details = page.locator("#node-details")
    expect(details).to_contain_text(DEMO_FUNCTION[0])
    expect(details).to_contain_text("Average response")
    expect(details.locator("#node-histogram canvas").first).to_be_visible()
    screenshot(page, "service-map-node")

    page.locator("#view-traces").click()
    _loaded(page, FUNCTION_FILTER)
    expect(page.locator("#filter")).to_have_value(FUNCTION_FILTER)
    api_ids = {s["Id"] for s in _summaries(demo.xray(), FUNCTION_FILTER)}
    listed = {i for (i,) in _attributes(page, "#trace-list tbody tr", "data-id")}
    assert listed and len(listed & api_ids) >= len(listed) - 2  # the API moved on meanwhile


def _graph_services(demo: Demo) -> list[dict[str, Any]]:
    now = time.time()
    return list(demo.xray().get_service_graph(StartTime=now - 900, EndTime=now + 5)["Services"])


def test_a_filter_narrows_the_list_and_a_bad_one_is_pointed_at(
    watched: Watched, demo: Demo
) -> None:
    # the demo's conditional-check failures (409) come a few times a minute
    wait_for(lambda: _summaries(demo.xray(), "http.status = 409") or None, timeout=90)
    page = watched.page
    page.goto("/#/traces?range=15m")
    _loaded(page, "")
    before = {s for (s,) in _attributes(page, "#trace-list tbody tr", "data-status")}
    assert before - {"error"}, "the demo's traffic is not all 4xx"
    expect(page.locator("#distribution canvas").first).to_be_visible()
    screenshot(page, "traces")

    page.locator("body").click(position={"x": 5, "y": 300})
    page.keyboard.press("/")
    expect(page.locator("#filter")).to_be_focused()
    page.keyboard.type("http.status = 409")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"filter=http\.status"))
    _loaded(page, "http.status = 409")
    statuses = _cells(page, 4)
    assert statuses and all(s.startswith("409") for s in statuses), statuses

    watched.allow("status of 400 (Bad Request)")  # the API's answer to the bad filter
    page.locator("#filter").fill("http.status = = 5")
    page.keyboard.press("Enter")
    error = page.locator("#filter-error")
    expect(error).to_contain_text("position 14")
    expect(error.locator("mark")).to_have_text("=")
    expect(page.locator("#filter")).to_have_attribute("aria-invalid", "true")


def test_dragging_the_distribution_narrows_by_response_time(watched: Watched) -> None:
    page = watched.page
    page.goto("/#/traces?range=15m&sort=slowest")
    _loaded(page, "")
    slowest = _seconds(_cells(page, 5)[0])
    over = page.locator("#distribution .u-over")
    expect(over).to_be_visible()
    box = over.bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 3, y, steps=5)
    page.mouse.up()
    expect(page.locator("#filter")).to_have_value(
        re.compile(r"^responsetime >= \d+\.\d{3} AND responsetime <= \d+\.\d{3}$")
    )
    expression = page.locator("#filter").input_value()
    bounds = [float(x) for x in re.findall(r"\d+\.\d{3}", expression)]
    _loaded(page, expression)
    times = _cells(page, 5)
    assert times, "the dragged range holds traces"
    for text in times:
        assert bounds[0] - 0.001 <= _seconds(text) <= bounds[1] + 0.001, (text, bounds)
    assert bounds[1] < slowest, "the first third of the axis leaves the slowest trace out"


def test_a_trace_opens_its_timeline_with_every_subsegment(watched: Watched, demo: Demo) -> None:
    page = watched.page
    page.goto(f"/#/traces?range=15m&filter={urllib.parse.quote(FUNCTION_FILTER)}")
    _loaded(page, FUNCTION_FILTER)
    first = page.locator("#trace-list tbody tr").first
    trace_id = first.get_attribute("data-id")
    assert trace_id
    first.locator("td.url").click()
    expect(page).to_have_url(re.compile(f"#/trace/{trace_id}"))
    expect(page.locator("#timeline .tl-row").first).to_be_visible()
    entities = _entities(_documents(demo.xray(), trace_id))
    rows = {r.get_attribute("data-id"): r for r in page.locator("#timeline .tl-row").all()}
    assert set(rows) == set(entities)
    for entity_id, entity in entities.items():
        assert rows[entity_id].get_attribute("data-name") == entity["name"]
    services = {g.get_attribute("data-service") for g in page.locator("#timeline .tl-group").all()}
    assert {"orders-api/prod", DEMO_FUNCTION[0]} <= services

    invocation = page.locator('#timeline .tl-row[data-name="Invocation"]').first
    invocation.click()
    tabs = page.locator('#details [role="tab"]')
    expect(tabs).to_have_text(
        ["Overview", "Resources", "Annotations", "Metadata", "Exceptions", "HTTP", "SQL", "Raw"]
    )
    expect(page.locator("#details-body")).to_contain_text("Invocation")
    page.locator('#details [role="tab"]', has_text="Raw").click()
    expect(page.locator("#details-body")).to_contain_text(
        invocation.get_attribute("data-id") or "?"
    )
    page.get_by_role("link", name="Back to traces").click()
    expect(page.locator("#filter")).to_have_value(FUNCTION_FILTER)


def _cold_trace(demo: Demo) -> str | None:
    """A trace holding a cold start: among the demo's first invocations (each function
    starts cold once), so the oldest traces are read, however long the demo has run."""
    client = demo.xray()
    now = time.time()
    pages = client.get_paginator("get_trace_summaries").paginate(
        StartTime=now - 900, EndTime=now + 5, FilterExpression=FUNCTION_FILTER
    )
    summaries = [s for page in pages for s in page["TraceSummaries"]]
    for summary in [*summaries[-60:], *summaries[:20]]:
        for doc in _entities(_documents(client, summary["Id"])).values():
            if doc.get("name") == "Initialization" and not doc.get("in_progress"):
                return str(summary["Id"])
    return None


def test_a_cold_start_shows_as_such(watched: Watched, demo: Demo) -> None:
    trace_id = wait_for(lambda: _cold_trace(demo), timeout=60, interval=1)
    page = watched.page
    page.goto(f"/#/trace/{trace_id}")
    cold = page.locator('#timeline .tl-row[data-cold="true"]')
    expect(cold.first).to_be_visible()
    expect(cold.first).to_have_attribute("data-name", "Initialization")
    expect(page.locator("#timeline").get_by_text("Cold start").first).to_be_visible()
    cold.first.click()
    expect(page.locator("#details-body")).to_contain_text("Initialization")
    screenshot(page, "timeline")


def test_strings_from_segments_render_as_text(watched: Watched, demo: Demo) -> None:
    url = f"http://example.com/{PAYLOAD}"
    trace_id = _emit(demo.port, annotation=PAYLOAD, url=url, message=f"boom {PAYLOAD}")
    client = demo.xray()
    wait_for(lambda: _documents(client, trace_id) or None, timeout=60)
    page = watched.page

    page.goto("/#/traces?range=15m&filter=" + urllib.parse.quote('service("console-check")'))
    row = page.locator(f'#trace-list tbody tr[data-id="{trace_id}"]')
    expect(row).to_be_visible()
    expect(row.locator("td.url")).to_have_text(url)

    row.locator("td.url").click()
    segment = page.locator('#timeline .tl-row[data-kind="segment"]').first
    segment.click()
    body = page.locator("#details-body")
    for tab, text in (("Annotations", PAYLOAD), ("Metadata", PAYLOAD), ("HTTP", url)):
        page.locator('#details [role="tab"]', has_text=tab).click()
        expect(body).to_contain_text(text)
    page.locator('#timeline .tl-row[data-name="render"]').click()
    page.locator('#details [role="tab"]', has_text="Exceptions").click()
    expect(body).to_contain_text(f"boom {PAYLOAD}")
    page.locator('#timeline .tl-row[data-name="DynamoDB"]').click()
    page.locator('#details [role="tab"]', has_text="Resources").click()
    expect(body).to_contain_text(PAYLOAD)
    assert page.locator("img").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0

    page.goto("/#/map?range=15m")
    table = page.locator(
        f"#service-map g.node[data-type='AWS::DynamoDB::Table'][data-name={json.dumps(PAYLOAD)}]"
    )
    expect(table.locator("text.name")).to_have_text(PAYLOAD)
    table.locator("circle.hub").click()
    expect(page.locator("#node-details h2").first).to_have_text(PAYLOAD)
    assert page.locator("img").count() == 0


# ingest, a poll and a redraw, each slowed on a busy machine (an upper bound, not a sleep)
LIVE_WAIT_MS = 60_000


def test_live_tail_shows_new_traces_as_they_arrive(watched: Watched, demo: Demo) -> None:
    page = watched.page
    page.goto("/#/traces?range=15m&live=1&filter=" + urllib.parse.quote('service("console-check")'))
    expect(page.locator("#live-tail")).to_be_checked()
    expect(page.locator("#trace-list")).to_have_attribute("data-polled", re.compile(r"\d+"))
    trace_id = _emit(demo.port, annotation="tail", url="http://example.com/tail", message="x")
    expect(page.locator(f'#trace-list tbody tr[data-id="{trace_id}"]')).to_be_visible(
        timeout=LIVE_WAIT_MS
    )

    # a trace first seen in progress is shown again once it is complete
    started = time.time()
    segment = {
        "trace_id": f"1-{int(started):08x}-{secrets.token_hex(12)}",
        "id": secrets.token_hex(8),
        "name": "console-check",
        "start_time": started,
        "in_progress": True,
    }
    row = page.locator(f'#trace-list tbody tr[data-id="{segment["trace_id"]}"]')
    _send(demo.port, segment)
    expect(row).to_be_visible(timeout=LIVE_WAIT_MS)
    expect(row.locator("td.url")).not_to_contain_text("http://")
    del segment["in_progress"]
    segment["end_time"] = started + 0.25
    segment["http"] = {
        "request": {"method": "PUT", "url": "http://example.com/finished"},
        "response": {"status": 204},
    }
    _send(demo.port, segment)
    expect(row.locator("td.url")).to_have_text("http://example.com/finished", timeout=LIVE_WAIT_MS)
    expect(row.locator("td:nth-child(4)")).to_have_text("204")


def _send(port: int, document: dict[str, Any]) -> None:
    """One document as the daemon protocol's datagram, as any X-Ray SDK sends it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        header = b'{"format": "json", "version": 1}\n'
        sock.sendto(header + json.dumps(document).encode(), ("127.0.0.1", port))


def test_views_are_deep_links(watched: Watched) -> None:
    page = watched.page
    page.goto("/#/traces?range=5m&filter=fault")
    expect(page.locator("#filter")).to_have_value("fault")
    expect(page.locator("#time-range")).to_have_value("5m")
    expect(page.locator('nav.views a[aria-current="page"]')).to_have_text("Traces")
    page.locator("#time-range").select_option("3h")
    expect(page).to_have_url(re.compile(r"range=3h"))
    expect(page).to_have_url(re.compile(r"filter=fault"))
    page.goto("/#/nowhere")
    expect(page.locator("main .state.error")).to_contain_text("nowhere")


def test_a_narrow_window_has_no_sideways_scrolling(watched: Watched) -> None:
    page = watched.page
    page.set_viewport_size({"width": 420, "height": 800})
    for view in ("map", "traces", "analytics"):
        page.goto(f"/#/{view}?range=15m")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(500)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (view, overflow)
    page.goto("/#/traces?range=15m")
    expect(page.locator("#trace-list tbody tr").first).to_be_visible()
    screenshot(page, "traces-narrow")


def _count(client: Any, expression: str, start: int, end: int) -> int:
    pages = client.get_paginator("get_trace_summaries").paginate(
        StartTime=start, EndTime=end, FilterExpression=expression
    )
    return sum(len(page["TraceSummaries"]) for page in pages)


def test_analytics_compares_two_filtered_sets(watched: Watched, demo: Demo) -> None:
    client = demo.xray()

    counted: dict[tuple[int, int], tuple[int, int]] = {}

    def closed_window() -> tuple[int, int, int, int] | None:
        # A minute that ended 30 s ago, counted twice alike: every trace of it is in, on a
        # loaded machine too, so the console and the API count the same traces.
        end = int(time.time()) // 10 * 10 - 30
        start = end - 60
        counts = (
            _count(client, "http.status = 409", start, end),
            _count(client, "http.status = 201", start, end),
        )
        settled = all(counts) and counted.get((start, end)) == counts
        counted[(start, end)] = counts
        return (start, end, *counts) if settled else None

    start, end, conflicts, created = wait_for(closed_window, timeout=150, interval=2)
    page = watched.page
    page.goto(f"/#/analytics?from={start}&to={end}")
    page.locator("#filter").fill("http.status = 409")
    page.locator("#filter-b").fill("http.status = 201")
    page.locator('#analytics-form button[type="submit"]').click()
    expect(page).to_have_url(re.compile(r"a=http.*b=http"))

    totals = page.locator("#totals")
    expect(totals.locator('[data-set="a"] .stat[data-stat="traces"] dd')).to_have_text(
        f"{conflicts:,}"
    )
    expect(totals.locator('[data-set="b"] .stat[data-stat="traces"] dd')).to_have_text(
        f"{created:,}"
    )
    expect(totals.locator('[data-set="a"] .stat[data-stat="errors"] dd')).to_have_text("100 %")

    status = page.locator('#comparison table[data-dimension="status"]')
    conflict_row = status.locator('tbody tr[data-value="409"]')
    expect(conflict_row.locator("td.share-a")).to_have_attribute("data-share", "100.000")
    expect(conflict_row.locator("td.share-b")).to_have_attribute("data-share", "0.000")
    expect(conflict_row.locator("td.diff")).to_have_attribute("data-diff", "100.000")
    expect(status.locator('tbody tr[data-value="201"] td.diff')).to_have_attribute(
        "data-diff", "-100.000"
    )
    services = page.locator('#comparison table[data-dimension="service"] tbody tr')
    expect(services.first).to_be_visible()
    expect(page.locator('#distribution .histogram[data-set="a"] canvas').first).to_be_visible()
    expect(page.locator("#timeseries canvas").first).to_be_visible()
    screenshot(page, "analytics")


def test_the_list_pages_and_the_map_refreshes_by_itself(watched: Watched, demo: Demo) -> None:
    wait_for(lambda: len(_summaries(demo.xray())) > 50 or None, timeout=60, interval=1)
    page = watched.page
    page.goto("/#/traces?range=15m")
    _loaded(page, "")
    first_page = _attributes(page, "#trace-list tbody tr", "data-id")
    assert len(first_page) == 25, "the demo has sent more than a page of traces"
    expect(page.locator(".pager")).to_contain_text("1\u201325 of")
    page.locator("#page-older").click()
    expect(page.locator(".pager")).to_contain_text("26\u201350 of")
    second_page = _attributes(page, "#trace-list tbody tr", "data-id")
    assert second_page and not set(first_page) & set(second_page)
    page.locator("#page-newer").click()
    assert _attributes(page, "#trace-list tbody tr", "data-id") == first_page

    page.goto("/#/map?range=15m")
    canvas = page.locator(".map-canvas[data-updated]")
    expect(canvas).to_have_count(1)
    drawn = canvas.get_attribute("data-updated")
    expect(canvas).not_to_have_attribute("data-updated", drawn or "")


def test_a_custom_time_range_goes_into_the_link(watched: Watched) -> None:
    page = watched.page
    page.goto("/#/traces?range=1h")
    page.locator("#time-range").select_option("custom")
    page.get_by_label("From").fill("2026-01-02T03:04")
    page.get_by_label("To").fill("2026-01-02T05:04")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"from=2026-01-0.*&to=2026-01-0"))
    expect(page.locator("#time-range")).to_have_value("custom")
    _loaded(page, "")
    expect(page.get_by_text("No traces in this time range")).to_be_visible()


def test_an_empty_server_and_a_stopped_one_say_so(browser: Browser, tmp_path: Path) -> None:
    server = start_server(tmp_path / "empty")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=server.url)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto("/#/map?range=5m")
        expect(page.locator(".map-canvas .state.empty")).to_contain_text("No traces in the last")
        page.goto("/#/traces?range=5m")
        expect(page.get_by_text("No traces in this time range")).to_be_visible()
        page.goto("/#/analytics?range=5m")
        expect(page.locator("#analytics-form")).to_be_visible()
        expect(page.locator("main .state.empty")).to_contain_text("No traces in this range")
        server.stop()
        page.evaluate("location.hash = '#/traces?range=15m'")
        expect(page.locator("#trace-list ~ div .state.error")).to_contain_text(
            "Traces could not be loaded: the server did not answer"
        )
        page.evaluate("location.hash = '#/map?range=15m'")
        expect(page.locator(".map-canvas .state.error")).to_contain_text(
            "The service map could not be loaded: the server did not answer"
        )
    finally:
        context.close()
        server.stop()
    assert not errors, errors


def test_a_group_narrows_the_map_to_its_traces(watched: Watched, demo: Demo) -> None:
    client = demo.xray()
    client.create_group(GroupName="create-order", FilterExpression=FUNCTION_FILTER)
    page = watched.page
    page.goto("/#/map?range=15m")
    expect(
        page.locator('#service-map g.node[data-name="orders-api-getOrder"]').first
    ).to_be_visible()
    page.locator("#group").select_option("create-order")
    expect(page).to_have_url(re.compile(r"group=create-order"))
    expect(page.locator('.map-canvas[data-updated][data-group="create-order"]')).to_have_count(1)
    names = {n for (n,) in _attributes(page, "#service-map g.node", "data-name")}
    assert DEMO_FUNCTION[0] in names
    assert "orders-api-getOrder" not in names and "orders-api-report" not in names
    expect(page.locator("#node-details")).to_contain_text("create-order")
    page.locator(
        '#service-map g.node[data-name="orders-receipts"][data-type="AWS::S3::Bucket"] circle.hub'
    ).click()
    page.locator("#view-traces").click()
    expect(page.locator("#filter")).to_have_value(
        f'({FUNCTION_FILTER}) AND service(id(name: "orders-receipts", type: "AWS::S3::Bucket"))'
    )


def test_the_list_sorts_by_response_time(watched: Watched) -> None:
    page = watched.page
    page.goto("/#/traces?range=15m")
    _loaded(page, "")
    page.locator("#sort-slowest").click()
    expect(page).to_have_url(re.compile(r"sort=slowest"))
    expect(page.locator("#trace-list[data-state=loaded][data-sort=slowest]")).to_have_count(1)
    expect(page.locator("#sort-slowest").locator("..")).to_have_attribute("aria-sort", "descending")
    seconds = [_seconds(text) for text in _cells(page, 5)]
    assert len(seconds) > 1 and seconds == sorted(seconds, reverse=True), seconds
    page.locator("#sort-newest").click()
    expect(page.locator("#trace-list[data-state=loaded][data-sort=newest]")).to_have_count(1)
    starts = [float(s) for (s,) in _attributes(page, "#trace-list tbody td.age", "data-start")]
    assert starts == sorted(starts, reverse=True)


def _seconds(text: str) -> float:
    """A duration as the console prints it ("850 µs", "12.3 ms", "1.20 s"), in seconds."""
    value, unit = text.split()
    return float(value) / {"µs": 1e6, "ms": 1e3, "s": 1}[unit]
