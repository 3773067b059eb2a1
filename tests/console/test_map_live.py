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

from playwright.sync_api import Page, expect

from fluoroscope.model.ids import new_entity_id
from tests.console.conftest import Demo, Watched, screenshot
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


def _scale(page: Page) -> float:
    transform = page.locator("#service-map g.viewport").get_attribute("transform") or ""
    found = re.search(r"scale\(([0-9.]+)\)", transform)
    assert found, transform
    return float(found[1])


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
