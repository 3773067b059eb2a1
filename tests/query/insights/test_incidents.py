"""The eight incident queries of ``reference/logs.md`` §4.2, exactly as users type them,
run over real Lambda (text and JSON), Python runtime, Powertools and API Gateway lines:
each returns what an engineer on call expects from those lines."""

from __future__ import annotations

from tests.query.insights.conftest import Runner
from tests.query.insights.corpus import INCIDENTS
from tests.query.insights.lines import REQ1, REQ2, REQ3, STREAM, TRACE1, TRACE3, TRACE_API


def test_1_everything_for_one_trace(run_query: Runner) -> None:
    rows = run_query(INCIDENTS[0])
    assert [(r["@log"], r["@timestamp"]) for r in rows] == [
        ("000000000000:/aws/apigateway/access", "2025-12-02 18:26:40.050")
    ]
    assert TRACE_API in rows[0]["@message"]


def test_2_latest_errors(run_query: Runner) -> None:
    rows = run_query(INCIDENTS[1])
    assert [r["@timestamp"] for r in rows] == [
        "2025-12-02 18:26:42.000",  # {"level": "ERROR", ... "errorType": "KeyError"}
        "2025-12-02 18:26:41.370",  # Powertools "Retry failed"
        "2025-12-02 18:26:41.360",  # Powertools "Card declined" (level ERROR)
        "2025-12-02 18:26:40.200",  # [ERROR] ValueError
    ]
    assert rows[-1]["@logStream"] == STREAM
    assert set(rows[0]) == {"@timestamp", "@logStream", "@message"}


def test_3_error_rate_by_five_minutes(run_query: Runner) -> None:
    # JSON level ERROR: two Powertools lines and the runtime's JSON error; [ERROR]: one
    assert run_query(INCIDENTS[2]) == [{"bin(5m)": "2025-12-02 18:25:00.000", "errors": "4"}]


def test_4_latency_percentiles_and_cold_starts(run_query: Runner) -> None:
    assert run_query(INCIDENTS[3]) == [
        {
            "bin(5m)": "2025-12-02 18:30:00.000",
            "invocations": "1",
            "p50": "3000",
            "p99": "3000",
            "coldStarts": "0",
        },
        {  # the text REPORT (20.39 ms, cold) and the JSON platform.report (2599.4 ms, cold)
            "bin(5m)": "2025-12-02 18:25:00.000",
            "invocations": "2",
            "p50": "1309.895",
            "p99": "2573.6099",
            "coldStarts": "2",
        },
    ]


def test_5_slowest_invocations_with_their_trace_ids(run_query: Runner) -> None:
    assert run_query(INCIDENTS[4]) == [
        {"@requestId": REQ2, "@duration": "3000"},  # no active tracing: no trace id
        {"@requestId": REQ3, "@duration": "2599.4", "@xrayTraceId": TRACE3},
        {"@requestId": REQ1, "@duration": "20.39", "@xrayTraceId": TRACE1},
    ]


def test_6_top_failing_api_routes(run_query: Runner) -> None:
    assert run_query(INCIDENTS[5]) == [
        {"httpMethod": "POST", "resourcePath": "/orders", "n": "2"},
        {"httpMethod": "GET", "resourcePath": "/orders/{id}", "n": "1"},
    ]


def test_7_python_errors_by_exception_type(run_query: Runner) -> None:
    assert run_query(INCIDENTS[6]) == [{"exType": "ValueError", "n": "1"}]


def test_8_one_latest_error_per_request(run_query: Runner) -> None:
    assert run_query(INCIDENTS[7]) == [
        {
            "@timestamp": "2025-12-02 18:26:41.370",
            "function_request_id": REQ3,
            "xray_trace_id": TRACE3,
            "message": "Retry failed",
        }
    ]


def test_application_lines_get_the_trace_of_their_invocation(run_query: Runner) -> None:
    rows = run_query(
        f'filter @requestId = "{REQ1}" | fields @type, @xrayTraceId | sort @timestamp asc'
    )
    assert [r.get("@type") for r in rows] == ["START", None, None, "END", "REPORT"]
    assert {r["@xrayTraceId"] for r in rows} == {TRACE1}
