"""The official aws-xray-sdk-core for Node (from npm) picks up rules created through the
API and samples accordingly. The SDK is installed with npm into a cache directory
(``~/.cache/fluoroscope/node-xray``) on first use."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.node import npm_modules
from tests.server.test_sampling_rules import restored_rules, rule
from tests.support import ServerProcess

SCRIPT = Path(__file__).resolve().parent / "node" / "sampling.js"


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return npm_modules("node-xray", ["aws-xray-sdk-core@3"], "aws-xray-sdk-core")


@pytest.fixture
def rules(server: ServerProcess) -> Iterator[Any]:
    """boto3's xray client; the sampling rules are put back as they were after the test."""
    yield from restored_rules(server)


def test_node_sdk_samples_by_our_rules(
    node_modules: Path, server: ServerProcess, rules: Any
) -> None:
    rules.create_sampling_rule(
        SamplingRule=rule("node-keep", ServiceName="node-shop", HTTPMethod="GET",
                          URLPath="/keep/*", FixedRate=1.0, ReservoirSize=0, Priority=1)
    )  # fmt: skip
    # nothing else is sampled: not even the local fallback's first request each second
    rules.update_sampling_rule(
        SamplingRuleUpdate={"RuleName": "Default", "FixedRate": 0.0, "ReservoirSize": 0}
    )
    env = dict(os.environ, NODE_PATH=str(node_modules),
               AWS_XRAY_DAEMON_ADDRESS=f"127.0.0.1:{server.port}")  # fmt: skip
    done = subprocess.run(
        ["node", str(SCRIPT), "node-shop"], capture_output=True, text=True, timeout=120,
        env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(answer["rules"]) == {"node-keep", "Default"}
    assert all(answer["keep"]), answer["keep"]
    assert not any(answer["drop"]), answer["drop"]
