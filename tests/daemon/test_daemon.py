"""``fluoroscope daemon`` between the official aws-xray-sdk and a real server.

The SDK (and raw datagrams) go to the daemon's UDP port; the daemon forwards to a real
``fluoroscope server``; boto3's ``xray`` client reads back from the server, and asks the
daemon's TCP port for sampling rules.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from aws_xray_sdk.core.sampling.connector import ServiceConnector

from tests.daemon.support import DaemonProcess, start_daemon
from tests.support import HEADER, ServerProcess, get_documents, segment, wait_for


@pytest.fixture(scope="module")
def daemon(
    server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    proc = start_daemon(server.url, tmp_path_factory.mktemp("buffer"))
    yield proc
    proc.stop()


def _close_emitter() -> None:
    """The SDK never closes an emitter it replaces; close its socket ourselves."""
    sock = getattr(getattr(xray_recorder, "_emitter", None), "_socket", None)
    if sock is not None:
        sock.close()


def test_xray_sdk_segments_reach_the_server_through_the_daemon(
    daemon: DaemonProcess, server: ServerProcess
) -> None:
    _close_emitter()
    xray_recorder.configure(
        emitter=UDPEmitter(f"127.0.0.1:{daemon.port}"),
        sampling=False,
        context_missing="LOG_ERROR",
        daemon_address=f"127.0.0.1:{daemon.port}",
        service="via-daemon",
    )
    try:
        sent: list[tuple[str, str]] = []
        for i in range(20):
            seg = xray_recorder.begin_segment("via-daemon")
            seg.put_annotation("n", i)
            with xray_recorder.in_subsegment("work") as sub:
                sub.put_metadata("i", i)
            sent.append((seg.trace_id, seg.id))
            xray_recorder.end_segment()
    finally:
        xray_recorder.clear_trace_entities()
        _close_emitter()
    client = server.xray()
    for trace_id, seg_id in sent:
        docs = _stored(client, trace_id)
        assert [d["id"] for d in docs] == [seg_id]
        assert docs[0]["name"] == "via-daemon"
        assert docs[0]["subsegments"][0]["name"] == "work"
    status = daemon.status()
    assert status["forwarded"] >= 20
    assert status["server"]["reachable"] is True


def test_garbage_is_counted_and_the_good_documents_beside_it_forwarded(
    daemon: DaemonProcess, server: ServerProcess
) -> None:
    before = daemon.status()
    good = [segment(name=f"good{i}") for i in range(32)]
    garbage = [
        b"no header at all",
        b'{"format":"xml","version":1}\n{"id":"x"}',
        b"not json\n{}",
        HEADER + b"   ",
    ]  # (an oversize body cannot come: UDP over IP carries at most 65,507 bytes)
    payloads: list[bytes] = []
    for i, doc in enumerate(good):
        payloads.append(HEADER + json.dumps(doc).encode())
        payloads.append(garbage[i % len(garbage)])
    daemon.send(*payloads)
    after = wait_for(lambda: (s := daemon.status())["received"] >= before["received"] + 64 and s)
    invalid = {k: after["invalid"][k] - before["invalid"][k] for k in after["invalid"]}
    assert invalid == {"no_header": 8, "bad_header": 16, "empty": 8, "oversize": 0}
    client = server.xray()
    for doc in good:
        stored = _stored(client, doc["trace_id"])
        assert stored[0]["name"] == doc["name"]


def test_sampling_calls_are_proxied_to_the_server(daemon: DaemonProcess) -> None:
    client = daemon.xray()
    rules = client.get_sampling_rules()["SamplingRuleRecords"]
    assert [r["SamplingRule"]["RuleName"] for r in rules] == ["Default"]
    answer = client.get_sampling_targets(
        SamplingStatisticsDocuments=[
            {
                "RuleName": "Default",
                "ClientID": "a" * 24,
                "Timestamp": 1_700_000_000,
                "RequestCount": 5,
                "SampledCount": 1,
                "BorrowCount": 0,
            }
        ]
    )
    assert answer["SamplingTargetDocuments"][0]["RuleName"] == "Default"
    # the official SDK's own sampling client, pointed at the daemon as it is by default
    connector = ServiceConnector()
    connector.setup_xray_client("127.0.0.1", daemon.port, None)
    assert [rule.name for rule in connector.fetch_sampling_rules()] == ["Default"]
    connector._xray_client.close()
    client.close()
    assert daemon.status()["proxied"] >= 3


def test_web_pages_cannot_use_the_daemon(daemon: DaemonProcess) -> None:
    for headers in ({"Origin": "http://evil.example"}, {"Host": "evil.example:2000"}):
        request = urllib.request.Request(
            f"{daemon.url}/GetSamplingRules", data=b"{}", method="POST", headers=headers
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 403
        caught.value.close()


def _stored(client: Any, trace_id: str) -> list[dict[str, Any]]:
    """The trace's stored documents, once it is there."""
    return wait_for(lambda: get_documents(client, trace_id))


