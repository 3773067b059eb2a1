"""The official aws-xray-sdk (Python) picks up rules created through the API, samples
accordingly, and several SDK processes at once stay within a rule's reservoir."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from aws_xray_sdk.core.context import Context
from aws_xray_sdk.core.daemon_config import DaemonConfig
from aws_xray_sdk.core.sampling.sampler import DefaultSampler

from tests.server.test_sampling_rules import rule
from tests.support import ServerProcess, wait_for


@pytest.fixture
def client(server: ServerProcess) -> Iterator[Any]:
    xray = server.xray()
    yield xray
    for record in xray.get_sampling_rules()["SamplingRuleRecords"]:
        if record["SamplingRule"]["RuleName"] != "Default":
            xray.delete_sampling_rule(RuleName=record["SamplingRule"]["RuleName"])


def test_sdk_picks_up_rules_and_their_changes(server: ServerProcess, client: Any) -> None:
    client.create_sampling_rule(
        SamplingRule=rule(
            "keep-all",
            ServiceName="shop",
            HTTPMethod="GET",
            URLPath="/keep/*",
            FixedRate=1.0,
            ReservoirSize=0,
            Priority=10,
        )
    )
    client.create_sampling_rule(
        SamplingRule=rule(
            "drop-all",
            ServiceName="shop",
            HTTPMethod="*",
            URLPath="/drop/*",
            FixedRate=0.0,
            ReservoirSize=0,
            Priority=20,
        )
    )
    sampler = DefaultSampler()
    sampler.load_settings(DaemonConfig(f"127.0.0.1:{server.port}"), Context())
    sampler._target_poller._interval = 1  # report every second, not every ten
    sampler.start()
    names = wait_for(lambda: {r.name for r in sampler._cache.rules} or None, timeout=30)
    assert names == {"keep-all", "drop-all", "Default"}

    def decide(path: str) -> Any:
        return sampler.should_trace({"service": "shop", "method": "GET", "path": path})

    assert [decide("/keep/a") for _ in range(50)] == ["keep-all"] * 50
    assert not any(decide("/drop/a") for _ in range(50))

    # A change through the API reaches the SDK through LastRuleModification.
    client.update_sampling_rule(SamplingRuleUpdate={"RuleName": "keep-all", "FixedRate": 0.0})
    wait_for(lambda: next(r for r in sampler._cache.rules if r.name == "keep-all").rate == 0.0,
             timeout=30)  # fmt: skip
    assert not any(decide("/keep/a") for _ in range(50))
    wait_for(lambda: _requests(client, "keep-all") >= 50, timeout=30)


def _requests(client: Any, name: str) -> int:
    summaries = client.get_sampling_statistic_summaries()["SamplingStatisticSummaries"]
    return sum(s["RequestCount"] for s in summaries if s["RuleName"] == name)


def test_several_sdk_processes_share_the_reservoir(server: ServerProcess, client: Any) -> None:
    reservoir = 6
    client.create_sampling_rule(
        SamplingRule=rule(
            "shared",
            ServiceName="shop",
            HTTPMethod="GET",
            URLPath="/buy",
            FixedRate=0.0,
            ReservoirSize=reservoir,
            Priority=1,
        )
    )
    rates = (40, 80, 120)  # decisions a second: shares of 1, 2 and 3
    seconds = 16
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.server.sdk_sampling_client",
                str(server.port),
                "shop",
                "/buy",
                str(rate),
                str(seconds),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rate in rates
    ]
    # they begin together once each has our rules (started one after the other on a
    # loaded machine, they were ready seconds apart, and few seconds ran all three)
    for proc in procs:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline() == "ready\n", proc.stderr.read()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append([json.loads(line) for line in out.splitlines()])
    # The seconds after every client held a quota for a while (two report rounds).
    settled = max(next(row[0] for row in rows if row[3] is not None) for rows in outputs) + 5
    totals: Counter[int] = Counter()
    full: Counter[int] = Counter()
    borrowing: Counter[int] = Counter()
    for rows in outputs:
        for second, _decisions, sampled, quota in rows[1:-1]:  # whole seconds only
            if second >= settled:
                totals[second] += sampled
                full[second] += 1
                # without a valid quota (its report late) an SDK borrows 1 a second
                # (reference section 7.4), and may take a quota heard later that second
                borrowing[second] += quota is None
    measured = [s for s in totals if full[s] == len(procs)]
    assert len(measured) >= 3, (outputs, settled)
    over = {s: totals[s] for s in measured if totals[s] > reservoir + borrowing[s]}
    assert not over, f"sampled more than the reservoir of {reservoir}/s: {over}, {outputs}"
    assert sum(totals[s] for s in measured) >= (reservoir - 1) * len(measured)  # and used
    status = server.status()["sampling"]
    assert status["active_clients_by_rule"]["shared"] == len(procs)
