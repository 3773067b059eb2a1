"""What the sample app calls: a local AWS emulator and a flaky "third-party" payments API.

* :class:`AwsEmulator` runs moto in server mode on loopback, in its own process
  (DynamoDB and S3 are what the app uses), and creates the app's table and bucket,
  seeded with a few orders.
  Its boto3 clients carry dummy credentials and the emulator's endpoint explicitly,
  so neither the user's AWS configuration nor a real AWS endpoint is ever involved.
* :class:`PaymentsApi` is an HTTP server standing in for a SaaS dependency:
  ``POST /v1/charges`` and ``GET /v1/rates`` answer after a varied latency (mostly
  tens of ms, sometimes hundreds), with occasional 429 (rate limited) and 5xx.

The payments API serves from background daemon threads, moto from its own process;
``start``/``close`` belong to the owner. Neither is traced: they play services outside
the app.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

from fluoroscope.demo._env import DUMMY_CREDENTIALS, app_environ

__all__ = ["AwsEmulator", "PaymentsApi"]


class AwsEmulator:
    """moto's server in its own process on ``host`` (a free port), with the app's resources.

    The process gets :func:`~fluoroscope.demo._env.app_environ` (moto itself builds boto3
    sessions, which must not read the user's AWS profile either) and its own session, so
    Ctrl-C in the terminal reaches only the demo.
    """

    def __init__(
        self,
        *,
        table: str,
        bucket: str,
        host: str = "127.0.0.1",
        region: str = "us-east-1",
        log: IO[str] | None = None,
    ) -> None:
        self.table = table
        self.bucket = bucket
        self.host = host
        self.region = region
        self._log = log
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> None:
        """Start moto (seconds) and create the resources; raises RuntimeError if it cannot."""
        for _ in range(3):  # a free port can be taken between the probe and moto's bind
            with socket.socket() as probe:
                probe.bind((self.host, 0))
                port = int(probe.getsockname()[1])
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "fluoroscope.demo._moto", self.host, str(port)],
                stdin=subprocess.PIPE,  # closed when the demo exits: moto exits too
                stdout=self._log if self._log is not None else subprocess.DEVNULL,
                stderr=self._log if self._log is not None else subprocess.DEVNULL,
                env=app_environ(self.region),
                start_new_session=True,
            )
            self.url = f"http://{self.host}:{port}"
            if self._wait(timeout):
                try:
                    self._provision()
                except BaseException:
                    self.close()
                    raise
                return
            self.close()
        raise RuntimeError("the local AWS emulator (moto) did not start")

    def _wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.url}/moto-api/", timeout=2):
                    return True
            except urllib.error.HTTPError:
                return True  # it answers
            except OSError:
                time.sleep(0.1)
        return False

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on the emulator, with dummy credentials."""
        import boto3
        import botocore.session
        from botocore.config import Config

        # A botocore session that reads no profile, config or credentials file from the
        # user's environment (AWS_PROFILE=missing would otherwise fail here).
        core = botocore.session.Session(
            session_vars={
                "profile": (None, None, None, None),
                "config_file": (None, None, os.devnull, None),
                "credentials_file": (None, None, os.devnull, None),
            }
        )
        session = boto3.session.Session(
            region_name=self.region, botocore_session=core, **DUMMY_CREDENTIALS
        )
        return session.client(
            service,
            endpoint_url=self.url,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )

    def _provision(self) -> None:
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(
            TableName=self.table,
            KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        s3 = self.client("s3")
        s3.create_bucket(Bucket=self.bucket)
        for n in range(1, 6):
            order_id = f"seed-{n:04d}"
            amount = round(9.99 * n, 2)
            dynamodb.put_item(
                TableName=self.table,
                Item={
                    "orderId": {"S": order_id},
                    "customer": {"S": "seed"},
                    "amount": {"N": str(amount)},
                    "status": {"S": "PAID"},
                },
            )
            s3.put_object(
                Bucket=self.bucket,
                Key=f"receipts/{order_id}.json",
                Body=json.dumps({"orderId": order_id, "amount": amount}).encode(),
            )

    def close(self) -> None:
        """Stop moto (bounded: killed if it does not exit within seconds)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


class PaymentsApi:
    """The flaky payments API on ``host`` (a free port); ``fault_rate``/``throttle_rate`` in [0, 1]."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        fault_rate: float = 0.03,
        throttle_rate: float = 0.05,
        seed: int | None = None,
    ) -> None:
        self.fault_rate = fault_rate
        self.throttle_rate = throttle_rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, 0), _payments_handler(self))
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Serve in a background daemon thread."""
        threading.Thread(
            target=self._server.serve_forever, name="demo-payments", daemon=True
        ).start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    def decide(self) -> tuple[float, int]:
        """(latency in seconds, status) for the next request."""
        with self._lock:
            r = self._random.random()
            latency = min(self._random.lognormvariate(-3.4, 0.7), 1.5)  # median ~33 ms
            if self._random.random() < 0.04:
                latency += self._random.uniform(0.3, 0.8)  # a slow call now and then
        if r < self.fault_rate:
            return latency, self._random.choice((500, 502, 503))
        if r < self.fault_rate + self.throttle_rate:
            return latency / 4, 429
        return latency, 200


def _payments_handler(api: PaymentsApi) -> type[BaseHTTPRequestHandler]:
    class PaymentsHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            latency, status = api.decide()
            time.sleep(latency)
            path = self.path.split("?", 1)[0]
            body: dict[str, Any]
            if status == 429:
                body = {"error": "rate_limited", "retry_after": 1}
            elif status >= 500:
                body = {"error": "upstream_unavailable"}
            elif path == "/v1/charges" and self.command == "POST":
                body = {"id": f"ch_{uuid.uuid4().hex[:20]}", "status": "succeeded"}
            elif path == "/v1/rates" and self.command == "GET":
                body = {"base": "USD", "EUR": 0.92, "GBP": 0.79, "JPY": 151.2}
            else:
                status, body = 404, {"error": "not_found"}
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 429:
                self.send_header("Retry-After", "1")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve  # noqa: N815

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return PaymentsHandler
