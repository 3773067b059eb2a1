"""What queries return over the lines of ``lines.py`` (all three groups, the whole hour):
each query with its exact result rows, in order, absent fields left out. Each case was
checked by hand against the lines; together they cover every command, every function of
``functions.py``, the system fields, JSON paths, typing of comparisons, sorting, dedup and
the subquery a command after ``limit`` needs."""

from __future__ import annotations

from tests.query.insights.lines import STREAM

RUNS: list[tuple[str, list[dict[str, str]]]] = [
    (
        'filter @type = "START" | fields @requestId | sort @timestamp asc',
        [
            {"@requestId": "ea643eb8-1547-41f5-8c51-4ff6abe3e0d1"},
            {"@requestId": "c6af9ac6-7b61-11e6-9a41-93e812345678"},
            {"@requestId": "8f507cfc-0a1b-4697-b07a-ac58fc914c95"},
        ],
    ),
    (
        'filter @message like "timed out" | fields @requestId, @logStream',
        [{"@logStream": "2025/12/02/[$LATEST]0123456789abcdef0123456789abcdef"}],
    ),
    (
        'filter @type = "REPORT" | stats sum(@billedDuration) as billed, max(@maxMemoryUsed) as mem, '
        "min(@memorySize) as size, avg(@duration) as mean",
        [{"billed": "5621", "mean": "1873.2633333333333", "mem": "94000000", "size": "128000000"}],
    ),
    (
        "filter status in [500, 502] | fields requestId | sort requestId",
        [{"requestId": "a2"}, {"requestId": "a3"}],
    ),
    ("filter status not in [200] and ispresent(status) | stats count(*)", [{"count(*)": "3"}]),
    (
        'fields strlen(requestId) as n, toupper(httpMethod) as m | filter requestId = "a5"',
        [{"m": "GET", "n": "2"}],
    ),
    (
        'filter @logStream = "b2c3d4e5f6" | stats avg(responseLatency) as lat, '
        "count_distinct(resourcePath) as paths",
        [{"lat": "6409.6", "paths": "3"}],
    ),
    (
        'filter @type = "REPORT" | parse @message "Duration: * ms" as d | fields d | sort @timestamp',
        [{"d": "20.39"}, {}, {"d": "3000.00"}],
    ),
    (
        "stats count(*) as n by @log | sort n desc, @log",
        [
            {"@log": "000000000000:/aws/lambda/checkout", "n": "11"},
            {"@log": "000000000000:/aws/lambda/payment", "n": "6"},
            {"@log": "000000000000:/aws/apigateway/access", "n": "5"},
        ],
    ),
    (
        "filter @message like /(?i)TIMED OUT/ | fields @message",
        [
            {
                "@message": "2025-12-02T18:33:23.000Z 8f507cfc-0a1b-4697-b07a-ac58fc914c95 Task timed out "
                "after 3.00 seconds\n"
            }
        ],
    ),
    (
        'filter @message not like /INFO|ERROR|WARNING|\\{/ and @logStream like "LATEST" | stats '
        "count(*) as n",
        [{"n": "8"}],
    ),
    (
        'fields @timestamp, @ingestionTime | filter requestId = "a1"',
        [{"@ingestionTime": "2025-12-02 18:26:40.055", "@timestamp": "2025-12-02 18:26:40.050"}],
    ),
    (
        "stats earliest(@requestId) as first, latest(@requestId) as last by @log | sort @log",
        [
            {"@log": "000000000000:/aws/apigateway/access", "first": "a1", "last": "a5"},
            {
                "@log": "000000000000:/aws/lambda/checkout",
                "first": "ea643eb8-1547-41f5-8c51-4ff6abe3e0d1",
                "last": "8f507cfc-0a1b-4697-b07a-ac58fc914c95",
            },
            {
                "@log": "000000000000:/aws/lambda/payment",
                "first": "c6af9ac6-7b61-11e6-9a41-93e812345678",
                "last": "c6af9ac6-7b61-11e6-9a41-93e812345678",
            },
        ],
    ),
    (
        'filter requestId = "a2" | fields responseLatency / 1000 as secs, responseLatency % 7 as r, '
        "2 ^ 3 as p, -responseLatency as neg, abs(-3) as a, ceil(1.2) as c, floor(1.8) as f, "
        "greatest(1, 5, 3) as g, least(4, 2) as l, 1 + 2 * 3 - 4 as o",
        [
            {
                "a": "3",
                "c": "2",
                "f": "1",
                "g": "5",
                "l": "2",
                "neg": "-3010",
                "o": "3",
                "p": "8",
                "r": "0",
                "secs": "3.01",
            }
        ],
    ),
    (
        'filter requestId = "a3" | fields substr(path, 1, 6) as s, substr(path, 1) as s2, '
        'replace(path, "/", "|") as r, concat(httpMethod, " ", path) as k, coalesce(missing, "none") '
        'as co, tolower(httpMethod) as lo, trim("  x ") as t, ltrim(" y") as lt, rtrim("z ") as rt, '
        'strcontains(path, "orders") as sc',
        [
            {
                "co": "none",
                "k": "GET /orders/7",
                "lo": "get",
                "lt": "y",
                "r": "|orders|7",
                "rt": "z",
                "s": "orders",
                "s2": "orders/7",
                "sc": "1",
                "t": "x",
            }
        ],
    ),
    (
        'fields isempty(missing) as a, isempty(httpMethod) as b, isblank("  ") as c, '
        'ispresent(missing) as d | filter requestId = "a1"',
        [{"a": "1", "b": "0", "c": "1", "d": "0"}],
    ),
    (
        'filter requestId = "a4" | fields datefloor(@timestamp, 1h) as h, bin(1m) as m, '
        "toMillis(@timestamp) as ms, fromMillis(0) as z, dateceil(@timestamp, 1h) as up",
        [
            {
                "h": "2025-12-02 18:00:00.000",
                "m": "2025-12-02 18:33:00.000",
                "ms": "1764700401000",
                "up": "2025-12-02 19:00:00.000",
                "z": "1970-01-01 00:00:00.000",
            }
        ],
    ),
    (
        'fields @requestId | filter @log like "checkout" | sort @timestamp asc | dedup @requestId',
        [
            {},
            {"@requestId": "ea643eb8-1547-41f5-8c51-4ff6abe3e0d1"},
            {"@requestId": "8f507cfc-0a1b-4697-b07a-ac58fc914c95"},
            {},
        ],
    ),
    (
        "fields @requestId | limit 2",
        [
            {"@requestId": "8f507cfc-0a1b-4697-b07a-ac58fc914c95"},
            {"@requestId": "8f507cfc-0a1b-4697-b07a-ac58fc914c95"},
        ],
    ),
    (
        "stats count(*) as n by @log | filter n > 6 | display @log",
        [{"@log": "000000000000:/aws/lambda/checkout"}],
    ),
    (
        "filter ispresent(responseLatency) | sort responseLatency desc | fields responseLatency",
        [
            {"responseLatency": "29000"},
            {"responseLatency": "3010"},
            {"responseLatency": "25"},
            {"responseLatency": "12"},
            {"responseLatency": "1"},
        ],
    ),
    (
        'sort @timestamp asc | limit 3 | filter @log like "apigateway" | fields requestId',
        [{"requestId": "a1"}, {"requestId": "a2"}],
    ),
    (
        'filter @requestId = "ea643eb8-1547-41f5-8c51-4ff6abe3e0d1" | fields @xrayTraceId, '
        "@xraySegmentId | sort @timestamp asc",
        [
            {
                "@xraySegmentId": "4c72ac137fd02fb0",
                "@xrayTraceId": "1-643eb81e-7b15c13c3bff33247638ad8d",
            },
            {
                "@xraySegmentId": "4c72ac137fd02fb0",
                "@xrayTraceId": "1-643eb81e-7b15c13c3bff33247638ad8d",
            },
            {
                "@xraySegmentId": "4c72ac137fd02fb0",
                "@xrayTraceId": "1-643eb81e-7b15c13c3bff33247638ad8d",
            },
            {
                "@xraySegmentId": "4c72ac137fd02fb0",
                "@xrayTraceId": "1-643eb81e-7b15c13c3bff33247638ad8d",
            },
            {
                "@xraySegmentId": "4c72ac137fd02fb0",
                "@xrayTraceId": "1-643eb81e-7b15c13c3bff33247638ad8d",
            },
        ],
    ),
    (
        "filter @message =~ /Card/ | fields message, level, cold_start, function_memory_size",
        [
            {
                "cold_start": "true",
                "function_memory_size": "128",
                "level": "ERROR",
                "message": "Card declined",
            }
        ],
    ),
    (
        'filter @type = "REPORT" and @log like "payment" | fields record.metrics.durationMs as d, '
        "record.tracing.spanId as s, @initDuration as i, @memorySize as m",
        [{"d": "2599.4", "i": "549.04", "m": "128000000", "s": "24cd7d670fa455f0"}],
    ),
    (
        'filter errorType = "KeyError" | fields stackTrace.0 as frame, stackTrace.1 as none, '
        "stackTrace as all",
        [
            {
                "all": '["  File \\"/var/task/app.py\\", line 9, in handler\\n"]',
                "frame": '  File "/var/task/app.py", line 9, in handler\n',
            }
        ],
    ),
    (
        "filter @duration > 1000 | fields @requestId | sort @requestId",
        [
            {"@requestId": "8f507cfc-0a1b-4697-b07a-ac58fc914c95"},
            {"@requestId": "c6af9ac6-7b61-11e6-9a41-93e812345678"},
        ],
    ),
    (
        "filter ispresent(status) | stats count(status) as c, stddev(status) as sd, pct(status, 50) "
        "as med, percentile(status, 100) as top",
        [{"c": "5", "med": "500", "sd": "165.41825775893062", "top": "504"}],
    ),
    (
        'filter httpMethod = "GET" or status = 502 and resourcePath = "/orders" | fields requestId | '
        "sort requestId",
        [{"requestId": "a2"}, {"requestId": "a3"}, {"requestId": "a5"}],
    ),
    ("filter not (status = 200) and ispresent(status) | stats count(*) as n", [{"n": "3"}]),
    (
        "# a comment line\n"
        "fields `requestId` as `req-id` # trailing comment\n"
        '| filter requestId = "a1"',
        [{"req-id": "a1"}],
    ),
    (
        'fields requestId | filter ispresent(requestId) and @log like "api" | sort by requestId desc '
        "| limit 1",
        [{"requestId": "a5"}],
    ),
    (
        "filter ispresent(httpMethod) | stats sum(status) / count(*) as mean by httpMethod | sort "
        "httpMethod",
        [{"httpMethod": "GET", "mean": "350"}, {"httpMethod": "POST", "mean": "402"}],
    ),
    (
        'filter requestId = "a1"',
        [
            {
                "@log": "000000000000:/aws/apigateway/access",
                "@logStream": "b2c3d4e5f6",
                "@message": '{"requestTime":"02/Dec/2025:18:26:00 '
                '+0000","requestId":"a1","httpMethod":"POST","path":"/orders","resourcePath":"/orders","status":200,"responseLatency":25,"xrayTraceId":"1-620ca1d6-07f7494e51e410242c9d67f3","integrationRequestId":"ea643eb8-1547-41f5-8c51-4ff6abe3e0d1"}',
                "@timestamp": "2025-12-02 18:26:40.050",
            }
        ],
    ),
    ("stats count(*)", [{"count(*)": "22"}]),
    (
        'filter @type = "REPORT" | stats percentile(@duration, 50)',
        [{"percentile(@duration, 50)": "2599.4"}],
    ),
    ('fields requestId, status | display status | filter requestId = "a1"', [{"status": "200"}]),
    (
        'filter @type = "REPORT" and @log like "checkout" | parse @message "Billed Duration: * ms" '
        "as billed | sort @timestamp",
        [
            {
                "@log": "000000000000:/aws/lambda/checkout",
                "@logStream": "2025/12/02/[$LATEST]0123456789abcdef0123456789abcdef",
                "@message": "REPORT RequestId: ea643eb8-1547-41f5-8c51-4ff6abe3e0d1\tDuration: 20.39 ms\t"
                "Billed Duration: 21 ms\tMemory Size: 128 MB\tMax Memory Used: 57 MB\tInit "
                "Duration: 178.50 ms\t\n"
                "XRAY TraceId: 1-643eb81e-7b15c13c3bff33247638ad8d\tSegmentId: "
                "4c72ac137fd02fb0\tSampled: true\t\n",
                "@timestamp": "2025-12-02 18:26:40.301",
                "billed": "21",
            },
            {
                "@log": "000000000000:/aws/lambda/checkout",
                "@logStream": "2025/12/02/[$LATEST]0123456789abcdef0123456789abcdef",
                "@message": "REPORT RequestId: 8f507cfc-0a1b-4697-b07a-ac58fc914c95\tDuration: 3000.00 ms\t"
                "Billed Duration: 3000 ms\tMemory Size: 128 MB\tMax Memory Used: 64 MB\t\n",
                "@timestamp": "2025-12-02 18:33:23.002",
                "billed": "3000",
            },
        ],
    ),
    (
        'filter @message like "[WARNING]" | parse @message '
        "/\\t(?<reqId>[0-9a-f-]{36})\\t(?<text>.*)/ | display reqId, text",
        [{"reqId": "8f507cfc-0a1b-4697-b07a-ac58fc914c95", "text": "slow downstream\n"}],
    ),
    (
        "filter status >= 500 and status < 503 | stats count(*) as n by bin(5m) as t",
        [{"n": "2", "t": "2025-12-02 18:25:00.000"}],
    ),
    (
        'filter @type = "REPORT" | stats max(@timestamp) as last, min(@timestamp) as first',
        [{"first": "2025-12-02 18:26:40.301", "last": "2025-12-02 18:33:23.002"}],
    ),
    (
        'filter isValidIp("10.1.2.3") and isIpv4InSubnet("10.1.2.3", "10.0.0.0/8") and not '
        'isIpv4InSubnet("bogus", "10.0.0.0/8") | stats count(*) as n',
        [{"n": "22"}],
    ),
    (
        'filter @log = "000000000000:/aws/apigateway/access" and status = "200" | fields requestId | '
        "sort requestId",
        [{"requestId": "a1"}, {"requestId": "a5"}],
    ),
    (
        "stats count(*) as n by level | sort level",
        [{"level": "ERROR", "n": "3"}, {"level": "INFO", "n": "1"}, {"n": "18"}],
    ),
    # parse globs: a leading '*', a piece not found (all fields absent), multi-byte text
    (
        'filter requestId = "a3" | parse path "*/*" as first, rest | display first, rest',
        [{"first": "", "rest": "orders/7"}],
    ),
    (
        'filter requestId = "a3" | parse @message \'"path":"*"\' as p | display p',
        [{"p": "/orders/7"}],
    ),
    ('filter requestId = "a3" | parse path "zzz*" as p | display p', [{}]),
    (
        'fields concat("é:", requestId, ":ü") as s | filter requestId = "a3" '
        '| parse s "é:*:ü" as t | display t',
        [{"t": "a3"}],
    ),
    # stats of parsed fields over lines the parse does not match (read only where the
    # glob's text occurs): groups that only such lines hold keep their missing values,
    # an empty time bin included
    (
        'parse @message "Init Duration: * ms" as init | stats max(init) as m, count(init) as n, '
        "count_distinct(init) as u, sum(init) as s, pct(init, 50) as p by bin(5m) as t",
        [
            {"t": "2025-12-02 18:30:00.000", "n": "0", "u": "0"},
            {
                "t": "2025-12-02 18:25:00.000",
                "m": "178.5",
                "n": "1",
                "u": "1",
                "s": "178.5",
                "p": "178.5",
            },
        ],
    ),
    (
        'parse @message "Duration: * ms" as d | stats avg(d) as a, min(d) as lo by @log',
        [
            {"@log": "000000000000:/aws/apigateway/access"},
            {"@log": "000000000000:/aws/lambda/checkout", "a": "1510.195", "lo": "20.39"},
            {"@log": "000000000000:/aws/lambda/payment"},
        ],
    ),
    (
        'filter @log like "checkout" | parse @message "Max Memory Used: * MB" as mem '
        "| stats max(mem) as m, avg(mem) as a by bin(5m) as t, @logStream | sort t",
        [
            {"t": "2025-12-02 18:25:00.000", "@logStream": STREAM, "m": "57", "a": "57"},
            {"t": "2025-12-02 18:30:00.000", "@logStream": STREAM, "m": "64", "a": "64"},
        ],
    ),
    ('parse @message "zzz*" as z | stats count(z) as n, max(z) as m', [{"n": "0"}]),
    (
        "parse @message /Init Duration: (?<init>[0-9.]+)/ | stats min(init) as m by bin(5m) as t",
        [{"t": "2025-12-02 18:30:00.000"}, {"t": "2025-12-02 18:25:00.000", "m": "178.5"}],
    ),
    # two parses, a field of each: a line needs either's text
    (
        'parse @message "Billed Duration: * ms" as b | parse @message \'"level":"*"\' as lv '
        "| stats count(b) as nb, count_distinct(lv) as nl by bin(5m) as t",
        [
            {"t": "2025-12-02 18:30:00.000", "nb": "1", "nl": "0"},
            {"t": "2025-12-02 18:25:00.000", "nb": "1", "nl": "2"},
        ],
    ),
    # after stats, an aggregate's text names its column
    (
        "filter ispresent(status) | stats count(*), max(status) by httpMethod "
        "| sort count(*) desc | display httpMethod, `count(*)`, `max(status)`",
        [
            {"httpMethod": "POST", "count(*)": "3", "max(status)": "504"},
            {"httpMethod": "GET", "count(*)": "2", "max(status)": "500"},
        ],
    ),
    # a constant condition before a limit, with the log_requests join (an engine bug once)
    (
        'filter @requestId = "ea643eb8-1547-41f5-8c51-4ff6abe3e0d1" and 1 '
        "| fields @xraySegmentId | sort @timestamp asc | limit 2 | filter 1",
        [{"@xraySegmentId": "4c72ac137fd02fb0"}, {"@xraySegmentId": "4c72ac137fd02fb0"}],
    ),
]
