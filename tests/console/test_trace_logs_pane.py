"""The trace timeline's Logs pane in a real browser, against ``fluoroscope demo``: a
Lambda→Lambda trace (createOrder invoking notify) shows the lines of API Gateway and of
both functions in one pane, in order, each under the right service; an entry clicked
narrows the pane, a line clicked selects its entry; a hostile line renders as text."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
import uuid
from typing import Any

import boto3
from botocore.config import Config
from playwright.sync_api import expect

from fluoroscope.model.ids import new_entity_id, new_trace_id
from tests.console.conftest import Demo, Watched, screenshot
from tests.support import wait_for

NOTIFY = "orders-api-notify"
CALLER = "orders-api-createOrder"
STAGE = "orders-api/prod"


def _lines(demo: Demo, trace_id: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{demo.url}/api/traces/{trace_id}/logs", timeout=30) as r:
        lines: list[dict[str, Any]] = json.loads(r.read())["lines"]
    return lines


def _chain_trace(demo: Demo) -> tuple[str, list[dict[str, Any]]] | None:
    """A trace through API Gateway, createOrder and notify whose lines are all in.

    One without a fault, error or throttle: a failed trace opens with its root cause's
    entry selected, and the pane then shows that entry's lines only."""
    now = time.time()
    found = demo.xray().get_trace_summaries(
        StartTime=now - 900,
        EndTime=now,
        FilterExpression=f'service("{NOTIFY}") AND !fault AND !error AND !throttle',
    )["TraceSummaries"]
    for summary in found[:10]:
        lines = _lines(demo, summary["Id"])
        reports = {line["service"] for line in lines if line["type"] == "REPORT"}
        access = [line for line in lines if line["service"] == STAGE]
        if {NOTIFY, CALLER} <= reports and access:
            return summary["Id"], lines
    return None


def test_a_lambda_calling_lambda_trace_shows_every_services_lines(
    watched: Watched, demo: Demo
) -> None:
    trace_id, lines = wait_for(lambda: _chain_trace(demo), timeout=120, interval=1)
    page = watched.page
    page.goto(f"/#/trace/{trace_id}")
    pane = page.locator("#trace-logs")
    rows = pane.locator(".lg-line")
    expect(rows.first).to_be_visible()
    expect(rows).to_have_count(len(lines))
    shown = page.eval_on_selector_all(
        "#trace-logs .lg-line",
        "els => els.map(e => [e.dataset.service, e.dataset.group, e.querySelector('.lg-msg').textContent])",
    )
    assert [s[:2] for s in shown] == [[line["service"], line["logGroup"]] for line in lines]
    services = [service for service, _, _ in shown]
    assert {STAGE, CALLER, NOTIFY} <= set(services)
    for service, group, _ in shown:
        expected = STAGE if group.startswith("/aws/apigateway/") else group.rsplit("/", 1)[1]
        assert service == expected
    # in time order: the callee's lines inside the caller's invocation
    assert services.index(CALLER) < services.index(NOTIFY)
    stamps = [line["timestamp"] for line in lines]
    assert stamps == sorted(stamps)
    messages = [m for _, _, m in shown]
    assert any(m.startswith("START RequestId:") for m in messages)
    assert any('"xray_trace_id":"' + trace_id in line["message"] for line in lines)
    # JSON lines shown as fields: the structured logger's trace id among them
    expect(pane.locator(".lg-fields dd", has_text=trace_id).first).to_be_visible()
    page.evaluate("document.getElementById('trace-logs').scrollIntoView({block: 'start'})")
    screenshot(page, "trace-logs")

    # an entry clicked narrows the pane to its lines; "Show all" undoes it
    function_row = page.locator(
        f'#timeline .tl-row[data-kind="segment"][data-name="{NOTIFY}"]'
    ).last
    function_row.click()
    expect(pane.locator(".lg-scope")).to_contain_text(NOTIFY)
    narrowed = page.eval_on_selector_all(
        "#trace-logs .lg-line", "els => els.map(e => e.dataset.service)"
    )
    assert narrowed and set(narrowed) == {NOTIFY}
    pane.get_by_role("button", name="Show all").click()
    expect(rows).to_have_count(len(lines))

    # a line clicked selects its entry in the timeline
    access = pane.locator(f'.lg-line[data-service="{STAGE}"]').first
    entity = access.get_attribute("data-entity")
    access.click()
    expect(page.locator(f'#timeline .tl-row[data-id="{entity}"]')).to_have_class(
        re.compile("selected")
    )
    # the search box keeps the matching lines
    pane.locator(".lg-search").fill("REPORT RequestId")
    expect(rows).to_have_count(sum(1 for m in messages if "REPORT RequestId" in m))


