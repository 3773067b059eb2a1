"""What the daemon puts on the wire, and what it does with each kind of answer.

A small stdlib HTTP endpoint on loopback stands where the server would, recording each
request and answering as a test tells it; the daemon is the real ``fluoroscope daemon``.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.daemon.support import DaemonProcess, start_daemon
from tests.support import HEADER, segment, wait_for


class Endpoint:
    """Records requests; answers with ``self.answers`` in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = [(200, {})]
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                owner.requests.append((self.path, dict(self.headers.items()), body))
                status, payload = (
                    owner.answers.pop(0) if len(owner.answers) > 1 else owner.answers[0]
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()

    def documents(self) -> list[dict[str, Any]]:
        return [
            json.loads(doc)
            for path, _, body in self.requests
            if path == "/TraceSegments"
            for doc in json.loads(body)["TraceSegmentDocuments"]
        ]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    ep = Endpoint()
    yield ep
    ep.close()


def _daemon(endpoint: Endpoint, tmp_path: Path, **env: str) -> DaemonProcess:
    return start_daemon(endpoint.url, tmp_path / "buffer", env=env)


def test_batches_are_signed_with_sigv4(endpoint: Endpoint, tmp_path: Path) -> None:
    daemon = _daemon(endpoint, tmp_path, AWS_ACCESS_KEY_ID="AKIDTEST", AWS_SECRET_ACCESS_KEY="s3cret",
                     AWS_REGION="eu-west-1")  # fmt: skip
    try:
        docs = [segment() for _ in range(120)]
        daemon.send(*(HEADER + json.dumps(d).encode() for d in docs))
        wait_for(lambda: len(endpoint.documents()) == 120)
        daemon.xray().get_sampling_rules()
    finally:
        out = daemon.stop()
    assert "auth: sigv4" in out
    assert sorted(d["id"] for d in endpoint.documents()) == sorted(d["id"] for d in docs)
    paths = [path for path, _, _ in endpoint.requests]
    assert paths.count("/GetSamplingRules") == 1
    assert all(len(json.loads(b)["TraceSegmentDocuments"]) <= 50 for p, _, b in endpoint.requests
               if p == "/TraceSegments")  # fmt: skip
    for path, headers, body in endpoint.requests:
        assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
        assert "/eu-west-1/xray/aws4_request" in headers["Authorization"]
        # botocore, given the same request and time, computes the same signature
        again = AWSRequest(method="POST", url=f"{endpoint.url}{path}", data=body,
                           headers={"Content-Type": headers["Content-Type"],
                                    "User-Agent": headers["User-Agent"]})  # fmt: skip
        signer = SigV4Auth(Credentials("AKIDTEST", "s3cret"), "xray", "eu-west-1")
        again.context["timestamp"] = headers["X-Amz-Date"]  # the signing time it sent
        signer._modify_request_before_signing(again)
        canonical = signer.canonical_request(again)
        signature = signer.signature(signer.string_to_sign(again, canonical), again)
        assert headers["Authorization"].endswith(f", Signature={signature}")


def test_a_bearer_token_goes_with_every_request(endpoint: Endpoint, tmp_path: Path) -> None:
    daemon = _daemon(endpoint, tmp_path, FLUOROSCOPE_DAEMON_TOKEN="tok-123",
                     AWS_ACCESS_KEY_ID="AKIDTEST", AWS_SECRET_ACCESS_KEY="s3cret")  # fmt: skip
    try:
        daemon.send(HEADER + json.dumps(segment()).encode())
        wait_for(lambda: endpoint.documents())
    finally:
        daemon.stop()
    assert endpoint.requests[0][1]["Authorization"] == "Bearer tok-123"


def test_each_answer_is_handled_as_it_says(endpoint: Endpoint, tmp_path: Path) -> None:
    """503 and 429: retried until taken. Unprocessed documents: dropped as rejected. 500
    five times: dropped as server_error. 400: dropped as refused."""
    daemon = _daemon(endpoint, tmp_path)
    try:
        endpoint.answers = [(503, {}), (429, {}), (503, {}), (200, {})]
        daemon.send(HEADER + json.dumps(segment()).encode())
        wait_for(lambda: daemon.status()["forwarded"] == 1)
        assert daemon.status()["retries"] == 3
        bad = segment()
        endpoint.answers = [(200, {"UnprocessedTraceSegments": [
            {"Id": bad["id"], "ErrorCode": "InvalidDocument", "Message": "no"}]})]  # fmt: skip
        daemon.send(HEADER + json.dumps(bad).encode(), HEADER + json.dumps(segment()).encode())
        status = wait_for(lambda: (s := daemon.status())["forwarded"] == 2 and s)
        assert status["dropped"]["rejected_by_server"] == 1
        assert status["rejected_by_server"] == {"InvalidDocument": 1}
        endpoint.answers = [(500, {}), (500, {}), (500, {}), (500, {}), (500, {}), (200, {})]
        daemon.send(HEADER + json.dumps(segment()).encode())
        wait_for(lambda: daemon.status()["dropped"].get("server_error") == 1, timeout=30)
        endpoint.answers = [(400, {"message": "bad request"})]
        daemon.send(HEADER + json.dumps(segment()).encode())
        wait_for(lambda: daemon.status()["dropped"].get("refused_by_server") == 1)
    finally:
        out = daemon.stop()
    assert "Received 5 datagrams; 0 invalid; forwarded 2 documents; dropped 3" in out, out
    assert (
        "rejected_by_server: 1" in out
        and "server_error: 1" in out
        and "refused_by_server: 1" in out
    )
