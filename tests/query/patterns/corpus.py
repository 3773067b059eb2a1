"""The filter-pattern corpus: the lines patterns run over, valid patterns with the lines
each must select, and errors with the position they must point at.

``LINES`` are numbered from 1 in order (their ``seq``). ``MATCHES`` pairs a pattern
with the numbers of the lines it selects: every form of ``reference/logs.md`` §3.3.
``ERRORS`` pairs a pattern with the error's position and a fragment of its reason.
"""

from __future__ import annotations

LINES: list[str] = [
    "ERROR Exception in thread main",  # 1
    "INFO all good",  # 2
    "WARN [ERROR] nested",  # 3
    '{"level":"ERROR","n":5,"user":{"id":"u-1","tags":["a","b"]},"ok":true,"gone":null}',  # 4
    '{"level":"INFO","n":50,"user":{"id":"x-2"},"ok":false}',  # 5
    '127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326',  # 6
    '10.0.0.2 - bob [10/Oct/2000:13:55:37 -0700] "POST /x HTTP/1.0" 503 12',  # 7
    "Task timed out after 3.00 seconds: 1-5f4b3c2a-aaaaaaaaaaaaaaaaaaaaaaaa",  # 8
    "REPORT RequestId: ea643eb8\tDuration: 20.39 ms\tBilled Duration: 21 ms\t",  # 9
    '{"level":"WARNING","message":"slow","requestId":"8f507cfc","latency":"1200"}',  # 10
]

MATCHES: list[tuple[str, list[int]]] = [
    ("", list(range(1, 11))),
    ('" "', list(range(1, 11))),
    ("   ", list(range(1, 11))),
    ("ERROR", [1, 3, 4]),
    ("ERROR Exception", [1]),
    ("Exception ERROR", [1]),
    ("error", []),  # case-sensitive
    ("?WARN ?INFO", [2, 3, 5, 10]),
    ("ERROR -nested", [1, 4]),
    ("-ERROR -INFO", [6, 7, 8, 9, 10]),
    ('"timed out"', [8]),
    ('"1-5f4b3c2a-aaaaaaaaaaaaaaaaaaaaaaaa"', [8]),
    ('REPORT "Billed Duration"', [9]),
    ('"a \\"quoted\\" phrase"', []),
    ("ERROR ?thread ?nested", [1, 3]),
    ('{ $.level = "ERROR" }', [4]),
    ("{$.level=ERROR}", [4]),
    ("{ $.level = ERR* }", [4]),
    ('{ $.level = "*ING" }', [10]),
    ('{ $.level != "ERROR" }', [5, 10]),
    ("{ $.n > 10 }", [5]),
    ("{ $.n >= 5 }", [4, 5]),
    ("{ $.n < 50 }", [4]),
    ("{ $.n <= 50 }", [4, 5]),
    ("{ $.n = 50 }", [5]),
    ("{ $.n != 5 }", [5]),
    ("{ $.latency > 1000 }", [10]),  # a number written as a JSON string
    ('{ $.n = 5 && $.user.id = "u-1" }', [4]),
    ('{ ($.n = 5) || $.user.tags[1] = "b" }', [4]),
    ('{ $.level = "INFO" || $.level = "WARNING" && $.message = "slow" }', [5, 10]),
    ('{ ($.level = "INFO" || $.level = "WARNING") && $.n = 50 }', [5]),
    ('{ $.user.tags[0] = "a" }', [4]),
    ("{ $.gone IS NULL }", [4]),
    ("{ $.ok IS TRUE }", [4]),
    ("{ $.ok is false }", [5]),
    ("{ $.user.tags NOT EXISTS }", [5, 10]),
    ("{ $.nosuch = * }", []),
    ("%[Tt]imeout|timed out%", [8]),
    ("%^\\{.*WARNING%", [10]),
    ("[ip, id, user, ts, request, status=5*, bytes]", [7]),
    ("[ip, id, user, ts, request, status, bytes]", [6, 7, 8]),  # 8 has seven words too
    ("[ip, ..., status = 200 || status = 503, bytes > 100]", [6]),
    ("[..., bytes < 100]", [7]),  # "INFO all good": 'good' is no number
    ("[ip, user]", []),
    ('[ip, ..., request = "*POST*", status, bytes]', [7]),
    ("[ip, id, user=frank, ...]", [6]),
    ("[level, ..., word = nested]", [3]),
]

ERRORS: list[tuple[str, int, str]] = [
    ('"unterminated', 0, "unterminated quoted phrase"),
    ('ERROR ""', 6, "empty quoted phrase"),
    ("{", 1, "expected a selector such as $.level, found end of pattern"),
    ("{}", 1, "expected a condition"),
    ("{ $.level = }", 12, "expected a value after '$.level' ="),
    ("{ $.level }", 10, "expected an operator"),
    ('{ $.level = "x"', 15, "'&&', '||' or '}' to close the '{' at position 0"),
    ('{ $.level = "x" } ERROR', 18, "after the pattern"),
    ('{ level = "x" }', 2, "expected a selector such as $.level"),
    ("{ $ = 1 }", 3, "expected '.key' or '[index]' after '$'"),
    ("{ $. = 1 }", 4, "expected a key after '.'"),
    ("{ $.a[x] = 1 }", 5, "expected an array index"),
    ("{ $.a.* = 1 }", 6, "expected a key after '.'"),
    ('{ $.a > "x" }', 6, "operator > needs a number"),
    ("{ $.a > abc }", 6, "operator > needs a number"),
    ("{ $.a IS NOT NULL }", 9, "expected IS NULL or IS TRUE or IS FALSE"),
    ("{ $.a NOT NULL }", 10, "expected NOT EXISTS"),
    ("{ ($.a = 1 }", 11, "')' to close the '(' at position 2"),
    ("{ $.a = 1 && }", 13, "expected a selector"),
    ("{ $.a = 1 & $.b = 2 }", 10, "'&&', '||' or '}'"),
    ("{ " + "(" * 40 + "$.a = 1" + ")" * 40 + " }", 32, "nests deeper than 30 levels"),
    ("%abc", 0, "unterminated regular expression"),
    ("%%", 0, "empty regular expression"),
    ("%(?=x)%", 0, "invalid regular expression"),
    ("[", 1, "expected a column name or '...'"),
    ("[a, b", 5, "',' or ']' to close the '[' at position 0"),
    ("[a, a]", 0, "a column name is given twice"),
    ("[a = ]", 5, "expected a value"),
    ("[a = 1 ||]", 9, "expected 'a' again after '||'"),
    ("[a = 1 || b = 2]", 10, "expected 'a' again"),
    ("[a = 1 || a = 2 && a = 3]", 16, "mixing '&&' and '||'"),
    ("[..., a = 1, ...]", 6, "has no fixed place"),
    ("[a > x]", 3, "operator > needs a number"),
    ("x" * 1025, 1024, "the limit is 1024"),
]
