"""The demo's closing summary and progress counts: each noun in the right number."""

from __future__ import annotations

from fluoroscope.demo.traffic import TrafficStats, plural


def test_plural() -> None:
    assert [plural(n, "request") for n in (0, 1, 2)] == ["0 requests", "1 request", "2 requests"]


def test_one_of_each_is_singular() -> None:
    stats = TrafficStats(sent=1, ok=1, client_errors=1, throttled=1, server_errors=1, failed=1)
    assert stats.summary() == (
        "Sent 1 request: 1 ok, 1 client error, 1 throttled, 1 server error, 1 unanswered."
    )
    assert stats.progress().startswith("1 request  ")


def test_several_are_plural() -> None:
    stats = TrafficStats(sent=12, ok=7, client_errors=2, throttled=0, server_errors=3, failed=0)
    assert stats.summary() == (
        "Sent 12 requests: 7 ok, 2 client errors, 0 throttled, 3 server errors, 0 unanswered."
    )
    assert stats.progress().startswith("12 requests  [green]7 ok[/]")
