"""The filter-expression corpus: valid expressions with their trees, and syntax errors.

``VALID`` pairs an expression with the expected tree printed by ``to_sexpr``; it holds
every example of ``reference/xray-protocol.md`` §5.4 (the first block), then
case-insensitivity, negation forms, implicit AND, precedence, annotations, ``id()``,
compound keywords, literals. ``ERRORS`` pairs an expression with the position the error
must point at and a fragment of its reason and hint.
"""

from __future__ import annotations

VALID: list[tuple[str, str]] = [
    ("responsetime > 5", "(> responsetime 5)"),
    ("duration >= 5 AND duration <= 8", "(and (>= duration 5) (<= duration 8))"),
    ("ok !partial duration < 3", "(and (flag ok) (not (flag partial)) (< duration 3))"),
    ("http.status != 200", "(!= http.status 200)"),
    ('http.url CONTAINS "/api/game/"', '(contains http.url "/api/game/")'),
    (
        'http.url BEGINSWITH "http://api.example.com/" AND http.url CONTAINS "/v2/" AND !service("api.example.com")',
        '(and (beginswith http.url "http://api.example.com/") (contains http.url "/v2/") (not (service "api.example.com")))',
    ),
    (
        'service("api.example.com") { fault OR responsetime > 2.5 } AND annotation.account = "12345"',
        '(and (service "api.example.com" (or (flag fault) (> responsetime 2.5))) (= annotation[account] "12345"))',
    ),
    (
        'edge("api.example.com", "backend.example.com") { error }',
        '(edge "api.example.com" "backend.example.com" (flag error))',
    ),
    (
        'service(id(name: "random-name", type: "AWS::Lambda::Function")) { error }',
        '(service id(name="random-name" type="AWS::Lambda::Function") (flag error))',
    ),
    (
        'service(id(type: "AWS::Lambda::Function")) { error }',
        '(service id(type="AWS::Lambda::Function") (flag error))',
    ),
    ('annotation.gameid = "817DL6VO"', '(= annotation[gameid] "817DL6VO")'),
    ("annotation.age > 29", "(> annotation[age] 29)"),
    ("!annotation.age", "(not (exists annotation[age]))"),
    ('user CONTAINS ""', '(contains user "")'),
    (
        'group.name = "high_response_time" AND user = "alice"',
        '(and (group name "high_response_time") (= user "alice"))',
    ),
    (
        'service("data-plane") { root = true and fault = true }',
        '(service "data-plane" (and (flag root) (flag fault)))',
    ),
    ('rootcause.fault.service { name = "Auth" }', '(rootcause fault.service (= name "Auth"))'),
    (
        "rootcause.responsetime.entity { last and coverage > 0.8 }",
        "(rootcause responsetime.entity (and (flag last) (> coverage 0.8)))",
    ),
    (
        'rootcause.fault.entity { last and name = "deserialize" }',
        '(rootcause fault.entity (and (flag last) (= name "deserialize")))',
    ),
    # case-insensitivity, negation forms, implicit AND, precedence
    ("RESPONSETIME > 5", "(> responsetime 5)"),
    ("ResponseTime > 5 and Fault", "(and (> responsetime 5) (flag fault))"),
    ("HTTP.Status = 500 Or http.STATUS = 502", "(or (= http.status 500) (= http.status 502))"),
    ("FAULT = TRUE", "(flag fault)"),
    ("fault != false", "(flag fault)"),
    ("fault = false", "(not (flag fault))"),
    ("fault != TRUE", "(not (flag fault))"),
    ("NOT fault", "(not (flag fault))"),
    ("not not fault", "(not (not (flag fault)))"),
    ("!!fault", "(not (not (flag fault)))"),
    ("ok partial", "(and (flag ok) (flag partial))"),
    ("fault OR error throttle", "(or (flag fault) (and (flag error) (flag throttle)))"),
    ("fault AND error OR throttle", "(or (and (flag fault) (flag error)) (flag throttle))"),
    ("fault OR error AND throttle", "(or (flag fault) (and (flag error) (flag throttle)))"),
    ("(fault OR error) AND throttle", "(and (or (flag fault) (flag error)) (flag throttle))"),
    ("!(fault OR error)", "(not (or (flag fault) (flag error)))"),
    ("!responsetime > 5", "(not (> responsetime 5))"),
    ("((fault))", "(flag fault)"),
    ("(fault OR (error OR throttle))", "(or (flag fault) (flag error) (flag throttle))"),
    (
        "(fault AND error) AND (throttle AND ok)",
        "(and (flag fault) (flag error) (flag throttle) (flag ok))",
    ),
    # annotations: dotted and bracket keys, every value type
    ('annotation[key.with.dots] = "x"', '(= annotation[key.with.dots] "x")'),
    ('annotation["http.request.method"] = "GET"', '(= annotation[http.request.method] "GET")'),
    ('annotation[aws:ecs:task] BEGINSWITH "arn:"', '(beginswith annotation[aws:ecs:task] "arn:")'),
    ("annotation[ spaced ] = 1", "(= annotation[spaced] 1)"),
    ('annotation["a]b c"] != "x"', '(!= annotation[a]b c] "x")'),
    ("annotation[otel/attr@v1-2$] = 2", "(= annotation[otel/attr@v1-2$] 2)"),
    ('Annotation.Gameid = "x"', '(= annotation[Gameid] "x")'),
    ("annotation.flag = true", "(= annotation[flag] true)"),
    ("annotation.flag != false", "(!= annotation[flag] false)"),
    ("annotation.n >= -1.5e3", "(>= annotation[n] -1500)"),
    ("annotation.n = 1e2", "(= annotation[n] 100)"),
    ('annotation.s ENDSWITH ".json"', '(endswith annotation[s] ".json")'),
    ("annotation.n < .5", "(< annotation[n] 0.5)"),
    # service(), id(), edge(), rootcause.*, group, literals
    (
        'id(name: "x", type: "AWS::Lambda::Function")',
        '(service id(name="x" type="AWS::Lambda::Function"))',
    ),
    ('id(account.id: "123456789012")', '(service id(account="123456789012"))'),
    ("service()", "(service *)"),
    ("service() { fault }", "(service * (flag fault))"),
    ('service("api")', '(service "api")'),
    ('!service("x")', '(not (service "x"))'),
    (
        'service(id(name: "a", type: "AWS::EC2::Instance", account.id: "123")) { responsetime >= 1 http.status = 503 }',
        '(service id(name="a" type="AWS::EC2::Instance" account="123") (and (>= responsetime 1) (= http.status 503)))',
    ),
    ('service("api") { annotation.tenant = "t1" }', '(service "api" (= annotation[tenant] "t1"))'),
    (
        'service("api") { name = "api" AND type = "AWS::EC2::Instance" }',
        '(service "api" (and (= name "api") (= type "AWS::EC2::Instance")))',
    ),
    (
        'edge("a", id(name: "b", type: "AWS::DynamoDB::Table"))',
        '(edge "a" id(name="b" type="AWS::DynamoDB::Table"))',
    ),
    (
        'edge(id(name: "a"), "b") { responsetime > 1 OR http.status >= 500 }',
        '(edge "a" "b" (or (> responsetime 1) (>= http.status 500)))',
    ),
    (
        'rootcause.error.exception { message CONTAINS "timeout" AND name = "ReadTimeout" }',
        '(rootcause error.exception (and (contains message "timeout") (= name "ReadTimeout")))',
    ),
    ("rootcause.fault.exception { first }", "(rootcause fault.exception (flag first))"),
    (
        "rootcause.error.service { inferred AND !remote }",
        "(rootcause error.service (and (flag inferred) (not (flag remote))))",
    ),
    ("rootcause.error.entity { index = 0 }", "(rootcause error.entity (= index 0))"),
    (
        "rootcause.fault.exception { index >= 1 AND !last }",
        "(rootcause fault.exception (and (>= index 1) (not (flag last))))",
    ),
    (
        'rootcause.json = #[{"Services": [{"Name": "api", "AccountId": "123", "EntityPath": '
        '[{"Name": "api", "Exceptions": [{"Name": "E", "Message": "m"}]}]}], '
        '"ClientImpacting": true}]',
        '(rootcause.json [{"ClientImpacting":true,"Services":[{"AccountId":"123","EntityPath":'
        '[{"Exceptions":[{"Message":"m","Name":"E"}],"Name":"api"}],"Name":"api"}]}])',
    ),
    (
        'edge(id(name: "a", account.id: "1"), id(account.id: "2"))',
        '(edge id(name="a" account="1") id(account="2"))',
    ),
    (
        'rootcause.responsetime.service { type = "AWS::Lambda" coverage >= 0.5 }',
        '(rootcause responsetime.service (and (= type "AWS::Lambda") (>= coverage 0.5)))',
    ),
    (
        'rootcause.json = #[{ "Services": [ { "Name": "GetWeatherData", "EntityPath": [ { "Name": "GetWeatherData" }, { "Name": "get_temperature" } ] } ] }]',
        '(rootcause.json [{"Services":[{"EntityPath":[{"Name":"GetWeatherData"},{"Name":"get_temperature"}],"Name":"GetWeatherData"}]}])',
    ),
    (
        'group.arn = "arn:aws:xray:us-east-1:123456789012:group/g/ABC"',
        '(group arn "arn:aws:xray:us-east-1:123456789012:group/g/ABC")',
    ),
    ('http.url = "a\\"b\\\\c\\n\\u00e9\\ud83d\\ude00"', '(= http.url "a\\"b\\\\c\\né😀")'),
    (
        'http.method = "GET" http.useragent CONTAINS "curl" http.clientip = "10.0.0.1"',
        '(and (= http.method "GET") (contains http.useragent "curl") (= http.clientip "10.0.0.1"))',
    ),
    (
        'availabilityzone = "us-east-1a" OR instance.id = "i-123" OR resource.arn BEGINSWITH "arn:"',
        '(or (= availabilityzone "us-east-1a") (= instance.id "i-123") (beginswith resource.arn "arn:"))',
    ),
    ("http.url", "(exists http.url)"),
    ("!user", "(not (exists user))"),
    ("duration<-1", "(< duration -1)"),
    ("responsetime>=0.25", "(>= responsetime 0.25)"),
    ("http.status=200", "(= http.status 200)"),
    ("inferred", "(flag inferred)"),
]

