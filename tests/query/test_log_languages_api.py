"""The public interfaces the Logs API calls stay small and exactly what their module
docstrings promise (Contract 2 of issue 17)."""

from __future__ import annotations

import inspect

import fluoroscope.query.insights as insights
import fluoroscope.query.patterns as patterns
from fluoroscope.model.errors import InvalidRequest


def test_insights_public_names() -> None:
    assert sorted(insights.__all__) == sorted([
        "DEFAULT_ACCOUNT", "DEFAULT_LIMIT", "MAX_LENGTH", "MAX_LIMIT", "SYSTEM_FIELDS",
        "Compiled", "InsightsSyntaxError", "Query", "compile", "parse", "to_text",
    ])  # fmt: skip
    keywords = set(inspect.signature(insights.compile).parameters)
    assert keywords == {"query", "database", "groups", "start_ms", "end_ms", "limit", "account"}
    assert issubclass(insights.InsightsSyntaxError, InvalidRequest)
    fields = set(insights.Compiled.__dataclass_fields__)
    assert fields == {"sql", "params", "fields", "is_stats", "limit", "settings"}


def test_patterns_public_names() -> None:
    assert sorted(patterns.__all__) == sorted([
        "MAX_LENGTH", "Pattern", "PatternSyntaxError", "compile_pattern", "parse_pattern",
        "to_pattern",
    ])  # fmt: skip
    assert issubclass(patterns.PatternSyntaxError, InvalidRequest)
    assert patterns.MAX_LENGTH == 1024
