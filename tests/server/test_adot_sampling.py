"""AWS's OpenTelemetry remote sampler (``aws-opentelemetry-distro``, in a virtual
environment of its own under the cache directory, made on first use: its OpenTelemetry
pins must not replace ours) picks up rules created through the API, samples by them,
and reports its statistics (with its ``SampleCount`` spelling) to GetSamplingTargets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server.test_sampling_rules import restored_rules, rule
from tests.support import ServerProcess

CLIENT = Path(__file__).resolve().parent / "adot_sampling_client.py"


@pytest.fixture(scope="module")
def adot_python() -> str:
    cache = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
    venv = Path(os.environ.get("FLUOROSCOPE_ADOT_DIR", f"{cache}/fluoroscope/adot"))
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=300
        )
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "aws-opentelemetry-distro"],
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        (venv / ".complete").touch()
    return str(python)


@pytest.fixture
def rules(server: ServerProcess) -> Iterator[Any]:
    """boto3's xray client; the sampling rules are put back as they were after the test."""
    yield from restored_rules(server)


def test_adot_remote_sampler_follows_our_rules(
    adot_python: str, server: ServerProcess, rules: Any
) -> None:
    rules.create_sampling_rule(
        SamplingRule=rule("adot-keep", ServiceName="adot-shop", HTTPMethod="GET",
                          URLPath="/keep/*", FixedRate=1.0, ReservoirSize=0, Priority=1)
    )  # fmt: skip
    rules.update_sampling_rule(
        SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 0.0, "ReservoirSize": 0}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "OTEL_"))}
    done = subprocess.run(
        [adot_python, str(CLIENT), server.url, "adot-shop"],
        capture_output=True, text=True, timeout=150, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert all(lines[0]["keep"]) and not any(lines[0]["drop"]), lines[0]
    assert lines[1] == {"reported": True}
    summaries = rules.get_sampling_statistic_summaries()["SamplingStatisticSummaries"]
    mine = [s for s in summaries if s["RuleName"] == "adot-keep"]
    assert sum(s["RequestCount"] for s in mine) > 0
    assert sum(s["SampledCount"] for s in mine) > 0  # sent as SampleCount
