"""The web console against a server that requires credentials, in a real browser.

The page and its files load without credentials; the first API call is refused, the
console asks for an API key, a wrong one is refused again, the right one shows the
traces. The key lives in the tab's sessionStorage and is sent as a Bearer token: no
cookie is set (so no other site can make the browser use it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.support import ServerProcess, segment, start_server, wait_for

TOKEN = "console-" + "5f3a9c0e1b2d4f68" * 2


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("secured-console"), "--api-key", TOKEN, api_key=TOKEN
    )
    yield proc
    proc.stop()


def test_the_console_asks_for_an_api_key_and_then_works(
    browser: Browser, secured: ServerProcess, tmp_path: Path
) -> None:
    doc = segment(name="auth-check")
    secured.send_documents(doc)  # UDP on loopback: no credentials
    wait_for(lambda: secured.counter("stored_documents") >= 1, timeout=30)

    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=secured.url)
    problems: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on(
            "console",
            lambda m: (
                problems.append(m.text)
                if m.type == "error" and "status of 403" not in m.text
                else None
            ),
        )
        page.set_default_timeout(15_000)
        page.goto("/#/traces?range=15m")
        dialog = page.locator("dialog.auth")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text("requires an API key")

        dialog.locator("input[name=api-key]").fill(TOKEN + "-wrong")
        dialog.get_by_role("button", name="Use this key").click()
        expect(dialog).to_contain_text("was refused")

        dialog.locator("input[name=api-key]").fill(TOKEN)
        dialog.get_by_role("button", name="Use this key").click()
        expect(dialog).to_have_count(0)
        expect(page.locator(f'#trace-list tbody tr[data-id="{doc["trace_id"]}"]')).to_be_visible()

        page.goto("/#/map?range=15m")
        expect(
            page.locator("#service-map").get_by_role("button", name="auth-check (Service)")
        ).to_be_visible()
        assert page.locator("dialog.auth").count() == 0
        assert page.evaluate("sessionStorage.getItem('fluoroscope.apiKey')") == TOKEN
        assert context.cookies() == []
    finally:
        context.close()
    assert not problems, problems