def test_a_hostile_log_line_renders_as_text(watched: Watched, demo: Demo) -> None:
    trace_id = new_trace_id()
    group = f"hostile/{uuid.uuid4().hex[:8]}"
    now = time.time()
    segment = {
        "name": "hostile-app", "id": new_entity_id(), "trace_id": trace_id,
        "start_time": now, "end_time": now + 0.1,
        "aws": {"cloudwatch_logs": [{"log_group": group}]},
    }  # fmt: skip
    # a loaded machine may answer a retryable throttle: retry as the AWS SDKs do
    patient = Config(retries={"max_attempts": 10, "mode": "standard"})
    xray = boto3.client(
        "xray", endpoint_url=demo.url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test", config=patient,
    )  # fmt: skip
    xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(segment)])
    logs = boto3.client(
        "logs", endpoint_url=demo.url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test", config=patient,
    )  # fmt: skip
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    hostile = (
        f"<img src=x onerror=alert(1)><script>alert(2)</script> \x1b[31mRED\x1b[0m "
        f"日本語 ✓ trace {trace_id} " + "A" * 200_000
    )
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[{"timestamp": int(now * 1000) + 5, "message": hostile}],
    )
    wait_for(lambda: _lines(demo, trace_id) or None, timeout=60)
    page = watched.page
    page.goto(f"/#/trace/{trace_id}")
    line = page.locator("#trace-logs .lg-line")
    expect(line).to_have_count(1)
    assert page.locator("#trace-logs img, #trace-logs script").count() == 0
    text = line.locator(".lg-msg").text_content() or ""
    assert text.startswith("<img src=x onerror=alert(1)><script>alert(2)</script> RED 日本語 ✓")
    assert "\x1b" not in text and len(text) < 1000  # clipped until expanded
    line.get_by_role("button", name="expand (200,").click()
    assert len(line.locator(".lg-msg").text_content() or "") > 200_000
    expect(line).to_have_attribute("data-service", "hostile-app")

    # lines naming a trace that was never stored: the timeline says so, the pane shows them
    orphan = new_trace_id()
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[
            {"timestamp": int(now * 1000) + 6, "message": f'{{"xray_trace_id":"{orphan}"}}'}
        ],
    )
    wait_for(lambda: _lines(demo, orphan) or None, timeout=60)
    page.goto(f"/#/trace/{orphan}")
    expect(page.get_by_text("There is no trace with this id")).to_be_visible()
    expect(page.locator("#trace-logs .lg-line")).to_have_count(1)
    page.goto(f"/#/trace/{trace_id}")
    expect(line).to_have_count(1)

    # thousands of lines: the pane draws them a page at a time
    logs.put_log_events(
        logGroupName=group,
        logStreamName="s",
        logEvents=[
            {"timestamp": int(now * 1000) + 10 + i, "message": f"step {i} of {trace_id}"}
            for i in range(1500)
        ],
    )
    wait_for(lambda: len(_lines(demo, trace_id)) == 1501 or None, timeout=60)
    page.locator("#trace-logs").get_by_role("button", name="Refresh").click()
    expect(page.locator("#trace-logs .lg-count")).to_contain_text("1,501 lines")
    expect(line).to_have_count(200)
    more = page.locator("#trace-logs .lg-more")
    expect(more).to_have_text("Show 200 more (1,301 left)")
    more.click()
    expect(line).to_have_count(400)


