"""The live service map in Chromium (``fluoroscope demo``): stable, zoomable, readable.

While the map refreshes every second, traffic that adds an edge and a node must not move
the nodes already drawn: the new node takes a free place next to its caller. The map
zooms with a pinch (two touch points, sent through the DevTools protocol as a phone's
screen sends them) about the point between the fingers. On a phone (390 x 844 CSS px,
device scale 3, touch, mobile viewport) every node's labels are drawn at 11 CSS px or
more and none overlaps another; a long name is shortened with the whole name in the
node's tooltip, as text.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from fluoroscope.model.ids import new_entity_id
from tests.console.conftest import Demo, Watched, map_scale, screenshot
from tests.support import DEMO_FUNCTION, segment, wait_for

NODE = "#service-map g.node"

# every node's hub centre on the screen, by "name|type"
CENTRES = """() => Object.fromEntries([...document.querySelectorAll('#service-map g.node')].map(
  (g) => {
    const r = g.querySelector('circle.hub').getBoundingClientRect();
    return [`${g.dataset.name}|${g.dataset.type}`, [r.x + r.width / 2, r.y + r.height / 2]];
  }))"""


def _centres(page: Page) -> dict[str, tuple[float, float]]:
    return {k: (float(v[0]), float(v[1])) for k, v in page.evaluate(CENTRES).items()}


def _call_to(demo: Demo, host: str) -> None:
    """A trace in which the demo's function calls ``host`` (a new edge and a new node)."""
    now = time.time()
    call = {
        "id": new_entity_id(),
        "name": host,
        "namespace": "remote",
        "start_time": now + 0.01,
        "end_time": now + 0.04,
        "http": {
            "request": {"method": "GET", "url": f"http://{host}/entries"},
            "response": {"status": 200},
        },
    }
    demo.send_documents(
        segment(
            name=DEMO_FUNCTION[0],
            origin=DEMO_FUNCTION[1],
            parent_id=new_entity_id(),
            start_time=now,
            end_time=now + 0.05,
            subsegments=[call],
        )
    )


def test_a_new_edge_moves_no_node_of_the_live_map(watched: Watched, demo: Demo) -> None:
    page = watched.page
    page.goto("/#/map?range=15m")
    function = page.locator(
        f'{NODE}[data-name="{DEMO_FUNCTION[0]}"][data-type="{DEMO_FUNCTION[1]}"]'
    )
    expect(function).to_be_visible()
    canvas = page.locator(".map-canvas")
    before = _centres(page)
    assert len(before) >= 6, before

    host = f"ledger-{secrets.token_hex(3)}.internal"
    new = page.locator(f'{NODE}[data-name="{host}"]')

    def appeared() -> bool:
        if new.count():
            return True
        _call_to(demo, host)  # a datagram a second until the map shows it
        return False

    wait_for(appeared, timeout=60, interval=1)
    expect(new).to_be_visible()
    expect(page.locator(f'#service-map g.edge[data-target="{host}"]')).to_have_count(1)

    after = _centres(page)
    for key, (x, y) in before.items():
        assert key in after, f"{key} left the map"
        assert abs(after[key][0] - x) <= 1.5 and abs(after[key][1] - y) <= 1.5, (
            key,
            (x, y),
            after[key],
        )

    # the new node is on the map, overlapping no other
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('#service-map g.node circle.hub')].map((c) => {
          const r = c.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; })"""
    )
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a[0] + a[2] <= b[0]
                or b[0] + b[2] <= a[0]
                or a[1] + a[3] <= b[1]
                or b[1] + b[3] <= a[1]
            )
            assert apart, (a, b)
    screenshot(page, "map-new-edge")

    # later refreshes keep every place too, the new node's as well
    placed = _centres(page)
    for _ in range(3):
        stamp = canvas.get_attribute("data-updated")
        expect(canvas).not_to_have_attribute("data-updated", stamp or "")
    again = _centres(page)
    for key, (x, y) in placed.items():
        assert abs(again[key][0] - x) <= 1.5 and abs(again[key][1] - y) <= 1.5, key


@pytest.fixture
def phone(browser: Browser, demo: Demo) -> Iterator[Watched]:
    """A page in a phone's shape: 390 x 844 CSS px at device scale 3, touch, mobile viewport."""
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=3,
        is_mobile=True,
        has_touch=True,
        base_url=demo.url,
    )
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: (
            problems.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.set_default_timeout(15_000)
    yield Watched(page, problems, [])
    context.close()
    assert not problems, problems


def _pinch(page: Page, centre: tuple[float, float], start: float, end: float) -> None:
    """Two fingers about ``centre`` (page CSS px), ``start`` px apart, moved to ``end`` apart."""
    cdp = page.context.new_cdp_session(page)
    x, y = centre

    def fingers(gap: float) -> list[dict[str, Any]]:
        return [
            {"x": x - gap / 2, "y": y, "id": 0, "radiusX": 4, "radiusY": 4, "force": 1},
            {"x": x + gap / 2, "y": y, "id": 1, "radiusX": 4, "radiusY": 4, "force": 1},
        ]

    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": fingers(start)})
    for step in range(1, 11):
        gap = start + (end - start) * step / 10
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": fingers(gap)})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


# each node label's size on the screen, its box and the node it belongs to
LABELS = """() => {
  const k = Number(/scale\\(([0-9.]+)\\)/.exec(
    document.querySelector('#service-map g.viewport').getAttribute('transform'))[1]);
  return [...document.querySelectorAll('#service-map g.node text.name, #service-map g.node text.sub')]
    .map((t) => {
      const r = t.getBoundingClientRect();
      return { node: t.closest('g.node').dataset.key, text: t.textContent,
               px: parseFloat(getComputedStyle(t).fontSize) * k, box: [r.x, r.y, r.width, r.height] };
    });
}"""


def _apart(a: list[float], b: list[float]) -> bool:
    return a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1] or b[1] + b[3] <= a[1]


