"""``fluoroscope demo`` settings: argument > environment > default, parsed strictly."""

from __future__ import annotations

import pytest

from fluoroscope.config import ConfigError, DemoConfig, resolve_demo_config
from fluoroscope.demo import missing_requirements


def test_defaults() -> None:
    assert resolve_demo_config(env={}) == DemoConfig(rate=5.0, duration=None, open_browser=True)


def test_environment_beats_default_and_argument_beats_environment() -> None:
    env = {
        "FLUOROSCOPE_DEMO_RATE": "20",
        "FLUOROSCOPE_DEMO_DURATION": "30",
        "FLUOROSCOPE_DEMO_OPEN": "no",
    }
    assert resolve_demo_config(env=env) == DemoConfig(20.0, 30.0, False)
    explicit = resolve_demo_config(rate=2, duration=0, open_browser=True, env=env)
    assert explicit == DemoConfig(2.0, 0.0, True)


@pytest.mark.parametrize(
    ("kwargs", "env", "message"),
    [
        ({"rate": 0.0}, {}, "--rate: expected requests per second above 0 and at most 500, got 0"),
        ({"rate": 501.0}, {}, "--rate"),
        (
            {},
            {"FLUOROSCOPE_DEMO_RATE": "fast"},
            "FLUOROSCOPE_DEMO_RATE: expected a number, got 'fast'",
        ),
        ({"duration": -1.0}, {}, "--duration: expected seconds (0 or more), got -1"),
        ({}, {"FLUOROSCOPE_DEMO_DURATION": "nan"}, "FLUOROSCOPE_DEMO_DURATION"),
        ({}, {"FLUOROSCOPE_DEMO_OPEN": "maybe"}, "FLUOROSCOPE_DEMO_OPEN"),
    ],
)
def test_bad_values_name_their_source(
    kwargs: dict[str, float], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_demo_config(env=env, **kwargs)  # type: ignore[arg-type]


def test_the_demo_extra_is_installed_in_development() -> None:
    assert missing_requirements() == []
