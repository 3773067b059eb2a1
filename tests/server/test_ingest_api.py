"""PutTraceSegments and the UDP listener against bad input, through real clients.

Each bad document is reported (HTTP) or counted (UDP) and never affects the others,
the listener or the store.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
import requests

from fluoroscope.model.ids import new_entity_id, new_trace_id
from tests.support import HEADER, ServerProcess, get_documents, segment, wait_for


def _post(
    server: ServerProcess, path: str, body: bytes, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        f"{server.url}{path}",
        data=body,
        method="POST",
        headers=headers or {"Content-Type": "application/json"},  # urllib's default is a form's
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                json.loads(response.read() or b"null"),
            )
    except urllib.error.HTTPError as err:
        return (
            err.code,
            {k.lower(): v for k, v in err.headers.items()},
            json.loads(err.read() or b"null"),
        )


def test_batch_mixing_good_and_malformed_documents(server: ServerProcess) -> None:
    client = server.xray()
    good = [segment(), segment(), segment(extra_field={"kept": [1, 2]})]
    now = time.time()
    bad = {
        "not json": "{not json",
        "0123456789abcdef": json.dumps(
            {**segment(), "id": "0123456789abcdef", "trace_id": "1-xyz"}
        ),
        "fedcba9876543210": json.dumps(
            {**segment(), "id": "fedcba9876543210", "start_time": "yesterday"}
        ),
        "aaaaaaaaaaaaaaaa": json.dumps(
            {
                "id": "aaaaaaaaaaaaaaaa",
                "trace_id": new_trace_id(),
                "start_time": now,
                "end_time": now,
            }
        ),
        "bbbbbbbbbbbbbbbb": json.dumps(
            {**segment(), "id": "bbbbbbbbbbbbbbbb", "end_time": now - 100}
        ),
        "cccccccccccccccc": json.dumps(
            {
                **segment(),
                "id": "cccccccccccccccc",
                "start_time": now + 10 * 86400,
                "end_time": now + 10 * 86400,
            }
        ),
        "dddddddddddddddd": json.dumps(
            {**segment(), "id": "dddddddddddddddd", "metadata": {"x": "y" * 70_000}}
        ),
        "eeeeeeeeeeeeeeee": json.dumps(
            {**segment(), "id": "eeeeeeeeeeeeeeee", "start_time": now * 1000}
        ),
        "BADID": json.dumps({**segment(), "id": "BADID"}),
        "ffffffffffffffff": json.dumps(
            {
                **segment(),
                "id": "ffffffffffffffff",
                "subsegments": [
                    {"name": "s", "id": "nothex!!nothex!!", "start_time": now, "end_time": now}
                ],
            }
        ),
    }
    documents = [json.dumps(d) for d in good] + list(bad.values())
    response = client.put_trace_segments(TraceSegmentDocuments=documents)
    unprocessed = {u["Id"]: u for u in response["UnprocessedTraceSegments"]}
    assert len(response["UnprocessedTraceSegments"]) == len(bad)
    messages = {u["Message"] for u in response["UnprocessedTraceSegments"]}
    assert any("not valid JSON" in m for m in messages)
    assert "trace id" in unprocessed["0123456789abcdef"]["Message"]
    assert unprocessed["0123456789abcdef"]["ErrorCode"] == "InvalidTraceId"
    assert "start_time" in unprocessed["fedcba9876543210"]["Message"]
    assert "'name'" in unprocessed["aaaaaaaaaaaaaaaa"]["Message"]
    assert "precedes" in unprocessed["bbbbbbbbbbbbbbbb"]["Message"]
    assert "future" in unprocessed["cccccccccccccccc"]["Message"]
    assert unprocessed["dddddddddddddddd"]["ErrorCode"] == "DocumentTooLarge"
    assert "milliseconds" in unprocessed["eeeeeeeeeeeeeeee"]["Message"]
    assert unprocessed["BADID"]["ErrorCode"] == "InvalidId"
    assert unprocessed["ffffffffffffffff"]["Message"].startswith("subsegments[0]: 'id'")
    # Acknowledged means stored: readable right away.
    for doc in good:
        assert get_documents(client, doc["trace_id"]) == [doc]  # unknown fields are kept


def test_request_level_errors_use_xray_error_shape(server: ServerProcess) -> None:
    client = server.xray()
    with pytest.raises(botocore.exceptions.ClientError) as err:
        client.get_trace_summaries(StartTime=time.time(), EndTime=time.time() - 10)
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "EndTime" in err.value.response["Error"]["Message"]

    status, headers, body = _post(server, "/TraceSegments", b"")
    assert status == 400 and headers["x-amzn-errortype"] == "InvalidRequestException"
    assert (
        body["__type"] == "InvalidRequestException" and "TraceSegmentDocuments" in body["message"]
    )
    status, _, body = _post(server, "/TraceSegments", b"[1, 2")
    assert status == 400 and "not valid JSON" in body["message"]
    status, _, body = _post(server, "/TraceSegments", b"\xff\xfe\x00garbage")
    assert status == 400
    status, _, body = _post(
        server, "/TraceSegments", json.dumps({"TraceSegmentDocuments": ["{}"] * 1001}).encode()
    )
    assert status == 400 and "limit" in body["message"]
    status, headers, body = _post(server, "/NoSuchOperation", b"{}")
    assert status == 404 and headers["x-amzn-errortype"] == "UnknownOperationException"
    status, _, body = _post(server, "/TelemetryRecords", b"")
    assert (status, body) == (200, {})
    assert "x-amzn-requestid" in headers


def test_unsigned_requests_are_accepted(server: ServerProcess) -> None:
    doc = segment()
    response = server.xray(unsigned=True).put_trace_segments(
        TraceSegmentDocuments=[json.dumps(doc)]
    )
    assert response["UnprocessedTraceSegments"] == []
    assert get_documents(server.xray(), doc["trace_id"]) == [doc]


def test_udp_garbage_is_counted_and_dropped(server: ServerProcess) -> None:
    before = server.status()["counters"]
    good = segment()
    oversized = segment(metadata={"blob": {"x": "y" * 66_000}})
    server.send_udp(
        b"no header line at all",
        b'{"format":"xml","version":1}\n' + json.dumps(segment()).encode(),
        b'{"format": "json", "version": 2}\n' + json.dumps(segment()).encode(),
        b"not json\n" + json.dumps(segment()).encode(),
        HEADER,  # header, no body
        HEADER + b'{"name": "truncated", "id": "00112233445566',
        HEADER + b"\xff\xfe\xfd not utf-8",
        HEADER + json.dumps({"name": "x"}).encode(),
        HEADER + json.dumps(oversized).encode()[:65_000],
        b'{"format": "JSON", "version": 1}\n'
        + json.dumps(good).encode(),  # spaced, upper case: valid
    )
    client = server.xray()
    assert wait_for(lambda: get_documents(client, good["trace_id"])) == [good]

    def dropped() -> dict[str, int] | None:
        now = server.status()["counters"]
        delta = {k: now.get(k, 0) - before.get(k, 0) for k in now}
        invalid = sum(v for k, v in delta.items() if k.startswith("udp_invalid_"))
        return delta if invalid >= 4 else None

    delta = wait_for(dropped)
    assert delta["udp_dropped_no_header"] == 1
    assert delta["udp_dropped_bad_header"] == 3
    assert delta["udp_dropped_empty"] == 1
    assert delta["udp_invalid_json"] == 3  # truncated, not UTF-8, cut oversize
    assert delta["udp_invalid_missing_field"] == 1
    # The listener is still alive and storing.
    later = segment()
    server.send_documents(later)
    assert wait_for(lambda: get_documents(client, later["trace_id"])) == [later]


def test_merge_in_any_order_and_in_progress_replaced(server: ServerProcess) -> None:
    client = server.xray()
    now = time.time()
    trace_id = new_trace_id(now)
    seg_id, sub_id, deep_id = new_entity_id(), new_entity_id(), new_entity_id()
    in_progress = {
        "name": "api",
        "id": seg_id,
        "trace_id": trace_id,
        "start_time": now,
        "in_progress": True,
    }
    streamed_deep = {
        "name": "deep", "id": deep_id, "trace_id": trace_id, "type": "subsegment",
        "parent_id": sub_id, "start_time": now + 0.02, "end_time": now + 0.03,
    }  # fmt: skip
    complete = {
        "name": "api", "id": seg_id, "trace_id": trace_id, "start_time": now, "end_time": now + 0.1,
        "subsegments": [{"name": "work", "id": sub_id, "start_time": now + 0.01, "end_time": now + 0.05}],
    }  # fmt: skip
    # the child's child first, then the in-progress segment, then the complete one (twice)
    for doc in (streamed_deep, in_progress):
        client.put_trace_segments(TraceSegmentDocuments=[json.dumps(doc)])
    docs = get_documents(client, trace_id)
    assert docs is not None and docs[0].get("in_progress") is True
    client.put_trace_segments(TraceSegmentDocuments=[json.dumps(complete)] * 2)
    server.send_documents(in_progress)  # a late in-progress copy never wins
    time.sleep(0.5)
    docs = get_documents(client, trace_id)
    assert docs is not None and len(docs) == 1
    merged = docs[0]
    assert "in_progress" not in merged and merged["end_time"] == complete["end_time"]
    assert [s["id"] for s in merged["subsegments"]] == [sub_id]
    assert merged["subsegments"][0]["subsegments"] == [streamed_deep]
    summaries = client.get_trace_summaries(StartTime=now - 5, EndTime=now + 5)["TraceSummaries"]
    (summary,) = [s for s in summaries if s["Id"] == trace_id]
    assert summary["IsPartial"] is False
    assert summary["Revision"] >= 3


def _rss_mib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS")


def test_an_oversized_body_is_refused_before_it_is_read_whole(server: ServerProcess) -> None:
    """Declared or chunked, a body past 16 MiB gets the 400 (not a reset connection) and
    costs the server no more memory than the limit; the server goes on answering."""
    pid = server.process.pid
    before = _rss_mib(pid)
    headers = {"content-type": "application/json"}
    declared = requests.post(
        f"{server.url}/TraceSegments", data=b"x" * 17_600_000, headers=headers, timeout=60
    )
    assert declared.status_code == 400
    assert "17600000 bytes exceeds the 16777216-byte limit" in declared.json()["message"]

    def chunks(mib: int) -> Iterator[bytes]:
        block = b"y" * (1 << 20)
        for _ in range(mib):
            yield block

    chunked = requests.post(
        f"{server.url}/TraceSegments", data=chunks(20), headers=headers, timeout=60
    )
    assert chunked.status_code == 400
    assert "exceeds the 16777216-byte limit" in chunked.json()["message"]
    # 600 MiB: the server stops reading after the limit and a bounded discard.
    with contextlib.suppress(requests.ConnectionError):
        huge = requests.post(
            f"{server.url}/TraceSegments", data=chunks(600), headers=headers, timeout=60
        )
        assert huge.status_code == 400
    assert _rss_mib(pid) - before < 100
    good = segment()
    assert (
        server.xray().put_trace_segments(TraceSegmentDocuments=[json.dumps(good)])[
            "UnprocessedTraceSegments"
        ]
        == []
    )


def _deep(levels: int) -> str:
    """A placeholder for metadata nested ``levels`` deep (see :func:`_text`)."""
    return f"@deep{levels}@"


def _text(doc: dict[str, Any]) -> str:
    """``doc`` as JSON, each :func:`_deep` placeholder replaced by its nesting (written
    out: no JSON encoder nests that deep)."""
    text = json.dumps(doc)
    for levels in (300, 1000):
        text = text.replace(f'"{_deep(levels)}"', '{"k":' * levels + "{}" + "}" * levels)
    return text


POISONS: dict[str, dict[str, Any]] = {
    "negative status": {"http": {"response": {"status": -5}}},
    "11-digit status": {"http": {"response": {"status": 99_999_999_999}}},
    "text status": {"http": {"response": {"status": "abc"}}},
    "metadata 300 deep": {"metadata": {"default": _deep(300)}},
    "metadata 1000 deep": {"metadata": {"default": _deep(1000)}},
    "subsegment without a name": {
        "subsegments": [{"name": None, "id": "0123456789abcdef", "start_time": 1, "end_time": 2}]
    },
}


def test_poison_documents_cost_their_neighbours_nothing(server: ServerProcess) -> None:
    """The documents that once took whole rounds down, among good ones: over UDP every
    good one is stored and each poison counted; in one PutTraceSegments the call
    answers, lists each poison with its reason and stores the rest."""
    before = server.status()["counters"]
    good_udp = [segment() for _ in range(300)]
    texts = [json.dumps(d) for d in good_udp]
    for index, fields in enumerate(POISONS.values()):
        texts.insert(index * 50, _text(segment(**fields)))
    server.send_udp(*(HEADER + text.encode() for text in texts))

    good_http = [segment() for _ in range(44)]
    poison_http = {name: segment(**fields) for name, fields in POISONS.items()}
    started = time.monotonic()
    answer = server.xray().put_trace_segments(
        TraceSegmentDocuments=[json.dumps(d) for d in good_http]
        + [_text(d) for d in poison_http.values()]
    )
    assert time.monotonic() - started < 10
    refused = {item["Id"]: item["Message"] for item in answer["UnprocessedTraceSegments"]}
    assert set(refused) == {doc["id"] for doc in poison_http.values()}
    assert "0 to 999, got -5" in refused[poison_http["negative status"]["id"]]
    for deep in ("metadata 300 deep", "metadata 1000 deep"):
        assert "nested deeper than 128" in refused[poison_http[deep]["id"]]
    assert "'name'" in refused[poison_http["subsegment without a name"]["id"]]

    def settled() -> dict[str, int] | None:
        now = server.status()["counters"]
        delta = {k: v - before.get(k, 0) for k, v in now.items()}
        invalid = sum(v for k, v in delta.items() if k.startswith("udp_invalid_"))
        stored = delta.get("stored_documents", 0)
        return delta if invalid == len(POISONS) and stored == 344 else None

    delta = wait_for(settled, timeout=30)
    assert delta["udp_invalid_document"] == 5 and delta["udp_invalid_missing_field"] == 1
    assert not any(v for k, v in delta.items() if k.startswith("lost_"))
    client = server.xray()
    for doc in [*good_udp[::60], *good_http[::11]]:
        assert get_documents(client, doc["trace_id"]) == [doc]
