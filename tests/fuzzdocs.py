"""Hostile segment documents beside good ones, and the ingest property they must keep.

Strategies (hypothesis): :func:`good_documents` makes valid, richly filled documents
(HTTP, AWS, SQL, annotations, metadata, a cause, embedded subsegments);
:func:`hostile_documents` takes one of those and replaces one field - at any depth - by a
value of another JSON type, an extreme number, deep nesting or an odd string, or
mangles the JSON text itself. Neither knows what the server will make of a hostile
document: that is the point.

:func:`send_round` sends a round of them to a running server, over UDP and through
PutTraceSegments at once, and checks the property: every good document is stored
exactly as sent; every hostile one is either stored (and readable) or reported in
``UnprocessedTraceSegments`` (HTTP) or counted as dropped by reason (UDP); the counters
add up; the server keeps answering. Used by ``tests/server/test_fuzz_ingest.py`` (a
bounded number of examples) and ``benchmarks/fuzz_ingest.py`` (many more).
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from fluoroscope.model.ids import new_entity_id, new_trace_id
from tests.support import HEADER, ServerProcess, wait_for

__all__ = ["Outcome", "good_documents", "hostile_documents", "send_round"]

_BASE = float(int(time.time()))  # fixed per run: a replayed example draws alike
_names = st.sampled_from(["api", "orders-service", "λ-handler", "GET /users/{id}", "a" * 200])
_hex16 = st.just(None).map(lambda _: new_entity_id())


def _subsegment(start: float) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "name": st.sampled_from(["DynamoDB", "api.example.com", "SELECT", "work"]),
            "id": _hex16,
            "start_time": st.just(start + 0.01),
            "end_time": st.just(start + 0.05),
        },
        optional={
            "namespace": st.sampled_from(["aws", "remote", "local"]),
            "aws": st.just({"operation": "GetItem", "table_name": "users", "retries": 0}),
            "http": st.just(
                {
                    "request": {"method": "GET", "url": "https://x/"},
                    "response": {"status": 200, "content_length": 12},
                }
            ),
            "sql": st.just({"url": "postgres://db", "sanitized_query": "SELECT 1"}),
            "fault": st.booleans(),
        },
    )


@st.composite
def good_documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid segment document with fresh ids, started in the last minute."""
    start = _BASE - draw(st.floats(0, 60))
    doc: dict[str, Any] = {
        "name": draw(_names),
        "id": new_entity_id(),
        "trace_id": new_trace_id(start),
        "start_time": start,
        "end_time": start + draw(st.floats(0.001, 5)),
    }
    optional: dict[str, st.SearchStrategy[Any]] = {
        "http": st.fixed_dictionaries(
            {
                "request": st.just(
                    {"method": "POST", "url": "https://api/x", "client_ip": "10.0.0.1"}
                ),
                "response": st.builds(dict, status=st.sampled_from([200, 201, 404, 429, 500])),
            }
        ),
        "annotations": st.dictionaries(
            st.sampled_from(["customer", "size", "ok", "a_b"]),
            st.one_of(
                st.text(max_size=30),
                st.integers(-(2**53), 2**53),
                st.booleans(),
                st.floats(allow_nan=False, allow_infinity=False),
            ),
            max_size=4,
        ),
        "metadata": st.just({"default": {"nested": {"list": [1, "two", None, 3.5]}}}),
        "aws": st.just({"account_id": "123456789012", "xray": {"sdk": "fuzz"}}),
        "cause": st.just(
            {
                "working_directory": "/app",
                "exceptions": [
                    {"id": new_entity_id(), "type": "ValueError", "message": "bad <b>input</b>"}
                ],
            }
        ),
        "origin": st.sampled_from(["AWS::Lambda::Function", "AWS::EC2::Instance"]),
        "user": st.text(max_size=20),
        "error": st.booleans(),
        "subsegments": st.lists(_subsegment(start), max_size=3),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            doc[key] = draw(strategy)
    return doc


_extreme_numbers = st.sampled_from(
    [
        0,
        -1,
        -5,
        2**31,
        2**53 + 1,
        2**63 - 1,
        2**63,
        -(2**63) - 1,
        2**64,
        2**70,
        10**30,
        99_999_999_999,
        1e11,
        1e308,
        -1e308,
        5e-324,
        -0.0,
        0.5,
        1.5e300,
    ]
)
_odd_strings = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\u202e\u0041",
            "<img src=x onerror=alert(1)>",
            "\U0001f600" * 50,
            "\ud800",
            "x" * 10_000,
            "'; DROP TABLE spans; --",
            "\\",
            '"',
        ]
    ),
    st.text(max_size=50),
)
_any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


