"""Log lines as real programs write them (shared/reference/logs.md §5), for the log tests.

Each constant is one CloudWatch event's message. Where the reference shortened an id with
``…``, a full id of the same shape stands in; everything else is copied exactly. The
``EXPECTED`` table says what ingest must read out of each line.
"""

from __future__ import annotations

from typing import Final

# §5.1 Lambda platform lines, text format: one invocation (trace in REPORT only)
LAMBDA_REQUEST: Final = "ea643eb8-1547-41f5-8c51-4ff6abe3e0d1"
LAMBDA_TRACE: Final = "1-643eb81e-7b15c13c3bff33247638ad8d"
INIT_START: Final = (
    "INIT_START Runtime Version: nodejs:14.v29\tRuntime Version ARN: "
    "arn:aws:lambda:us-east-2::runtime:be6b7a67a2f1c9e3b5d8a0c4e6f2b1d9\n"
)
START: Final = f"START RequestId: {LAMBDA_REQUEST} Version: $LATEST\n"
END: Final = f"END RequestId: {LAMBDA_REQUEST}\n"
REPORT: Final = (
    f"REPORT RequestId: {LAMBDA_REQUEST}\tDuration: 20.39 ms\tBilled Duration: 21 ms\t"
    "Memory Size: 128 MB\tMax Memory Used: 57 MB\tInit Duration: 178.50 ms\t\n"
    f"XRAY TraceId: {LAMBDA_TRACE}\tSegmentId: 4c72ac137fd02fb0\tSampled: true\t\n"
)
# §5.3 the Python runtime's text lines of that invocation (request id only)
PY_INFO: Final = f"[INFO]\t2026-12-03T18:29:55.453Z\t{LAMBDA_REQUEST}\tProcessing order o-1\n"
PY_ERROR: Final = (
    f"[ERROR]\t2026-12-03T18:29:55.453Z\t{LAMBDA_REQUEST}\tfailed\n"
    'Traceback (most recent call last):\n  File "/var/task/app.py", line 9, in <module>\n'
)
PY_UNCAUGHT: Final = (
    "[ERROR] ValueError: bad\nTraceback (most recent call last):\n"
    '\u00a0\u00a0File "/var/task/app.py", line 9, in handler\n'
)
NODE_INFO: Final = f"2026-12-03T18:29:55.453Z\t{LAMBDA_REQUEST}\tINFO\tProcessing order o-1\n"

# §5.2 Lambda JSON log format: one invocation
JSON_REQUEST: Final = "459921b5-681c-4a96-beb0-81e0aa586026"
JSON_TRACE: Final = "1-6352a70e-1e2c502e358361800241fd45"
JSON_START: Final = (
    '{"time":"2022-10-21T14:05:03.165Z","type":"platform.start","record":{"requestId":'
    f'"{JSON_REQUEST}","version":"$LATEST","tracing":{{"spanId":"24cd7d670fa455f0",'
    f'"type":"X-Amzn-Trace-Id","value":"Root={JSON_TRACE};Parent=35465b3a9e2f7c6a;Sampled=1"}}}}}}'
)
JSON_APP: Final = (
    '{"timestamp": "2026-12-03T18:29:55Z", "level": "WARNING", "message": "slow", '
    f'"logger": "app", "requestId": "{JSON_REQUEST}", "orderId": "o-1"}}'
)
JSON_RUNTIME_DONE: Final = (
    '{"time":"2022-10-21T14:05:05.764Z","type":"platform.runtimeDone","record":{"requestId":'
    f'"{JSON_REQUEST}","status":"success","metrics":{{"durationMs":2598.0,"producedBytes":42}}}}}}'
)
JSON_REPORT: Final = (
    '{"time":"2022-10-21T14:05:05.766Z","type":"platform.report","record":{"requestId":'
    f'"{JSON_REQUEST}","metrics":{{"durationMs":2599.4,"billedDurationMs":2600,'
    '"memorySizeMB":128,"maxMemoryUsedMB":94,"initDurationMs":549.04},"tracing":'
    '{"spanId":"24cd7d670fa455f0","type":"X-Amzn-Trace-Id","value":'
    f'"Root={JSON_TRACE};Parent=35465b3a9e2f7c6a;Sampled=1"}},"status":"success"}}}}'
)

# §5.4 Powertools
POWERTOOLS_TRACE: Final = "1-5759e988-bd862e3fe1be46a994272793"
POWERTOOLS: Final = (
    '{"level":"INFO","location":"handler:13","message":"Collecting payment","timestamp":'
    '"2026-12-03 18:29:51,350+0000","service":"payment","cold_start":true,"function_name":'
    '"checkout","function_memory_size":128,"function_arn":'
    '"arn:aws:lambda:us-east-1:123456789012:function:checkout","function_request_id":'
    '"c6af9ac6-7b61-11e6-9a41-93e812345678","correlation_id":"abc-123","xray_trace_id":'
    f'"{POWERTOOLS_TRACE}"}}'
)

