"""Output that is not a terminal is never cut; in a terminal, ``--wide`` shows it whole.

``fluoroscope traces`` and ``fluoroscope trace`` run as subprocesses with stdout piped
and ``COLUMNS=60`` (what a CI log or ``| less`` gets): every trace id, URL, name and
flag appears whole. In a terminal (a rich console forced to be one, 80 columns), long
cells are shortened with ``…`` unless ``wide``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from rich.console import Console

from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.terminal import show_trace, show_traces
from tests.support import ServerProcess, get_documents, wait_for

URL = "https://api.example.com/v1/customers/1234567890/orders/" + "x" * 60 + "?expand=items"
CALL_URL = "https://downstream.example.com/" + "deep/" * 15 + "end"
CALL_SHOWN = CALL_URL.removeprefix("https://")  # shown without its scheme
SUBSEGMENT = "a-subsegment-name-long-enough-to-be-shortened-in-any-terminal"


@pytest.fixture(scope="module")
def long_trace(server: ServerProcess) -> str:
    """A trace whose URL, names and flags are wider than any terminal's share for them."""
    now = time.time()
    trace_id = new_trace_id(now)
    doc: dict[str, Any] = {
        "name": "checkout-service", "id": new_entity_id(), "trace_id": trace_id,
        "start_time": now - 1, "end_time": now - 0.5, "fault": True, "throttle": True,
        "http": {"request": {"method": "GET", "url": URL}, "response": {"status": 503}},
        "subsegments": [{
            "name": SUBSEGMENT, "id": new_entity_id(), "namespace": "remote",
            "start_time": now - 0.9, "end_time": now - 0.6,
            "http": {"request": {"method": "POST", "url": CALL_URL}},
        }],
    }  # fmt: skip
    client = server.xray()
    reply = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(doc)])
    assert reply["UnprocessedTraceSegments"] == []
    wait_for(lambda: get_documents(client, trace_id))

    def summarized() -> bool:
        now = time.time()
        summaries = client.get_trace_summaries(StartTime=now - 600, EndTime=now)
        return any(s["Id"] == trace_id for s in summaries["TraceSummaries"])

    wait_for(summarized)
    return trace_id


def _piped(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLUOROSCOPE_")}
    return subprocess.run(
        [sys.executable, "-m", "fluoroscope", *args],
        capture_output=True, text=True, timeout=60, env={**env, "COLUMNS": "60"},
    )  # fmt: skip


def test_traces_piped_shows_whole_ids_urls_and_flags(
    server: ServerProcess, long_trace: str
) -> None:
    result = _piped("traces", "--server", server.url, "--since", "10m")
    assert result.returncode == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if long_trace in line]
    assert URL.removeprefix("https://") in row
    assert row.split()[-1] == "throttle"  # the flags column, whole
    assert "…" not in result.stdout


def test_trace_piped_shows_whole_names_and_details(server: ServerProcess, long_trace: str) -> None:
    result = _piped("trace", long_trace, "--server", server.url)
    assert result.returncode == 0, result.stderr
    assert f"Trace {long_trace}" in result.stdout.splitlines()[0]
    assert SUBSEGMENT in result.stdout
    assert f"POST {CALL_SHOWN}" in result.stdout
    assert "…" not in result.stdout.replace("0 … ", "")  # the time axis's own label


def _terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=80, color_system=None)
    return console, buffer


def test_in_a_terminal_long_cells_are_cut_and_wide_shows_them(
    server: ServerProcess, long_trace: str
) -> None:
    err, _ = _terminal()
    narrow, narrow_text = _terminal()
    assert show_traces(narrow, err, server.url, since="10m") == 0
    assert (
        "…" in narrow_text.getvalue() and URL.removeprefix("https://") not in narrow_text.getvalue()
    )
    assert all(len(line) <= 80 for line in narrow_text.getvalue().splitlines())
    wide, wide_text = _terminal()
    assert show_traces(wide, err, server.url, since="10m", wide=True) == 0
    assert URL.removeprefix("https://") in wide_text.getvalue()
    assert wide.width == 80  # the console is left as it was
    wide, wide_text = _terminal()
    assert show_trace(wide, err, server.url, long_trace, wide=True) == 0
    assert SUBSEGMENT in wide_text.getvalue() and CALL_SHOWN in wide_text.getvalue()
    narrow, narrow_text = _terminal()
    assert show_trace(narrow, err, server.url, long_trace) == 0
    assert SUBSEGMENT not in narrow_text.getvalue()