ERRORS: list[tuple[str, int, str]] = [
    # empty, unbalanced parentheses and braces
    ("", 0, "empty filter expression; expected a condition such as 'responsetime > 5'"),
    ("   ", 3, "empty filter expression; expected a condition such as 'responsetime > 5'"),
    ("(fault", 6, "expected ')' to close the '(' opened at position 0, found end of expression"),
    ("((fault)", 8, "expected ')' to close the '(' opened at position 0, found end of expression"),
    ("fault)", 5, "unexpected ')' with nothing open to close"),
    ("fault))", 5, "unexpected ')' with nothing open to close"),
    (
        'service("a") { fault',
        20,
        "expected '}' to close the '{' opened at position 13, found end of expression",
    ),
    ('service("a") fault }', 19, "unexpected '}' with nothing open to close"),
    ('service("a" { fault }', 12, "expected ')' to close 'service(', found '{'"),
    # unbalanced parentheses and braces above; unknown keywords, wrong types below
    ("resposnetime > 3", 0, "unknown keyword 'resposnetime'; did you mean 'responsetime'?"),
    ("faultt", 0, "unknown keyword 'faultt'; did you mean 'fault'?"),
    (
        'rootcause.fault.servce { name = "x" }',
        0,
        "unknown keyword 'rootcause.fault.servce'; did you mean 'rootcause.fault.service'?",
    ),
    (
        'fault.rootcause { name = "x" }',
        0,
        "unknown keyword 'fault.rootcause'; did you mean 'rootcause.fault.service'?",
    ),
    ("annotaton.x = 1", 0, "unknown keyword 'annotaton.x'; did you mean 'annotation'?"),
    ('responsetime > "slow"', 15, "expected a number after 'responsetime >', found \"slow\""),
    ("responsetime >", 14, "expected a number after 'responsetime >', found end of expression"),
    (
        "responsetime",
        12,
        "expected a comparison operator (= != < <= > >=) after 'responsetime', found end of expression",
    ),
    (
        "responsetime CONTAINS 5",
        13,
        "operator 'CONTAINS' does not apply to the number keyword 'responsetime'; use one of = != < <= > >=",
    ),
    (
        'http.url > "a"',
        9,
        "operator '>' does not apply to the string keyword 'http.url'; use one of = != CONTAINS BEGINSWITH ENDSWITH",
    ),
    ("http.url = 5", 11, "expected a string after 'http.url =', found 5"),
    ("user CONTAINS", 13, "expected a string after 'user CONTAINS', found end of expression"),
    ("fault = 5", 8, "expected true or false after 'fault =', found 5"),
    (
        "fault > true",
        6,
        "operator '>' does not apply to the boolean keyword 'fault'; use one of = !=",
    ),
    ('fault = "true"', 8, "expected true or false after 'fault =', found \"true\""),
    ('annotation.x < "a"', 15, "expected a number after 'annotation.x <', found \"a\""),
    ("annotation.x CONTAINS 5", 22, "expected a string after 'annotation.x CONTAINS', found 5"),
    (
        "annotation.x =",
        14,
        "expected a string, a number, true or false after 'annotation.x =', found end of expression",
    ),
    ('http.url = "abc', 11, "unterminated string"),
    ('http.url = "a\tb"', 13, "control character U+0009 in string; escape it (e.g. \\n, \\t)"),
    # operators without operands, trailing garbage
    ("fault AND", 9, "expected a condition after 'AND', found end of expression"),
    ("AND fault", 0, "expected a condition, found 'AND'"),
    ("OR fault", 0, "expected a condition, found 'OR'"),
    ("fault OR", 8, "expected a condition after 'OR', found end of expression"),
    ("fault AND AND ok", 10, "expected a condition after 'AND', found 'AND'"),
    ("!", 1, "expected a condition after '!', found end of expression"),
    ("fault !", 7, "expected a condition after '!', found end of expression"),
    ("> 5", 0, "expected a condition, found '>'"),
    ("= fault", 0, "expected a condition, found '='"),
    ("fault 5", 6, "expected AND, OR or a condition, found 5"),
    ('fault "x"', 6, 'expected AND, OR or a condition, found "x"'),
    ("fault ,", 6, "expected AND, OR or a condition, found ','"),
    # keywords out of place, compound forms
    ("root", 0, "'root' is not allowed at trace level; use it inside service(){...}"),
    (
        'service("a") { service("b") }',
        15,
        "'service' is not allowed inside service(){...}; use it at trace level or in an entity selector",
    ),
    (
        'service("a") { rootcause.fault.service { name = "x" } }',
        15,
        "'rootcause.fault.service' is not allowed inside service(){...}; use it at trace level",
    ),
    (
        "rootcause.fault.service { fault }",
        26,
        "'fault' is not allowed inside rootcause.*{...}; use it at trace level or inside edge(){...} or inside service(){...}",
    ),
    (
        "rootcause.fault.service { annotation.x = 1 }",
        26,
        "annotations are not allowed inside rootcause.*{...}",
    ),
    ('edge("a") { fault }', 8, "expected ',' between the two services of 'edge(...)', found ')'"),
    ('edge("a", "b" { fault }', 14, "expected ')' to close 'edge(', found '{'"),
    (
        "edge() { fault }",
        5,
        "expected a service name (a string) or id(...) in 'edge(...)', found ')'",
    ),
    ("service(5)", 8, "expected a service name (a string) or id(...) in 'service(...)', found 5"),
    ("service(id())", 11, "id(...) needs at least one of name:, type:, account.id:"),
    ('id(name: "a", name: "b")', 14, "'name' is given twice in id(...)"),
    ('id(nom: "a")', 3, "expected name:, type: or account.id: in id(...), found 'nom'"),
    ('id(name "a")', 8, "expected ':' after 'name', found \"a\""),
    ("id(name: a)", 9, "expected a string after 'name:', found 'a'"),
    ('service("a") {}', 14, "expected a condition inside '{...}', found '}'"),
    (
        "rootcause.fault.service",
        23,
        "expected '{' after 'rootcause.fault.service', found end of expression",
    ),
    (
        'rootcause.fault.service name = "x"',
        24,
        "expected '{' after 'rootcause.fault.service', found 'name'",
    ),
    (
        'rootcause.json = "x"',
        17,
        "expected a JSON literal #[...] after 'rootcause.json =', found \"x\"",
    ),
    ("rootcause.json = #[1]", 17, "a #[...] literal must hold JSON objects"),
    ('rootcause.json = #[{"a": }]', 25, "invalid JSON literal: Expecting value"),
    ('rootcause.json = #{"a": 1}', 17, "expected '[' after '#' (a JSON literal #[...])"),
    ("group.name", 10, "expected '=' after 'group.name', found end of expression"),
    ("group.name = 5", 13, "expected a string after 'group.name =', found 5"),
    ('group.name != "g"', 11, "expected '=' after 'group.name', found '!='"),
    ("annotation", 10, "expected '.key' or '[key]' after 'annotation'"),
    ("annotation.", 11, "expected a name after 'annotation.'"),
    ("annotation[]", 11, "expected an annotation key after 'annotation['"),
    (
        "annotation[x",
        12,
        "expected ']' to close the 'annotation[' opened at position 0, found end of expression",
    ),
    ("http.", 5, "expected a name after 'http.'"),
    # lexical errors
    ("'abc'", 0, 'unexpected character "\'"; strings use double quotes'),
    ("responsetime > 5s", 16, "malformed number"),
    ("responsetime > 1.2.3", 18, "malformed number"),
    ("responsetime > 1e999", 15, "number out of range"),
    ('http.url = "\\q"', 12, "unknown escape '\\q' in string; write '\\\\' for a backslash"),
    ('http.url = "\\u12"', 12, "expected four hex digits after '\\u'"),
    ('http.url = "\\ud800"', 12, "unpaired surrogate escape in string"),
    ("fault ; ok", 6, "unexpected character ';'"),
    ("fault & ok", 6, "unexpected character '&'; use AND"),
    ("fault || ok", 6, "unexpected character '|'; use OR"),
    ("fault \x01 ok", 6, "control character U+0001 is not allowed"),
    ('http.url = "a\x7fb"', 13, "control character U+007F in string; escape it (e.g. \\n, \\t)"),
    ("fault && ok", 6, "unexpected character '&'; use AND"),
]
