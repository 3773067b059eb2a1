"""What-if: a proposed rule set replayed over stored traffic, in the engine."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from fluoroscope.model.ids import new_entity_id, new_trace_id
from tests.server.test_sampling_rules import rule
from tests.support import ServerProcess, wait_for


def _post(server: ServerProcess, path: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{server.url}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _trace(start: float, name: str, url: str, method: str = "GET") -> str:
    return json.dumps(
        {"name": name, "id": new_entity_id(), "trace_id": new_trace_id(start),
         "start_time": start, "end_time": start + 0.01,
         "http": {"request": {"url": url, "method": method}, "response": {"status": 200}}}
    )  # fmt: skip


def test_what_if_counts_matched_and_kept_per_rule(server: ServerProcess) -> None:
    client = server.xray()
    base = float(int(time.time()) - 300)
    shop = f"shop-{uuid.uuid4().hex[:6]}"
    docs = [_trace(base + s + i / 100, shop, "http://shop.local/api/cart?x=1")
            for s in range(3) for i in range(10)]  # fmt: skip
    docs += [_trace(base + 1.5, shop, "http://shop.local/health") for _ in range(4)]
    docs += [_trace(base + 2.5, "other", "http://elsewhere/api/x", "POST") for _ in range(5)]
    client.put_trace_segments(TraceSegmentDocuments=docs)
    window = {"StartTime": base, "EndTime": base + 3, "Period": 1}

    def stored() -> Any:
        answer = _post(server, "/api/sampling/whatif", {**window, "Rules": []})
        return answer if answer["traces"] == len(docs) else None

    wait_for(stored, timeout=30)
    proposed = [
        rule(
            "cart",
            ServiceName=shop,
            URLPath="/API/*",
            HTTPMethod="GET",
            Host="shop.*",
            FixedRate=0.0,
            ReservoirSize=2,
            Priority=5,
        ),
        {"RuleName": "Default", "FixedRate": 0.0, "ReservoirSize": 0},
    ]
    answer = _post(server, "/api/sampling/whatif", {**window, "Rules": proposed})
    by_rule = {item["rule"]: item for item in answer["proposed"]}
    assert by_rule["cart"]["matched"] == 30
    assert by_rule["cart"]["kept"] == 6  # 2 a second over 3 seconds
    assert [row[1:] for row in by_rule["cart"]["series"]] == [[10, 2], [10, 2], [10, 2]]
    assert by_rule["Default"]["matched"] == 9 and by_rule["Default"]["kept"] == 0
    current = {item["rule"]: item for item in answer["current"]}
    assert current["Default"]["matched"] == 39
    # Default: 1 a second, then 5 % of the rest: 10, 14 and 15 traces in the three seconds
    assert current["Default"]["kept"] == pytest.approx(3 + 0.05 * (9 + 13 + 14))
    assert answer["stored"] == [[base, 10], [base + 1, 14], [base + 2, 15]]


def test_what_if_refuses_bad_rules_by_index(server: ServerProcess) -> None:
    body = {"StartTime": 0, "EndTime": 60, "Rules": [rule("ok"), rule("bad", FixedRate=1.5)]}
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(server, "/api/sampling/whatif", body)
    answer = json.loads(err.value.read())
    assert answer["__type"] == "InvalidRequestException"
    assert answer["message"].startswith("Rules[1]: FixedRate")