def _nested(levels: int) -> Any:
    value: Any = "bottom"
    for level in range(levels):
        value = [value] if level % 2 else {"k": value}
    return value


_hostile_values = st.one_of(
    _extreme_numbers,
    _odd_strings,
    _any_json,
    st.integers(100, 400).map(_nested),
    st.sampled_from([None, True, False, [], {}]),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in ``value`` a value sits at: dict keys and list indices, nested."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        found.append((*prefix, key))
        if isinstance(child, dict | list) and child:
            found.extend(_paths(child, (*prefix, key)))
    return found


_KEY_TARGETS = (
    "name",
    "id",
    "trace_id",
    "start_time",
    "end_time",
    "in_progress",
    "type",
    "parent_id",
    "http",
    "annotations",
    "subsegments",
    "cause",
    "error",
    "fault",
    "throttle",
    "namespace",
    "origin",
    "aws",
    "sql",
    "metadata",
)


@st.composite
def hostile_documents(draw: st.DrawFn) -> bytes:
    """A good document with one field replaced (or added, or removed), or its JSON text
    mangled; returned as JSON text. Trace and entity ids stay fresh unless mutated."""
    doc = draw(good_documents())
    doc.setdefault("http", {"response": {"status": 200}})
    doc.setdefault("annotations", {"k": 1})
    mode = draw(st.sampled_from(["replace", "replace", "replace", "add", "remove", "text"]))
    if mode == "text":
        text = json.dumps(doc).encode()
        cut = draw(st.integers(0, len(text)))
        return draw(
            st.sampled_from(
                [
                    text[:cut],
                    text[:cut] + b"\xff\xfe" + text[cut:],
                    b"[" + text + b"]",
                    text.replace(b'"name"', b'"name":1,"name"', 1),
                    b"\x00" * 10,
                ]
            )
        )
    if mode == "add":
        doc[draw(st.sampled_from(_KEY_TARGETS))] = draw(_hostile_values)
    else:
        path = draw(st.sampled_from(_paths(doc)))
        parent: Any = doc
        for key in path[:-1]:
            parent = parent[key]
        if mode == "remove":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(_hostile_values)
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")


@dataclass
class Outcome:
    """What one round did: documents sent, stored, refused or counted by reason."""

    sent: int = 0
    hostile_stored: int = 0
    hostile_refused: dict[str, int] = field(default_factory=dict)


def _counters(server: ServerProcess) -> dict[str, int]:
    return dict(server.status()["counters"])


def _settled_counters(server: ServerProcess) -> tuple[dict[str, int]] | None:
    counters = _counters(server)
    return (counters,) if _accounted(counters) else None  # a tuple: {} is an answer too


def _accounted(counters: dict[str, int]) -> bool:
    """Whether every document the server received so far is stored or counted: UDP
    datagrams received plus documents PutTraceSegments took equal documents stored
    plus datagrams refused or dropped by reason plus documents lost."""
    total = counters.get

    def add(prefix: str) -> int:
        return sum(v for k, v in counters.items() if k.startswith(prefix))

    received = total("udp_received", 0) + total("http_received", 0) - add("http_invalid_")
    # What the kernel dropped never reached the receiver: not in udp_received.
    dropped = add("udp_dropped_") - total("udp_dropped_kernel", 0)
    return received == total("stored_documents", 0) + add("udp_invalid_") + dropped + add("lost_")


def _delta(now: dict[str, int], before: dict[str, int], prefix: str) -> int:
    return sum(v - before.get(k, 0) for k, v in now.items() if k.startswith(prefix))


def _stored_documents(client: Any, trace_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every stored document of each trace (BatchGetTraces, all pages)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for start in range(0, len(trace_ids), 5):
        kwargs: dict[str, Any] = {"TraceIds": trace_ids[start : start + 5]}
        while True:
            page = client.batch_get_traces(**kwargs)
            for trace in page["Traces"]:
                found[trace["Id"]] = [json.loads(s["Document"]) for s in trace["Segments"]]
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
    return found


def _as_returned(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` as BatchGetTraces gives it back, up to the order of siblings:
    subsegments are stored one by one and nested again on the way out, in time order
    (siblings that start together in any order), and an empty ``subsegments`` array is
    not kept. Applied to what was sent and what came back alike."""
    if "subsegments" not in doc:
        return doc
    children = sorted((_as_returned(c) for c in doc["subsegments"]), key=lambda c: c["id"])
    rest = {k: v for k, v in doc.items() if k != "subsegments"}
    return {**rest, "subsegments": children} if children else rest


def _id_of(text: bytes) -> tuple[str | None, str | None]:
    """(trace id, id) of a hostile document's text, where it parses to strings."""
    try:
        doc = json.loads(text)
    except ValueError:
        return None, None
    if not isinstance(doc, dict):
        return None, None
    tid, eid = doc.get("trace_id"), doc.get("id")
    return (tid if isinstance(tid, str) else None), (eid if isinstance(eid, str) else None)


def send_round(
    server: ServerProcess,
    client: Any,
    good: list[dict[str, Any]],
    hostile: list[bytes],
    *,
    timeout: float = 20.0,
) -> Outcome:
    """Send ``good`` and ``hostile`` documents, interleaved, half over UDP and half in
    one PutTraceSegments; check the property (module docstring); raise AssertionError
    naming what broke it."""
    # What an earlier round left in flight (one that failed half-way) is settled first.
    try:
        (before,) = wait_for(lambda: _settled_counters(server), timeout=timeout)
    except AssertionError:
        raise AssertionError(f"counters never add up: {_counters(server)}") from None
    mixed: list[tuple[bytes, bool]] = [(json.dumps(d).encode(), True) for d in good]
    for index, text in enumerate(hostile):
        mixed.insert((index * 7) % (len(mixed) + 1), (text, False))
    by_udp, by_http = mixed[::2], mixed[1::2]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for text, _ in by_udp:
            sock.sendto(HEADER + text, server.udp_address)
    answer = client.put_trace_segments(
        TraceSegmentDocuments=[text.decode("utf-8", "surrogateescape") for text, _ in by_http]
    )
    refused_ids = {item.get("Id", "") for item in answer["UnprocessedTraceSegments"]}
    http_stored = len(by_http) - len(answer["UnprocessedTraceSegments"])
    for text, is_good in by_http:
        if is_good:
            assert json.loads(text)["id"] not in refused_ids, f"good document refused: {answer}"

    def settled() -> dict[str, int] | None:
        now = _counters(server)
        received = now.get("udp_received", 0) - before.get("udp_received", 0)
        stored = now.get("stored_documents", 0) - before.get("stored_documents", 0)
        counted = _delta(now, before, "udp_invalid_") + _delta(now, before, "udp_dropped_")
        if received == len(by_udp) and stored + counted == len(by_udp) + http_stored:
            return now
        return None

    try:
        now = wait_for(settled, timeout=timeout)
    except AssertionError:
        last = _counters(server)
        changed = {k: v - before.get(k, 0) for k, v in last.items() if v != before.get(k, 0)}
        raise AssertionError(
            f"counters do not add up: {len(by_udp)} sent over UDP, {http_stored} stored "
            f"through the API; changed: {changed}; over UDP: {[t[:300] for t, _ in by_udp]}"
        ) from None
    assert _delta(now, before, "lost_") == 0, f"documents lost: {now}"
    assert _accounted(now), f"the server's counters do not add up: {now}"
    outcome = Outcome(sent=len(mixed))
    outcome.hostile_refused = {
        k: v - before.get(k, 0)
        for k, v in now.items()
        if (k.startswith(("udp_invalid_", "http_invalid_", "udp_dropped_")))
        and v != before.get(k, 0)
    }
    trace_ids = sorted({d["trace_id"] for d in good})
    stored = _stored_documents(client, trace_ids)
    for doc in map(_as_returned, good):
        found = [_as_returned(d) for d in stored.get(doc["trace_id"], [])]
        assert doc in found, f"good document not stored as sent: {doc} in {found}"
    # A hostile document the server took over HTTP is readable.
    for text, is_good in by_http:
        tid, eid = _id_of(text)
        if is_good or tid is None or eid is None or eid in refused_ids:
            continue  # refused, or not identifiable: counted above
        outcome.hostile_stored += 1
        docs = _stored_documents(client, [tid]).get(tid, [])
        assert any(d.get("id") == eid for d in docs), f"accepted but not readable: {text[:200]!r}"
    return outcome
