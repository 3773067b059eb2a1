"""Two traces aligned: matched by service/name/path with repeated calls numbered, entries
present in one only, the critical-path difference, unrelated shapes, a large trace."""

from __future__ import annotations

from fluoroscope.model.critpath import Span
from fluoroscope.model.tracediff import compare_traces


def _request(db_calls: list[tuple[float, float]], extra: str | None = None) -> list[Span]:
    end = max([e for _, e in db_calls] + [1.0]) + 0.1
    spans = [Span("root", "", 0.0, end, "api", True)]
    for i, (s, e) in enumerate(db_calls):
        spans.append(Span(f"db{i}", "root", s, e, "DynamoDB", operation="GetItem"))
    if extra:
        spans.append(Span("x", "root", 0.01, 0.02, extra))
    return spans


def test_repeated_calls_match_in_order_and_the_slow_one_shows_its_difference() -> None:
    typical = _request([(0.1, 0.2), (0.3, 0.4)])
    slow = _request([(0.1, 0.2), (0.3, 2.3)], extra="retry")
    c = compare_traces(typical, slow)
    rows = {r.path[-1]: r for r in c.matched}
    assert set(rows) == {"api", "api > DynamoDB (GetItem)", "api > DynamoDB (GetItem) #2"}
    assert round(rows["api > DynamoDB (GetItem) #2"].delta or 0, 6) == 1.9
    assert round(rows["api > DynamoDB (GetItem)"].delta or 0, 6) == 0.0
    assert c.matched[0].path[-1] in ("api", "api > DynamoDB (GetItem) #2")  # largest first
    assert [r.path[-1] for r in c.only_b] == ["api > retry"] and not c.only_a
    top = c.critical[0]
    assert top.key == ("api", "DynamoDB", "GetItem") and round(top.delta, 6) == 1.9
    assert not c.unrelated


def test_unrelated_shapes_are_said_so() -> None:
    a = [Span("r", "", 0, 1, "checkout", True), Span("q", "r", 0.1, 0.5, "SQL")]
    b = [Span("s", "", 0, 2, "login", True), Span("t", "s", 0.1, 0.5, "Cognito")]
    c = compare_traces(a, b)
    assert c.unrelated and c.similarity == 0.0
    assert c.counts == {"matched": 0, "only_a": 2, "only_b": 2}


def test_ten_thousand_entries_give_a_bounded_answer() -> None:
    calls = [(i * 0.001, i * 0.001 + 0.0005) for i in range(10_000)]
    a, b = _request(calls), _request(calls[:9_000])
    c = compare_traces(a, b, limit=100)
    assert len(c.matched) == 100 and len(c.only_a) == 100
    assert c.counts == {"matched": 9_001, "only_a": 1_000, "only_b": 0}
