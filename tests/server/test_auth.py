"""Access control of the HTTP surface, through real clients against a real server.

A server with credentials configured (on loopback: keys, once configured, are required
on every address) is called by boto3's ``xray`` client signing with the right key, a
wrong secret, an unknown key, no signature and a skewed clock; by Bearer tokens; and by
browser-shaped requests (foreign ``Origin``, foreign ``Host``, a ``text/plain`` POST).
A server without credentials (loopback, open by default) must refuse the same
browser-borne requests and serve boto3 and the SDK's sampler as before. A wide address
without credentials must refuse to start, and start loudly with ``--insecure-no-auth``.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import botocore.exceptions
import pytest
from botocore.config import Config

from tests.support import ServerProcess, free_port, segment, start_server, wait_for

KEY_ID = "AKIDFLUOROSCOPETEST"
SECRET = "s3cr3t/Key+For/Tests0123456789"
TOKEN = "tok-" + "0123456789abcdef" * 2


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("secured"),
        "--access-key",
        f"{KEY_ID}:{SECRET}",
        "--api-key",
        TOKEN,
        api_key=TOKEN,
    )
    yield proc
    proc.stop()


def _xray(server: ServerProcess, key_id: str = KEY_ID, secret: str = SECRET, **config: Any) -> Any:
    return boto3.client(
        "xray",
        endpoint_url=server.url,
        region_name="eu-west-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
    )


def _error(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as err:
        call(*args, **kwargs)
    response = err.value.response
    return (
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
        str(response["Error"]["Code"]),
        str(response["Error"]["Message"]),
    )


def _post(
    server: ServerProcess, path: str, body: bytes = b"{}", /, **headers: str
) -> tuple[int, dict[str, Any]]:
    """POST with exactly these headers (``Host`` defaults to the server's address)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("POST", path, skip_host=True, skip_accept_encoding=True)
        sent = {"Host": f"127.0.0.1:{server.port}", **headers}
        for name, value in sent.items():
            conn.putheader(name.replace("_", "-"), value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else {}
    finally:
        conn.close()


def test_boto3_with_a_configured_key_writes_and_reads(secured: ServerProcess) -> None:
    client = _xray(secured)
    doc = segment(annotations={"run": uuid.uuid4().hex[:8]})
    answer = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(doc)])
    assert answer["UnprocessedTraceSegments"] == []
    now = time.time()

    def found() -> list[str]:
        page = client.get_trace_summaries(StartTime=now - 60, EndTime=now + 60)
        return [s["Id"] for s in page["TraceSummaries"] if s["Id"] == doc["trace_id"]]

    assert wait_for(found) == [doc["trace_id"]]


def test_wrong_secret_unknown_key_and_unsigned_are_refused(secured: ServerProcess) -> None:
    status, code, _ = _error(_xray(secured, secret=SECRET + "x").get_groups)
    assert (status, code) == (403, "InvalidSignatureException")
    status, code, _ = _error(_xray(secured, key_id="AKIDNOBODY").get_groups)
    assert (status, code) == (403, "UnrecognizedClientException")
    unsigned = _xray(secured, signature_version=botocore.UNSIGNED)
    status, code, _ = _error(unsigned.put_trace_segments, TraceSegmentDocuments=["{}"])
    assert (status, code) == (403, "MissingAuthenticationTokenException")


def test_a_tampered_body_fails_the_signature(secured: ServerProcess) -> None:
    client = _xray(secured)

    def tamper(request: Any, **_: Any) -> None:
        request.body = b'{"GroupName": "tampered-' + uuid.uuid4().hex[:6].encode() + b'"}'
        request.headers["Content-Length"] = str(len(request.body))

    client.meta.events.register("before-send.xray.CreateGroup", tamper)
    status, code, _ = _error(client.create_group, GroupName="signed-name")
    assert (status, code) == (403, "InvalidSignatureException")
    names = {g["GroupName"] for g in _xray(secured).get_groups()["Groups"]}
    assert not any(n.startswith(("tampered-", "signed-name")) for n in names)


def test_a_skewed_clock_is_refused(secured: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    real = botocore.auth.get_current_datetime
    for skew in (timedelta(minutes=-16), timedelta(minutes=16)):
        monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda s=skew: real() + s)
        status, code, message = _error(_xray(secured).get_groups)
        assert (status, code) == (403, "InvalidSignatureException")
        assert "Signature expired" in message
    monkeypatch.setattr(
        botocore.auth, "get_current_datetime", lambda: real() - timedelta(minutes=14)
    )
    assert _xray(secured).get_groups()["Groups"]


