"""FLUOROSCOPE_INSIGHTS_INTERVAL: seconds between Insights passes, checked strictly."""

from __future__ import annotations

import pytest

from fluoroscope.config import (
    DEFAULT_INSIGHTS_INTERVAL,
    ENV_INSIGHTS_INTERVAL,
    ConfigError,
    resolve_insights_interval,
)


def test_default_and_value() -> None:
    assert resolve_insights_interval({}) == DEFAULT_INSIGHTS_INTERVAL == 60
    assert resolve_insights_interval({ENV_INSIGHTS_INTERVAL: "5"}) == 5


@pytest.mark.parametrize("raw", ["0", "3601", "often", "-1"])
def test_bad_values_are_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match=ENV_INSIGHTS_INTERVAL):
        resolve_insights_interval({ENV_INSIGHTS_INTERVAL: raw})
