"""Generated traffic with a known incident, for the Insights tests.

``api`` calls ``billing``, which calls ``ledger``. Each minute holds ``per_minute``
requests; during the incident ``faulty`` of them fail in ``ledger`` and the fault
propagates up to ``billing`` and ``api`` (as an uncaught error does), so every service
on the path shows more faults but only ``ledger``'s are not explained by a callee.
Outside the incident one request in ``quiet_every`` minutes faults in ``api`` alone.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from fluoroscope.model.ids import new_entity_id, new_trace_id


def chain_trace(start: float, *, fault_in: str | None) -> list[dict[str, Any]]:
    """One request through api -> billing -> ledger; ``fault_in``: where it fails."""
    trace_id = new_trace_id(start)
    names = ["api", "billing", "ledger"]
    failing = names.index(fault_in) if fault_in else len(names)
    docs: list[dict[str, Any]] = []
    parent: str | None = None
    for depth, name in enumerate(names):
        fault = depth <= failing and fault_in is not None
        seg: dict[str, Any] = {
            "id": new_entity_id(), "trace_id": trace_id, "name": name,
            "start_time": start + depth * 0.01, "end_time": start + 0.5 - depth * 0.01,
            "fault": fault,
        }  # fmt: skip
        if parent is not None:
            seg["parent_id"] = parent
        if depth + 1 < len(names):
            call = new_entity_id()
            seg["subsegments"] = [
                {"id": call, "name": names[depth + 1], "namespace": "remote",
                 "start_time": start + depth * 0.01 + 0.005,
                 "end_time": start + 0.5 - depth * 0.01 - 0.005, "fault": fault and depth < failing,
                 "http": {"request": {"url": f"http://{names[depth + 1]}/x"}}}
            ]  # fmt: skip
            parent = call
        docs.append(seg)
    return docs


def traffic(
    first_minute: int,
    minutes: int,
    incident: Container[int],
    *,
    per_minute: int = 6,
    faulty: int = 4,
    quiet_every: int = 10,
) -> list[dict[str, Any]]:
    """Documents for ``minutes`` minutes from ``first_minute`` (epoch seconds, a
    multiple of 60); minutes whose index lies in ``incident`` have ``faulty`` failing
    requests in ledger."""
    docs: list[dict[str, Any]] = []
    for i in range(minutes):
        t = first_minute + i * 60
        for k in range(per_minute):
            if i in incident and k < faulty:
                fault_in: str | None = "ledger"
            elif i not in incident and k == 0 and i % quiet_every == 0:
                fault_in = "api"
            else:
                fault_in = None
            docs += chain_trace(t + 1 + k * 7, fault_in=fault_in)
    return docs