def test_garbage_authorization_is_refused(secured: ServerProcess) -> None:
    for garbage in (
        "garbage",
        "AWS4-HMAC-SHA256 Credential=x",
        f"AWS4-HMAC-SHA256 Credential={KEY_ID}/20260101/us-east-1/xray/aws4_request, "
        f"SignedHeaders=host;x-amz-date, Signature={'0' * 64}",
        "Basic dXNlcjpwYXNz",
    ):
        status, body = _post(
            secured, "/Groups", Authorization=garbage, Content_Type="application/json"
        )
        assert status == 403, garbage
        assert body["__type"] in ("IncompleteSignatureException", "InvalidSignatureException")


def test_bearer_tokens(secured: ServerProcess) -> None:
    status, body = _post(
        secured, "/Groups", Authorization=f"Bearer {TOKEN}", Content_Type="application/json"
    )
    assert status == 200 and body["Groups"][0]["GroupName"] == "Default"
    status, body = _post(
        secured, "/Groups", Authorization=f"Bearer {TOKEN}x", Content_Type="application/json"
    )
    assert (status, body["__type"]) == (403, "UnrecognizedClientException")
    status, body = _post(secured, "/Groups", Content_Type="application/json")
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException")


def test_failures_are_counted_by_reason(secured: ServerProcess) -> None:
    _post(secured, "/Groups", Authorization="Bearer nope", Content_Type="application/json")
    _post(secured, "/Groups", Content_Type="application/json")
    failures = secured.status()["auth_failures"]
    assert failures["bad_token"] >= 1 and failures["missing"] >= 1


