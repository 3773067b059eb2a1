"""``fluoroscope traces`` and ``fluoroscope trace`` against a real server, run as a user would.

One server per module holds a small fleet of traces with known shapes (stored through
boto3), plus 105 older ones for paging and ``--since``. Each command runs as a
subprocess with ``COLUMNS=200`` so rich lays the tables out on one line per row.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from rich.console import Console

from fluoroscope.config import ConfigError, resolve_server_url
from fluoroscope.model.ids import new_entity_id, new_trace_id
from fluoroscope.terminal import (
    format_age,
    format_seconds,
    parse_since,
    shorten_url,
    summaries_table,
    timeline_table,
)
from tests.support import ServerProcess, free_port, get_documents, wait_for

NAMES = ("checkout", "missing", "throttled", "broken")  # oldest first, 10 s apart
OLD = 105  # traces two hours back: more than one 100-summary page


def _root(trace_id: str, start: float, rt: float, method: str, path: str, status: int) -> Any:
    return {
        "name": "api", "id": new_entity_id(), "trace_id": trace_id, "start_time": start,
        "end_time": start + rt, "origin": "AWS::EC2::Instance",
        "http": {"request": {"method": method, "url": f"https://shop.example{path}"},
                 "response": {"status": status}},
        "fault": status >= 500, "error": 400 <= status < 500, "throttle": status == 429,
    }  # fmt: skip


def _fleet(now: float) -> tuple[dict[str, str], list[dict[str, Any]]]:
    ids = {name: new_trace_id(now - 40 + 10 * i) for i, name in enumerate(NAMES)}
    t0 = now - 40
    checkout = _root(ids["checkout"], t0, 0.8, "GET", "/checkout?cart=7", 200)
    call = new_entity_id()
    checkout["subsegments"] = [
        {
            "name": "billing",
            "id": call,
            "namespace": "remote",
            "start_time": t0 + 0.2,
            "end_time": t0 + 0.7,
            "http": {
                "request": {"method": "POST", "url": "http://billing/charge"},
                "response": {"status": 200},
            },
            "subsegments": [
                {
                    "name": "serialize",
                    "id": new_entity_id(),
                    "start_time": t0 + 0.21,
                    "end_time": t0 + 0.23,
                }
            ],
        },
        {
            "name": "DynamoDB",
            "id": new_entity_id(),
            "namespace": "aws",
            "start_time": t0 + 0.05,
            "end_time": t0 + 0.15,
            "aws": {"operation": "GetItem", "table_name": "orders"},
            "http": {"response": {"status": 200}},
        },
    ]  # fmt: skip (listed out of order: the timeline sorts siblings by start)
    billing = {
        "name": "billing", "id": new_entity_id(), "trace_id": ids["checkout"], "parent_id": call,
        "start_time": t0 + 0.22, "end_time": t0 + 0.68, "http": {"response": {"status": 200}},
    }  # fmt: skip
    missing = _root(ids["missing"], now - 30, 0.02, "POST", "/cart/404", 404)
    throttled = _root(ids["throttled"], now - 20, 0.01, "GET", "/busy", 429)
    broken = _root(ids["broken"], now - 10, 2.5, "GET", "/pay", 502)
    broken["cause"] = {
        "exceptions": [{"id": new_entity_id(), "type": "TimeoutError", "message": "upstream"}]
    }
    old = [
        _root(new_trace_id(now - 7200 + i), now - 7200 + i, 0.1, "GET", f"/old/{i}", 200)
        for i in range(OLD)
    ]
    return ids, [checkout, billing, missing, throttled, broken, *old]


@pytest.fixture(scope="module")
def fleet(server: ServerProcess) -> dict[str, str]:
    client = server.xray()
    now = time.time()
    ids, docs = _fleet(now)
    reply = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
    assert reply["UnprocessedTraceSegments"] == []

    def stored() -> bool:
        now = time.time()
        pages = client.get_paginator("get_trace_summaries").paginate(
            StartTime=now - 3 * 3600, EndTime=now
        )
        found = {s["Id"] for page in pages for s in page["TraceSummaries"]}
        return set(ids.values()) <= found and len(found) >= len(ids) + OLD

    wait_for(stored)
    wait_for(lambda: len(get_documents(client, ids["checkout"]) or []) >= 3)
    return {**ids, "now": str(now)}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    base.pop("FLUOROSCOPE_SERVER", None)
    return subprocess.run(
        [sys.executable, "-m", "fluoroscope", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, "COLUMNS": "200", **(env or {})},
    )


def _row(output: str, needle: str) -> str:
    rows = [line for line in output.splitlines() if needle in line]
    assert len(rows) == 1, f"{needle!r} in {len(rows)} rows of:\n{output}"
    return rows[0]


# -- traces ---------------------------------------------------------------------------


def test_traces_lists_every_recent_trace_newest_first_with_its_fields(
    server: ServerProcess, fleet: dict[str, str]
) -> None:
    result = run("traces", "--server", server.url)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    header = out.splitlines()[0].split()
    assert header == ["age", "trace", "id", "method", "url", "status", "time", "service", "flags"]
    positions = [out.index(fleet[name]) for name in reversed(NAMES)]
    assert positions == sorted(positions), "newest first"
    assert "/old/" not in out, "the default window is the last hour"
    checkout = _row(out, fleet["checkout"]).split()
    assert re.fullmatch(r"\d+s", checkout[0]) and 40 <= int(checkout[0][:-1]) < 120
    assert checkout[1] == "ago"
    assert checkout[3:] == ["GET", "shop.example/checkout?cart=7", "200", "800", "ms", "api", "+2"]
    assert _row(out, fleet["missing"]).split()[3:] == [
        "POST", "shop.example/cart/404", "404", "20", "ms", "api", "error",
    ]  # fmt: skip
    assert _row(out, fleet["throttled"]).split()[-2:] == ["error", "throttle"]
    assert _row(out, fleet["broken"]).split()[5:] == ["502", "2.50", "s", "api", "fault"]
    assert "4 traces in the last 1h" in result.stderr


def test_statuses_are_coloured_by_class(server: ServerProcess, fleet: dict[str, str]) -> None:
    result = run("traces", "--server", server.url, env={"FORCE_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    for name, code, status in (
        ("checkout", 32, 200),  # green
        ("missing", 33, 404),  # yellow
        ("throttled", 35, 429),  # magenta
        ("broken", 31, 502),  # red
    ):
        assert re.search(f"\x1b\\[{code}m *{status}\x1b\\[0m", _row(result.stdout, fleet[name])), (
            name
        )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("fault", {"broken"}),
        ("http.status >= 400 AND !fault", {"missing", "throttled"}),
        ('service("billing")', {"checkout"}),
        ("responsetime > 100", set()),
    ],
)
def test_a_filter_narrows_the_list(
    server: ServerProcess, fleet: dict[str, str], expression: str, expected: set[str]
) -> None:
    result = run("traces", expression, "--server", server.url)
    assert result.returncode == 0, result.stderr
    assert {name for name in NAMES if fleet[name] in result.stdout} == expected
    if not expected:
        assert "No traces in the last 1h matching responsetime > 100" in result.stderr


def test_json_lines_are_the_servers_summaries(server: ServerProcess, fleet: dict[str, str]) -> None:
    result = run("traces", "--json", "--server", server.url)
    assert result.returncode == 0, result.stderr
    summaries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["Id"] for s in summaries] == [fleet[name] for name in reversed(NAMES)]
    checkout = summaries[-1]
    assert checkout["Http"] == {
        "HttpURL": "https://shop.example/checkout?cart=7",
        "HttpStatus": 200,
        "HttpMethod": "GET",
    }
    assert checkout["ResponseTime"] == pytest.approx(0.8)
    assert {s["Name"] for s in checkout["ServiceIds"]} == {"api", "billing", "orders"}
    boto = server.xray().get_trace_summaries(
        StartTime=checkout["StartTime"] - 1, EndTime=checkout["StartTime"] + 1
    )["TraceSummaries"]
    assert [s["Id"] for s in boto] == [checkout["Id"]]
    assert boto[0]["Annotations"] == checkout["Annotations"]
    assert boto[0]["EntryPoint"] == checkout["EntryPoint"]


def test_limit_and_since_follow_next_token_across_pages(
    server: ServerProcess, fleet: dict[str, str]
) -> None:
    wide = run("traces", "--since", "3h", "--limit", "1000", "--json", "--server", server.url)
    assert wide.returncode == 0, wide.stderr
    ids = [json.loads(line)["Id"] for line in wide.stdout.splitlines()]
    assert len(ids) == len(set(ids)) == len(NAMES) + OLD  # more than one page of 100
    assert ids[: len(NAMES)] == [fleet[name] for name in reversed(NAMES)]
    capped = run("traces", "--since", "3h", "--limit", "103", "--json", "--server", server.url)
    assert [json.loads(line)["Id"] for line in capped.stdout.splitlines()] == ids[:103]
    two = run("traces", "--limit", "2", "--server", server.url)
    assert two.returncode == 0, two.stderr
    assert {name for name in NAMES if fleet[name] in two.stdout} == {"broken", "throttled"}
    assert "more exist" in two.stderr
    since = f"{time.time() - float(fleet['now']) + 25:.0f}s"  # throttled (20 s old) in, missing (30 s) out
    recent = run("traces", "--since", since, "--json", "--server", server.url)
    assert [json.loads(line)["Id"] for line in recent.stdout.splitlines()] == [
        fleet["broken"],
        fleet["throttled"],
    ]


@pytest.mark.parametrize("expression", ['responsetime > "slow"', 'service("api" { fault }'])
def test_a_bad_filter_prints_the_servers_caret_message_and_exits_2(
    server: ServerProcess, expression: str
) -> None:
    result = run("traces", expression, "--server", server.url)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: ") and "position" in lines[0]
    position = int(lines[0].split("position ")[1].split()[0].rstrip(";,:"))
    excerpt = lines.index(expression)
    assert lines[excerpt + 1] == " " * position + "^"


@pytest.mark.parametrize(("since", "fragment"), [("3x", "--since"), ("90d", "retention")])
def test_a_bad_window_exits_2(server: ServerProcess, since: str, fragment: str) -> None:
    result = run("traces", "--since", since, "--server", server.url)
    assert result.returncode == 2
    assert fragment in result.stderr


@pytest.mark.parametrize("command", [["traces"], ["trace", "1-5f84c7a6-0123456789abcdef01234567"]])
def test_an_unreachable_server_is_named_and_exits_2(command: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run(*command, env={"FLUOROSCOPE_SERVER": url})
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"cannot reach the Fluoroscope server at {url}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_malformed_server_url_exits_2() -> None:
    result = run("traces", "--server", "ftp://example")
    assert result.returncode == 2
    assert "--server: expected http://HOST:PORT" in result.stderr


# -- trace ----------------------------------------------------------------------------


def test_timeline_nests_subsegments_in_start_order_with_durations_and_bars(
    server: ServerProcess, fleet: dict[str, str]
) -> None:
    result = run("trace", fleet["checkout"], "--server", server.url)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"Trace {fleet['checkout']}  800 ms  2 services  started ")
    rows = [line for line in lines[2:] if line.strip() and not line.startswith("─")]
    names = [line[:20].rstrip() for line in rows]
    assert names == [
        "api",
        "  DynamoDB",
        "  billing",
        "    serialize",
        "orders (inferred)",
        "billing",
    ]
    durations = [re.search(r"\d[\d.]* m?s\b", line) for line in rows]
    assert [d.group() if d else None for d in durations] == [
        "800 ms", "100 ms", "500 ms", "20 ms", "100 ms", "460 ms",
    ]  # fmt: skip
    bars = [(row.index("█"), row.count("█")) for row in rows]
    origin = bars[0][0]
    assert bars[0][1] == 60  # the whole trace: the full 60-cell axis
    assert bars[1][0] - origin in (3, 4)  # DynamoDB starts at 50 ms of 800
    assert bars[2][0] - origin == 15  # the call to billing at 200 ms of 800 ...
    assert 36 <= bars[2][1] <= 38  # ... lasts 500 ms
    assert bars[5][0] - origin == 16  # billing's own segment starts at 220 ms
    assert "GetItem" in rows[1] and "table_name=orders" in rows[1]
    assert "POST billing/charge" in rows[2]
    assert "AWS::DynamoDB::Table" in rows[4]


def test_timeline_shows_status_flags_and_the_cause(
    server: ServerProcess, fleet: dict[str, str]
) -> None:
    result = run("trace", fleet["broken"], "--server", server.url)
    assert result.returncode == 0, result.stderr
    row = _row(result.stdout, "fault")
    assert row.startswith("api ")
    assert "2.50 s" in row and "502" in row and "TimeoutError: upstream" in row


def test_trace_json_prints_the_raw_documents(server: ServerProcess, fleet: dict[str, str]) -> None:
    result = run("trace", fleet["checkout"], "--json", "--server", server.url)
    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    stored = get_documents(server.xray(), fleet["checkout"])
    assert documents == stored
    assert any(d.get("inferred") for d in documents)


def test_a_w3c_style_trace_id_is_accepted(server: ServerProcess, fleet: dict[str, str]) -> None:
    compact = fleet["missing"][2:].replace("-", "").upper()
    result = run("trace", compact, "--server", server.url)
    assert result.returncode == 0, result.stderr
    assert f"Trace {fleet['missing']}" in result.stdout


@pytest.mark.parametrize(
    ("trace_id", "fragment"),
    [
        ("1-5f84c7a6-0123456789abcdef01234567", "not found on http://127.0.0.1:"),
        ("1-5f84c7a6", "'1-5f84c7a6' is not a trace id"),
        ("nonsense; DROP TABLE", "is not a trace id"),
    ],
)
def test_an_unknown_or_malformed_trace_id_exits_2(
    server: ServerProcess, trace_id: str, fragment: str
) -> None:
    result = run("trace", trace_id, "--server", server.url)
    assert result.returncode == 2
    assert result.stdout == ""
    assert fragment in result.stderr


# -- helpers, in process ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800), ("1.5H", 5400)]
)
def test_since_durations(text: str, seconds: float) -> None:
    assert parse_since(text) == seconds


@pytest.mark.parametrize("text", ["", "1", "h", "-1h", "0s", "1w", "1h30m"])
def test_bad_since_durations(text: str) -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_since(text)


def test_formatting() -> None:
    assert [format_seconds(s) for s in (0.0042, 0.25, 2.5, 125)] == [
        "4.2 ms", "250 ms", "2.50 s", "125 s",
    ]  # fmt: skip
    assert [format_age(s) for s in (0.2, 12, 300, 7300, 200000)] == [
        "just now", "12s ago", "5m ago", "2h ago", "2d ago",
    ]  # fmt: skip
    long = "https://shop.example/" + "a" * 80 + "/end?x=1"
    short = shorten_url(long, 30)
    assert len(short) == 30 and short.startswith("shop.example/") and short.endswith("/end?x=1")
    assert shorten_url("http://h/p") == "h/p"


@pytest.mark.parametrize(("width", "method", "service"), [(150, True, True), (110, False, True)])
def test_summaries_table_fits_the_terminal(width: int, method: bool, service: bool) -> None:
    url = "https://shop.example/search?q=" + "x" * 100 + "&page=2"
    summary = {
        "Id": new_trace_id(), "StartTime": 1000.0, "ResponseTime": 0.004, "HasError": True,
        "HasThrottle": True, "ServiceIds": [{"Name": "api"}], "EntryPoint": {"Name": "api"},
        "Http": {"HttpMethod": "GET", "HttpURL": url, "HttpStatus": 429},
    }  # fmt: skip
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(summaries_table([summary], 1012.0, width))
    header, row = console.export_text().splitlines()
    assert ("method" in header.split(), "service" in header.split()) == (method, service)
    assert len(row.rstrip()) <= width
    assert row.split()[:2] == ["12s", "ago"]
    assert "GET shop.e" in row or "GET     shop.e" in row
    assert row.count("…") == 1 and "&page=2  " in row  # middle-ellipsized
    assert row.rstrip().endswith("error throttle")


def test_an_in_progress_segment_runs_to_the_end_of_the_axis() -> None:
    docs = [
        {"name": "api", "id": "a" * 16, "start_time": 100.0, "end_time": 101.0},
        {"name": "worker", "id": "b" * 16, "start_time": 100.5, "in_progress": True},
    ]
    console = Console(width=120, file=io.StringIO(), record=True, color_system=None)
    console.print(timeline_table({"Duration": 1.0}, docs, 20))
    rows = [line for line in console.export_text().splitlines() if "█" in line]
    assert rows[0].count("█") == 20 and "1.00 s" in rows[0]
    assert rows[1].index("█") - rows[0].index("█") == 10 and rows[1].count("█") == 10
    assert "…" in rows[1] and "in progress" in rows[1]


def test_server_url_precedence() -> None:
    env = {"FLUOROSCOPE_SERVER": "http://env:3000/"}
    assert resolve_server_url(env={}) == "http://127.0.0.1:2000"
    assert resolve_server_url(env=env) == "http://env:3000"
    assert resolve_server_url("localhost:4000", env=env) == "http://localhost:4000"
    assert resolve_server_url("https://x.example/xray", env=env) == "https://x.example/xray"
    with pytest.raises(ConfigError, match="FLUOROSCOPE_SERVER"):
        resolve_server_url(env={"FLUOROSCOPE_SERVER": "udp://h:2000"})