def _logs_view(page: Any, groups: str, query: str) -> None:
    params = urllib.parse.urlencode({"range": "15m", "groups": groups, "q": query})
    page.goto(f"/#/logs?{params}")


def test_the_logs_view_runs_queries_charts_them_and_links_traces(
    watched: Watched, demo: Demo
) -> None:
    page = watched.page
    group = f"/aws/lambda/{CALLER}"
    _logs_view(
        page,
        group,
        'fields @timestamp, @log, @message\n| filter @message like "XRAY TraceId"\n| limit 50',
    )
    expect(page.locator(f'#log-groups li[data-group="{group}"] input')).to_be_checked()
    expect(page.locator(f'#log-groups li[data-group="{group}"]')).to_contain_text("never expires")
    rows = page.locator("#logs-table tbody tr")
    expect(rows.first).to_be_visible()
    assert page.locator("#logs-table th").all_text_contents()[:3] == [
        "@timestamp",
        "@log",
        "@message",
    ]
    expect(page.locator("#logs-chart[data-kind=bars] canvas")).to_have_count(1)
    # a REPORT line names its trace: the row links to it
    link = rows.first.locator("a.lv-trace")
    trace_id = (link.get_attribute("href") or "").rsplit("/", 1)[-1]
    assert trace_id.startswith("1-") and trace_id in (rows.first.text_content() or "")
    screenshot(page, "logs-view")

    # stats by bin(): a time series
    page.locator("#logs-query").fill("stats count(*) as invocations by bin(1m)")
    page.locator("#logs-run").click()
    expect(page.locator("#logs-chart[data-kind=series] canvas")).to_have_count(1)
    assert page.locator("#logs-table th").all_text_contents() == ["bin(1m)", "invocations"]
    assert "q=stats" in page.url  # the query is in the URL

    # a malformed query: the offending characters are marked
    page.locator("#logs-query").fill("fields @message | filter @message lik 'x'")
    page.locator("#logs-run").click()
    expect(page.locator("#logs-error mark")).to_be_visible()
    excerpt = page.locator("#logs-error-excerpt").text_content() or ""
    assert excerpt == "fields @message | filter @message lik 'x'"
    watched.allow("400")  # the browser reports the refused StartQuery

    # live tail: the demo's traffic keeps writing
    page.locator("#logs-tail").click()
    expect(page.locator("#logs-tail-lines .lv-tail-line").first).to_be_visible(timeout=30_000)


def test_the_pane_and_the_map_lead_to_the_logs_view(watched: Watched, demo: Demo) -> None:
    trace_id, _ = wait_for(lambda: _chain_trace(demo), timeout=120, interval=1)
    page = watched.page
    page.goto(f"/#/trace/{trace_id}")
    expect(page.locator("#trace-logs .lg-line").first).to_be_visible()
    page.locator("#trace-logs").get_by_role("link", name="Open in Logs view").click()
    rows = page.locator("#logs-table tbody tr")
    expect(rows.first).to_be_visible()
    traces = page.eval_on_selector_all(
        "#logs-table tbody tr", "els => els.map(e => e.dataset.trace)"
    )
    assert len(traces) >= 3 and set(traces) == {trace_id}  # every row links to the trace
    page.goto("/#/map?range=15m")
    page.locator(f'#service-map g.node[data-name="{NOTIFY}"]').first.click()
    logs_link = page.locator("#node-logs")
    expect(logs_link).to_be_visible()
    logs_link.click()
    expect(page.locator(f'#log-groups li[data-group="/aws/lambda/{NOTIFY}"] input')).to_be_checked()
    expect(page.locator("#logs-table tbody tr").first).to_be_visible()