def _docs(n: int, prefix: str) -> list[dict[str, Any]]:
    """``n`` documents of ~1 KB (so that a few thousand overflow 1 MiB of memory)."""
    pad = {"default": {"pad": "x" * 800}}
    return [segment(name=f"{prefix}{i}", metadata=pad) for i in range(n)]


def test_outage_spills_to_disk_survives_a_restart_and_replays_exactly_once(
    tmp_path: Path,
) -> None:
    """Server away: a 1 MiB memory buffer fills and the rest spills to disk; a stop
    leaves everything on disk; the next daemon takes it over; the server comes up and
    every document is stored once."""
    from tests.support import free_port, start_server

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    buffer_dir = tmp_path / "buffer"
    first = start_daemon(url, buffer_dir, "--buffer-memory", "1")
    batch1, batch2 = _docs(4000, "a"), _docs(1500, "b")
    try:
        first.send_documents(batch1)
        status = wait_for(lambda: (s := first.status())["pending"]["batching"] == 0 and s)
        assert status["pending"]["memory"] > 0
        assert status["pending"]["disk"] > 0  # 4000 documents do not fit in 1 MiB
        assert status["buffer"]["memory_bytes"] <= 1024 * 1024
        assert status["server"]["reachable"] is False
    finally:
        out = first.stop()
    assert "dropped none; left 4000 on disk" in out, out
    assert "unaccounted" not in out, out
    second = start_daemon(url, buffer_dir, "--buffer-memory", "1")
    server = None
    try:
        assert second.status()["restored"] == 4000
        second.send_documents(batch2)
        wait_for(lambda: second.status()["pending"]["disk"] > 0)
        server = start_server(tmp_path / "data", port=port)
        wait_for(lambda: second.status()["forwarded"] == 5500, timeout=120)
        wait_for(lambda: server.counter("stored_documents") == 5500, timeout=120)
        client = server.xray()
        for doc in batch1[::400] + batch2[::300]:
            stored = _stored(client, doc["trace_id"])
            assert [s["id"] for s in stored] == [doc["id"]]
        status = second.status()
        assert status["pending"] == {"batching": 0, "memory": 0, "disk": 0, "in_flight": 0}
        assert status["buffer"]["disk_bytes"] == 0
        assert sum(status["dropped"].values()) == 0
    finally:
        out = second.stop()
        if server is not None:
            server.stop()
    assert "forwarded 5500 documents; dropped none" in out, out
    assert not list(buffer_dir.glob("*.spool"))


def test_a_full_buffer_drops_and_counts(tmp_path: Path) -> None:
    """Memory only (no disk), server away: what does not fit is counted as
    ``buffer_full``, what is held at the stop as ``shutdown``, and the stop line adds up."""
    from tests.support import free_port

    daemon = start_daemon(
        f"http://127.0.0.1:{free_port()}", tmp_path / "unused", "--buffer-memory", "1",
        "--buffer-disk", "0",
    )  # fmt: skip
    try:
        daemon.send_documents(_docs(6000, "c"))
        status = wait_for(lambda: (s := daemon.status())["pending"]["batching"] == 0 and s)
        held = status["pending"]["memory"] + status["pending"]["in_flight"]
        full = status["dropped"].get("buffer_full", 0)
        assert full > 0
        assert held + full == 6000
        assert status["buffer"]["disk_limit"] == 0
    finally:
        out = daemon.stop()
    assert (
        f"Received 6000 datagrams; 0 invalid; forwarded 0 documents; dropped 6000 (buffer_full: {full}, shutdown: {held})."
        in out
    ), out
    assert not (tmp_path / "unused").exists()
