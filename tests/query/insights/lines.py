"""The log lines the query tests run against: exactly the shapes of ``reference/logs.md``
§5 - Lambda text platform lines (a cold invocation with active tracing, a warm one that
timed out), the Python runtime's text lines, Lambda JSON platform events and Powertools
JSON lines, API Gateway JSON access logs - spread over two 5-minute bins."""

from __future__ import annotations

from tests.query.insights.logrows import Line

CHECKOUT = "/aws/lambda/checkout"
PAYMENT = "/aws/lambda/payment"
API = "/aws/apigateway/access"
STREAM = "2025/12/02/[$LATEST]0123456789abcdef0123456789abcdef"
REQ1 = "ea643eb8-1547-41f5-8c51-4ff6abe3e0d1"
REQ2 = "8f507cfc-0a1b-4697-b07a-ac58fc914c95"
REQ3 = "c6af9ac6-7b61-11e6-9a41-93e812345678"
TRACE1 = "1-643eb81e-7b15c13c3bff33247638ad8d"
TRACE3 = "1-6352a70e-1e2c502e358361800241fd45"
TRACE_API = "1-620ca1d6-07f7494e51e410242c9d67f3"

_ARN = "arn:aws:lambda:us-east-2::runtime:be6b7a67"
_PT = (
    '{{"level":"{level}","location":"handler:13","message":"{message}",'
    '"timestamp":"2025-12-02 18:26:41,350+0000","service":"payment","cold_start":true,'
    '"function_name":"payment","function_memory_size":128,'
    '"function_request_id":"' + REQ3 + '","xray_trace_id":"' + TRACE3 + '"}}'
)
_ACCESS = (
    '{{"requestTime":"02/Dec/2025:18:2{m}:00 +0000","requestId":"{rid}","httpMethod":"{method}",'
    '"path":"{path}","resourcePath":"{resource}","status":{status},"responseLatency":{lat},'
    '"xrayTraceId":"{trace}","integrationRequestId":"{ireq}"}}'
)

LINES: list[Line] = [
    # checkout, cold invocation REQ1 with active tracing (bin 1: offsets < 200 s)
    Line(0, f"INIT_START Runtime Version: python:3.12.v29\tRuntime Version ARN: {_ARN}\n"),
    Line(100, f"START RequestId: {REQ1} Version: $LATEST\n"),
    Line(150, f"[INFO]\t2025-12-02T18:26:40.150Z\t{REQ1}\tProcessing order o-1\n"),
    Line(
        200,
        f"[ERROR]\t2025-12-02T18:26:40.200Z\t{REQ1}\tValueError: bad order\n"
        'Traceback (most recent call last):\n  File "/var/task/app.py", line 9, in handler\n',
    ),
    Line(300, f"END RequestId: {REQ1}\n"),
    Line(
        301,
        f"REPORT RequestId: {REQ1}\tDuration: 20.39 ms\tBilled Duration: 21 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 57 MB\tInit Duration: 178.50 ms\t\n"
        f"XRAY TraceId: {TRACE1}\tSegmentId: 4c72ac137fd02fb0\tSampled: true\t\n",
    ),
    # checkout, warm invocation REQ2 that timed out (bin 2: offsets >= 400 s)
    Line(400_000, f"START RequestId: {REQ2} Version: $LATEST\n"),
    Line(400_050, f"[WARNING]\t2025-12-02T18:33:20.050Z\t{REQ2}\tslow downstream\n"),
    Line(403_000, f"2025-12-02T18:33:23.000Z {REQ2} Task timed out after 3.00 seconds\n"),
    Line(403_001, f"END RequestId: {REQ2}\n"),
    Line(
        403_002,
        f"REPORT RequestId: {REQ2}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 64 MB\t\n",
    ),
    # payment: Lambda JSON log format and Powertools (bin 1)
    Line(
        1_000,
        '{"time":"2025-12-02T18:26:41.000Z","type":"platform.start","record":{"requestId":"'
        + REQ3
        + '","version":"$LATEST"}}',
        group=PAYMENT,
    ),
    Line(1_350, _PT.format(level="INFO", message="Collecting payment"), group=PAYMENT),
    Line(1_360, _PT.format(level="ERROR", message="Card declined"), group=PAYMENT),
    Line(1_370, _PT.format(level="ERROR", message="Retry failed"), group=PAYMENT),
    Line(
        2_000,
        '{"timestamp": "2025-12-02T18:26:42Z", "level": "ERROR", "message": "boom", '
        '"logger": "root", "requestId": "' + REQ3 + '", "errorType": "KeyError", '
        '"stackTrace": ["  File \\"/var/task/app.py\\", line 9, in handler\\n"]}',
        group=PAYMENT,
    ),
    Line(
        3_600,
        '{"time":"2025-12-02T18:26:43.600Z","type":"platform.report","record":{"requestId":"'
        + REQ3
        + '","metrics":{"durationMs":2599.4,"billedDurationMs":2600,"memorySizeMB":128,'
        '"maxMemoryUsedMB":94,"initDurationMs":549.04},"tracing":{"spanId":"24cd7d670fa455f0",'
        '"type":"X-Amzn-Trace-Id","value":"Root=' + TRACE3 + ";Parent=35465b3a9e2f7c6a;"
        'Sampled=1"},"status":"success"}}',
        group=PAYMENT,
    ),
    # API Gateway access log (bins 1 and 2)
    *(
        Line(
            offset,
            _ACCESS.format(
                m=m,
                rid=rid,
                method=method,
                path=path,
                resource=resource,
                status=status,
                lat=lat,
                trace=trace,
                ireq=REQ1,
            ),
            group=API,
            stream="b2c3d4e5f6",
        )
        for offset, m, rid, method, path, resource, status, lat, trace in (
            (50, 6, "a1", "POST", "/orders", "/orders", 200, 25, TRACE_API),
            (
                60,
                6,
                "a2",
                "POST",
                "/orders",
                "/orders",
                502,
                3010,
                "1-620ca1d6-aaaaaaaaaaaaaaaaaaaaaaaa",
            ),
            (
                70,
                6,
                "a3",
                "GET",
                "/orders/7",
                "/orders/{id}",
                500,
                12,
                "1-620ca1d6-bbbbbbbbbbbbbbbbbbbbbbbb",
            ),
            (
                401_000,
                3,
                "a4",
                "POST",
                "/orders",
                "/orders",
                504,
                29000,
                "1-620ca1d6-cccccccccccccccccccccccc",
            ),
            (
                402_000,
                3,
                "a5",
                "GET",
                "/health",
                "/health",
                200,
                1,
                "1-620ca1d6-dddddddddddddddddddddddd",
            ),
        )
    ),
]
