"""The console's vocabulary endpoint: service names and annotation keys (with their values
where few) of the traces stored in a window, from a real server and store."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest

from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.server.console_api import MAX_VALUES
from tests.support import ServerProcess, wait_for

PATH = "/api/console/vocabulary"


def _post(server: ServerProcess, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        f"{server.url}{PATH}", data=json.dumps(body).encode(), method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def _doc(start: float, name: str, annotations: dict[str, Any]) -> str:
    return json.dumps(
        {"name": name, "id": new_entity_id(), "trace_id": new_trace_id(start),
         "start_time": start, "end_time": start + 0.01, "annotations": annotations}
    )  # fmt: skip


def test_vocabulary_names_services_and_annotations(server: ServerProcess) -> None:
    base = float(int(time.time()) - 600)
    tag = uuid.uuid4().hex[:6]
    shop, pay = f"shop-{tag}", f"pay-{tag}"
    docs = [_doc(base + i / 10, shop, {"tier": ["gold", "free"][i % 2], "n": i, "ok": True})
            for i in range(MAX_VALUES + 5)]  # fmt: skip
    docs += [_doc(base + 1, pay, {"tier": "gold"})]
    server.xray().put_trace_segments(TraceSegmentDocuments=docs)
    window = {"StartTime": base, "EndTime": base + 5}

    def answered() -> Any:
        got = _post(server, window)
        return got if {shop, pay} <= set(got["Services"]) else None

    got = wait_for(answered, timeout=30)
    assert got["Services"].index(shop) < got["Services"].index(pay)  # most traces first
    keys = {a["Key"]: a for a in got["Annotations"]}
    assert keys["tier"] == {"Key": "tier", "Values": ["free", "gold"], "More": False}
    assert keys["ok"]["Values"] == ["true"]
    assert keys["n"]["More"] is True and keys["n"]["Values"] == []  # too many to list

    empty = _post(server, {"StartTime": base - 3000, "EndTime": base - 2000})
    assert shop not in empty["Services"]
    for bad in ({"StartTime": base}, {"StartTime": base, "EndTime": base - 1}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            _post(server, bad)
        assert refused.value.code == 400
        assert json.loads(refused.value.read())["__type"] == "InvalidRequestException"
