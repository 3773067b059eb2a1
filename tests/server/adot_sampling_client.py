"""AWS's OpenTelemetry remote sampler (aws-opentelemetry-distro) deciding with a server's
centralized rules. Run by ``test_adot_sampling.py`` with the Python of the distro's own
virtual environment (never imported by the test suite itself).

``python adot_sampling_client.py URL SERVICE``: waits (up to 30 s) until decisions for
``/keep/x`` are all sampled, then prints one JSON line {keep: [...], drop: [...]}
(decisions for ``/keep/x`` and ``/drop/x``), then keeps deciding for ``/keep/x`` for up
to 30 s more, until the server has its statistics (its target poller runs every 10 s).
"""

from __future__ import annotations

import importlib
import json
import random
import sys
import time
import urllib.request

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import SpanKind


def main() -> None:
    url, service = sys.argv[1], sys.argv[2]
    remote = importlib.import_module("amazon.opentelemetry.distro.sampler.aws_xray_remote_sampler")
    sampler = remote.AwsXRayRemoteSampler(Resource.create({"service.name": service}), endpoint=url)

    def decide(path: str) -> bool:
        attributes = {"http.request.method": "GET", "url.path": path, "server.address": "shop"}
        trace_id = random.getrandbits(128)  # the ratio samplers decide by the trace id
        result = sampler.should_sample(None, trace_id, "request", SpanKind.SERVER, attributes)
        return bool(result.decision == Decision.RECORD_AND_SAMPLE)

    deadline = time.monotonic() + 30
    while not all(decide("/keep/x") for _ in range(20)):
        if time.monotonic() > deadline:
            raise SystemExit("the sampler never used the server's rules")
        time.sleep(0.1)
    keep = [decide("/keep/x") for _ in range(50)]
    drop = [decide("/drop/x") for _ in range(50)]
    print(json.dumps({"keep": keep, "drop": drop}), flush=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        decide("/keep/x")
        with urllib.request.urlopen(f"{url}/api/status", timeout=5) as response:
            status = json.loads(response.read())
        if status["sampling"]["reports_by_rule"].get("adot-keep"):
            print(json.dumps({"reported": True}), flush=True)
            return
        time.sleep(0.5)
    raise SystemExit("the sampler never reported its statistics")


if __name__ == "__main__":
    main()