def test_on_a_phone_the_map_reads_and_pinches(phone: Watched, demo: Demo) -> None:
    page = phone.page
    long_name = "inventory-reservations-" + secrets.token_hex(8)  # 39 characters
    # a service with a long name, called by the demo's function
    page.goto("/#/map?range=15m")
    node = page.locator(f'{NODE}[data-name="{long_name}"]')

    def appeared() -> bool:
        if node.count():
            return True
        _call_to(demo, long_name)
        return False

    wait_for(appeared, timeout=60, interval=1)
    page.reload()  # the first view of this map, long name included
    expect(node).to_have_count(1)
    expect(page.locator(f'{NODE}[data-type="{DEMO_FUNCTION[1]}"]').first).to_be_attached()
    screenshot(page, "map-phone")

    labels = page.evaluate(LABELS)
    assert len(labels) >= 3 * 10
    small = [(x["text"], round(x["px"], 1)) for x in labels if x["px"] < 11]
    assert not small, small
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            if a["node"] != b["node"] and a["text"] and b["text"]:
                assert _apart(a["box"], b["box"]), (a, b)
    name = node.locator("text.name")
    shown = name.text_content() or ""
    assert shown.endswith("…") and long_name.startswith(shown[:-1]), shown
    expect(node.locator("title")).to_have_text(re.compile("^" + re.escape(long_name) + "\n"))
    assert node.locator("title").evaluate("t => t.children.length") == 0

    # a pinch zooms about the point between the fingers
    box = page.locator("#service-map").bounding_box()
    assert box
    centre = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    anchor = f"{DEMO_FUNCTION[0]}|{DEMO_FUNCTION[1]}"
    before, k0 = _centres(page)[anchor], map_scale(page)
    _pinch(page, centre, 60, 150)
    k1 = map_scale(page)
    assert abs(k1 / k0 - 2.5) < 0.1, (k0, k1)
    after = _centres(page)[anchor]
    for axis in (0, 1):  # the node moved away from the fingers' centre 2.5 times as far
        expected = centre[axis] + (before[axis] - centre[axis]) * k1 / k0
        assert abs(after[axis] - expected) <= 2, (axis, before, after, expected)
    _pinch(page, centre, 200, 80)
    assert abs(map_scale(page) / k1 - 0.4) < 0.05
    expect(page.locator("#node-details h2")).to_have_text("Overview")  # no tap on a node


def test_on_a_phone_the_header_stays_short_and_shows_the_current_view(phone: Watched) -> None:
    page = phone.page
    page.goto("/#/insights")
    current = page.locator('nav.views a[aria-current="page"]')
    expect(current).to_have_text("Insights")
    header = page.locator("header.top").bounding_box()
    assert header is not None and header["height"] <= 110, header  # not a third of the screen
    nav = page.locator("nav.views").bounding_box()
    shown = current.bounding_box()
    assert nav is not None and shown is not None
    # the last view, scrolled into the one-row strip of views
    assert nav["x"] <= shown["x"] and shown["x"] + shown["width"] <= nav["x"] + nav["width"] + 1
