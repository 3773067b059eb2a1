"""One aws-xray-sdk process deciding sampling with our centralized rules (run by tests).

``python -m tests.server.sdk_sampling_client PORT SERVICE PATH RATE SECONDS``: starts the
SDK's DefaultSampler against the server on 127.0.0.1:PORT (its target poller every
2 s instead of 10, so a bounded run sees several rounds), waits until it has a rule
other than Default, prints ``ready`` and waits for a line on stdin (so that several
clients, started one after the other on a loaded machine, begin together), then asks
for a decision RATE times a second for SECONDS seconds and prints one JSON line per
wall-clock second: ``[second, decisions, sampled, quota]`` (quota null until the server
assigned one).
"""

from __future__ import annotations

import json
import sys
import time

from aws_xray_sdk.core.context import Context
from aws_xray_sdk.core.daemon_config import DaemonConfig
from aws_xray_sdk.core.sampling.sampler import DefaultSampler


def main() -> None:
    port, service, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    rate, seconds = float(sys.argv[4]), float(sys.argv[5])
    sampler = DefaultSampler()
    sampler.load_settings(DaemonConfig(f"127.0.0.1:{port}"), Context())
    sampler._target_poller._interval = 2
    sampler.start()
    deadline = time.monotonic() + 30
    while not any(r.name != "Default" for r in sampler._cache.rules):
        if time.monotonic() > deadline:
            raise SystemExit("the sampler never received our rules")
        time.sleep(0.05)
    print("ready", flush=True)
    sys.stdin.readline()
    request = {"service": service, "method": "GET", "path": path, "host": "shop.local"}
    end = time.time() + seconds
    counts: dict[int, list[int]] = {}
    step = 1.0 / rate
    next_at = time.time()
    while (now := time.time()) < end:
        decision = sampler.should_trace(dict(request))
        second = int(now)
        row = counts.setdefault(second, [0, 0])
        row[0] += 1
        row[1] += 1 if decision else 0
        rule = next(r for r in sampler._cache.rules if r.name != "Default")
        quota = rule.reservoir.quota if rule.reservoir.TTL and now <= rule.reservoir.TTL else None
        if second not in QUOTAS:
            QUOTAS[second] = quota
        next_at += step
        time.sleep(max(0.0, next_at - time.time()))
    for second, (decisions, sampled) in sorted(counts.items()):
        print(json.dumps([second, decisions, sampled, QUOTAS.get(second)]), flush=True)


QUOTAS: dict[int, int | None] = {}

if __name__ == "__main__":
    main()