def test_the_console_files_need_no_credentials(secured: ServerProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", secured.port, timeout=30)
    for path in ("/", "/console/js/api.js"):
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        assert response.status == 200, path
    conn.request("GET", "/api/status")
    response = conn.getresponse()
    response.read()
    assert response.status == 403
    conn.close()


def _groups(server: ServerProcess, **headers: str) -> set[str]:
    status, body = _post(server, "/Groups", Content_Type="application/json", **headers)
    assert status == 200, body
    return {g["GroupName"] for g in body["Groups"]}


@pytest.mark.parametrize("credentials", ["open", "bearer"])
def test_browser_borne_requests_are_refused(
    credentials: str, server: ServerProcess, secured: ServerProcess
) -> None:
    target = server if credentials == "open" else secured
    auth = {"Authorization": f"Bearer {TOKEN}"} if credentials == "bearer" else {}
    name = f"csrf-{uuid.uuid4().hex[:8]}"
    create = json.dumps({"GroupName": name}).encode()
    own = f"http://127.0.0.1:{target.port}"
    # a cross-site form: no preflight for text/plain
    status, body = _post(target, "/CreateGroup", create, Content_Type="text/plain", **auth)
    assert (status, body["__type"]) == (415, "UnsupportedMediaTypeException")
    # a foreign page's fetch, even with a JSON type
    status, body = _post(
        target, "/CreateGroup", create, Content_Type="application/json", Origin="http://evil.example", **auth
    )  # fmt: skip
    assert (status, body["__type"]) == (403, "AccessDeniedException")
    status, _ = _post(target, "/Groups", Content_Type="application/json", Origin="null", **auth)
    assert status == 403
    # DNS rebinding: the attacker's name resolving to this address
    status, body = _post(
        target, "/CreateGroup", create, Content_Type="application/json",
        Host=f"rebind.evil.example:{target.port}", Origin=f"http://rebind.evil.example:{target.port}", **auth
    )  # fmt: skip
    assert (status, body["__type"]) == (403, "AccessDeniedException")
    status, _ = _post(
        target, "/Groups", Content_Type="application/json", Host="evil.example", **auth
    )
    assert status == 403
    assert name not in _groups(target, **auth)
    # the console's own calls pass: its origin, a name of this server
    assert "Default" in _groups(target, Origin=own, **auth)
    localhost = f"localhost:{target.port}"
    assert "Default" in _groups(target, Host=localhost, Origin=f"http://{localhost}", **auth)


def test_the_open_loopback_server_serves_real_clients(server: ServerProcess) -> None:
    client = server.xray()
    unsigned = server.xray(unsigned=True)
    name = f"ok-{uuid.uuid4().hex[:8]}"
    assert client.create_group(GroupName=name)["Group"]["GroupName"] == name
    assert name in {g["GroupName"] for g in unsigned.get_groups()["Groups"]}
    unsigned.delete_group(GroupName=name)
    # the official SDK's sampler fetches rules and targets over HTTP, unsigned
    from aws_xray_sdk.core.sampling.connector import ServiceConnector
    from aws_xray_sdk.core.sampling.sampling_rule import SamplingRule

    connector = ServiceConnector()
    connector.setup_xray_client(ip="127.0.0.1", port=server.port, client=None)
    rules = connector.fetch_sampling_rules()
    assert rules and all(isinstance(r, SamplingRule) for r in rules)
    connector.fetch_sampling_target(rules)


def _run_server(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> Any:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FLUOROSCOPE_")}
    environment.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "fluoroscope", "server", "--data-dir", str(data_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=environment,
    )


def test_a_wide_address_without_credentials_refuses_to_start(tmp_path: Path) -> None:
    proc = _run_server("--listen", f"0.0.0.0:{free_port()}", data_dir=tmp_path / "d")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    assert "--access-key" in lines[0] and "--api-key" in lines[0]
    assert "--insecure-no-auth" in lines[0]
    assert not (tmp_path / "d").exists()


def test_insecure_no_auth_starts_loudly_with_udp_on_loopback(tmp_path: Path) -> None:
    port = free_port()
    proc = _run_server(
        "--listen",
        f"0.0.0.0:{port}",
        data_dir=tmp_path,
        env={"FLUOROSCOPE_INSECURE_NO_AUTH": "1"},
    )
    running = ServerProcess(port, tmp_path, proc)
    try:
        wait_for(lambda: _answers(running), timeout=60, interval=0.1)
        doc = segment()
        running.send_documents(doc)
        assert wait_for(lambda: running.counter("stored_documents") >= 1, timeout=30)
    finally:
        out = running.stop()
    assert f"udp://127.0.0.1:{port}" in out
    assert "INSECURE: --insecure-no-auth" in out
    assert "Access: HTTP OPEN TO ANYONE WHO CAN REACH IT" in out
    assert "UDP segments are received on loopback only" in out


def _answers(server: ServerProcess) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(server.stop())
    try:
        server.status()
    except OSError:
        return False
    return True


def test_keys_configured_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    proc = _run_server(
        "--listen",
        f"127.0.0.1:{port}",
        data_dir=tmp_path,
        env={"FLUOROSCOPE_ACCESS_KEYS": f"other:{'x' * 20}, {KEY_ID}:{SECRET}"},
    )
    running = ServerProcess(port, tmp_path, proc)
    try:
        client = _xray(running)
        wait_for(lambda: _signed_answer(client), timeout=60, interval=0.1)
        status, code, _ = _error(running.xray().get_groups)  # the "test" key is not configured
        assert (status, code) == (403, "UnrecognizedClientException")
    finally:
        running.stop()


def _signed_answer(client: Any) -> bool:
    try:
        return bool(client.get_groups()["Groups"])
    except botocore.exceptions.EndpointConnectionError:
        return False


def test_a_large_signed_batch_is_replayed_whole(secured: ServerProcess) -> None:
    client = _xray(secured)
    run = uuid.uuid4().hex[:8]
    docs = [segment(annotations={"run": run}, padding="x" * 600) for _ in range(1000)]
    answer = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
    assert answer["UnprocessedTraceSegments"] == []
    stored = client.batch_get_traces(TraceIds=[docs[0]["trace_id"], docs[-1]["trace_id"]])
    assert len(stored["Traces"]) == 2


def test_an_oversized_signed_body_is_refused_unread(secured: ServerProcess) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", secured.port, timeout=30)
    try:
        conn.putrequest("POST", "/TraceSegments")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(17 * 1024 * 1024))
        conn.putheader("X-Amz-Date", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        conn.putheader(
            "Authorization",
            f"AWS4-HMAC-SHA256 Credential={KEY_ID}/{time.strftime('%Y%m%d', time.gmtime())}/"
            f"us-east-1/xray/aws4_request, SignedHeaders=host;x-amz-date, Signature={'a' * 64}",
        )
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["__type"] == "InvalidRequestException"
    finally:
        conn.close()
