"""``fluoroscope trace`` marks the critical path and shows each entry's self time."""

from __future__ import annotations

import io

from rich.console import Console

from fluoroscope.terminal import timeline_table


def test_critical_entries_are_marked_with_their_self_time() -> None:
    docs = [
        {"name": "api", "id": "a" * 16, "start_time": 100.0, "end_time": 101.0,
         "subsegments": [
             {"name": "slowcall", "id": "b" * 16, "start_time": 100.1, "end_time": 100.9},
             {"name": "sidecall", "id": "c" * 16, "start_time": 100.2, "end_time": 100.4},
         ]},
    ]  # fmt: skip
    console = Console(width=160, file=io.StringIO(), record=True, color_system=None)
    console.print(timeline_table({"Duration": 1.0}, docs, 20))
    rows = {line.split()[0]: line for line in console.export_text().splitlines() if "█" in line}
    assert "◆ 200 ms" in rows["api"]  # 1 s less the 0.1-0.9 its children cover
    assert "◆ 800 ms" in rows["slowcall"]
    assert "◆" not in rows["sidecall"] and "200 ms" in rows["sidecall"]