# §5.5 API Gateway: a JSON access log line (the typical format, filled in) and execution logs
APIGW_TRACE: Final = "1-5759e98a-2c1e4a7fd0b3c5e6a7b8c9d0"
APIGW_ACCESS: Final = (
    '{"requestTime":"03/Dec/2026:18:29:51 +0000","requestId":"7f1c3c2e-6d4b-4b8e-9a1f-2c3d4e5f6a7b",'
    '"httpMethod":"POST","path":"/prod/orders","resourcePath":"/orders","status":502,'
    f'"responseLatency":31,"xrayTraceId":"{APIGW_TRACE}","integrationRequestId":'
    '"0b6a1f1e-8c9d-4e2f-a3b4-c5d6e7f8a9b0","functionResponseStatus":"200",'
    '"integrationLatency":"29","integrationServiceStatus":"200","ip":"203.0.113.7",'
    '"userAgent":"curl/8.5.0"}'
)
EXEC_REQUEST: Final = "9cef3834-5d3e-4b4e-9d73-1c5a7a0b2e11"
EXEC_TRACE: Final = "1-6962324d-273b8749616a929c8bd4fd14"
EXEC_START: Final = f"({EXEC_REQUEST}) Extended Request Id: Xa1bYc2dZe3fGg="
EXEC_TRACING: Final = f"({EXEC_REQUEST}) X-ray Tracing ID : Root={EXEC_TRACE}"
EXEC_BODY: Final = (
    f'({EXEC_REQUEST}) Method request body before transformations: {{"orderId":"o-1"}}'
)

# §5.6 Java X-Ray SDK (%X{AWS-XRAY-TRACE-ID}); §5.7 OpenTelemetry logging format
JAVA: Final = (
    "2026-12-03 18:29:55.123 INFO  [main] c.e.Orders - AWS-XRAY-TRACE-ID: "
    "1-5d77f256-19f12e4eaa02e3f76c78f46a@1ce7df03252d99e1 placing order o-1"
)
OTEL_W3C: Final = "5759e989bd862e3fe1be46a994272795"
OTEL: Final = (
    "2026-12-03 18:29:55,123 WARNING [app] [app.py:42] [trace_id="
    f"{OTEL_W3C} span_id=53995c3f42cd8ad8 resource.service.name=orders "
    "trace_sampled=True] - slow downstream call"
)
TRACE_HEADER: Final = (
    "forwarding X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272799;"
    "Parent=53995c3f42cd8ad9;Sampled=1"
)

# message -> (trace_id, segment_id, request_id, level, type, json)
EXPECTED: Final[dict[str, tuple[str, str, str, str, str, str]]] = {
    INIT_START: ("", "", "", "", "INIT_START", ""),
    START: ("", "", LAMBDA_REQUEST, "", "START", ""),
    END: ("", "", LAMBDA_REQUEST, "", "END", ""),
    REPORT: (LAMBDA_TRACE, "4c72ac137fd02fb0", LAMBDA_REQUEST, "", "REPORT", ""),
    PY_INFO: ("", "", LAMBDA_REQUEST, "INFO", "", ""),
    PY_ERROR: ("", "", LAMBDA_REQUEST, "ERROR", "", ""),
    PY_UNCAUGHT: ("", "", "", "ERROR", "", ""),
    NODE_INFO: ("", "", LAMBDA_REQUEST, "INFO", "", ""),
    JSON_START: (JSON_TRACE, "24cd7d670fa455f0", JSON_REQUEST, "", "START", JSON_START),
    JSON_APP: ("", "", JSON_REQUEST, "WARNING", "", JSON_APP),
    JSON_RUNTIME_DONE: ("", "", JSON_REQUEST, "", "RUNTIME_DONE", JSON_RUNTIME_DONE),
    JSON_REPORT: (JSON_TRACE, "24cd7d670fa455f0", JSON_REQUEST, "", "REPORT", JSON_REPORT),
    POWERTOOLS: (
        POWERTOOLS_TRACE, "", "c6af9ac6-7b61-11e6-9a41-93e812345678", "INFO", "", POWERTOOLS,
    ),
    APIGW_ACCESS: (
        APIGW_TRACE, "", "7f1c3c2e-6d4b-4b8e-9a1f-2c3d4e5f6a7b", "", "", APIGW_ACCESS,
    ),
    EXEC_START: ("", "", EXEC_REQUEST, "", "", ""),
    EXEC_TRACING: (EXEC_TRACE, "", EXEC_REQUEST, "", "", ""),
    EXEC_BODY: ("", "", EXEC_REQUEST, "", "", '{"orderId":"o-1"}'),
    JAVA: ("1-5d77f256-19f12e4eaa02e3f76c78f46a", "1ce7df03252d99e1", "", "INFO", "", ""),
    OTEL: (f"1-{OTEL_W3C[:8]}-{OTEL_W3C[8:]}", "53995c3f42cd8ad8", "", "WARNING", "", ""),
    TRACE_HEADER: ("1-5759e988-bd862e3fe1be46a994272799", "53995c3f42cd8ad9", "", "", "", ""),
}  # fmt: skip
