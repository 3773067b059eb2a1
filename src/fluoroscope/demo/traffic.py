"""The traffic generator: a steady stream of realistic requests to the sample API.

:class:`Traffic` sends requests at ``rate`` per second (evenly spaced, a small
jitter) from a bounded thread pool, without trace headers (so API Gateway starts each
trace, and the service map shows a ``client`` node). The mix, per request:

====  ==========================================  ==========================
 %    request                                     what it shows
====  ==========================================  ==========================
 55   ``POST /orders`` (new id)                   DynamoDB, payments API, S3
  5   ``POST /orders`` (an id already used)       conditional-check failure (409)
  2   ``POST /orders`` (no items)                 validation error (400)
 25   ``GET /orders/{id}`` (known id)             ``getFile``; ids ending in 7 are slow
  3   ``GET /orders/legacy-…``                    an exception with a stack (502)
  2   ``GET /orders/{unknown}``                   404
  8   ``GET /report`` (a third as bursts of 3)    async ``getFile``; throttling (429)
====  ==========================================  ==========================

Thread-safety: :attr:`Traffic.stats` may be read from any thread (``snapshot``);
``run`` is called once, from one thread, and returns after ``stop`` is set and the
requests in flight finished (bounded by the request timeout).
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Traffic", "TrafficStats", "plural"]

REQUEST_TIMEOUT = 15.0


@dataclass(slots=True)
class TrafficStats:
    """Counters of requests by outcome."""

    sent: int = 0
    ok: int = 0
    client_errors: int = 0
    throttled: int = 0
    server_errors: int = 0
    failed: int = 0  # no HTTP answer at all

    @property
    def completed(self) -> int:
        """Requests that got an answer or failed."""
        return self.ok + self.client_errors + self.throttled + self.server_errors + self.failed

    def summary(self) -> str:
        """The closing sentence, in words, each count with its noun in the right number:
        ``Sent 1 request: 1 ok, 0 client errors, ...``."""
        return (
            f"Sent {plural(self.sent, 'request')}: {self.ok} ok, "
            f"{plural(self.client_errors, 'client error')}, {self.throttled} throttled, "
            f"{plural(self.server_errors, 'server error')}, {self.failed} unanswered."
        )

    def progress(self) -> str:
        """The live progress line's counts (rich markup), from the same counters."""
        return (
            f"{plural(self.sent, 'request')}  [green]{self.ok} ok[/]  "
            f"[yellow]{self.client_errors} 4xx[/]  [magenta]{self.throttled} throttled[/]  "
            f"[red]{self.server_errors} 5xx[/]"
        )


def plural(count: int, noun: str) -> str:
    """``1 request``, ``0 requests``, ``2 requests``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class Traffic:
    """Requests to the API at ``base_url`` (``http://host:port/<stage>``), ``rate`` per second."""

    def __init__(
        self,
        base_url: str,
        rate: float,
        *,
        seed: int | None = None,
        max_in_flight: int = 32,
    ) -> None:
        if not rate > 0:
            raise ValueError("rate must be positive")
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.rate = rate
        self._random = random.Random(seed)
        self._pool = ThreadPoolExecutor(max_in_flight, thread_name_prefix="demo-client")
        self._slots = threading.Semaphore(max_in_flight)
        self._lock = threading.Lock()
        self._stats = TrafficStats()
        self._orders: deque[str] = deque((f"seed-{n:04d}" for n in range(1, 6)), maxlen=500)

    def snapshot(self) -> TrafficStats:
        """A copy of the counters."""
        with self._lock:
            s = self._stats
            return TrafficStats(
                s.sent, s.ok, s.client_errors, s.throttled, s.server_errors, s.failed
            )

    def run(self, stop: threading.Event) -> None:
        """Send until ``stop`` is set, then wait for the requests in flight."""
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                for method, path, body in self._next_requests():
                    if not self._slots.acquire(timeout=0.5):
                        break  # saturated: skip rather than queue without bound
                    with self._lock:
                        self._stats.sent += 1
                    self._pool.submit(self._send, method, path, body)
                next_at += interval * self._random.uniform(0.7, 1.3)
                delay = next_at - time.monotonic()
                if delay < -1.0:
                    next_at = time.monotonic()  # fell behind: do not burst to catch up
                stop.wait(max(0.0, delay))
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _next_requests(self) -> list[tuple[str, str, bytes | None]]:
        r = self._random.random()
        with self._lock:
            known = list(self._orders)
        if r < 0.55:
            return [("POST", "/orders", self._order(f"ord-{uuid.uuid4().hex[:10]}"))]
        if r < 0.60:
            return [("POST", "/orders", self._order(self._random.choice(known)))]
        if r < 0.62:
            return [("POST", "/orders", json.dumps({"orderId": "x", "items": []}).encode())]
        if r < 0.87:
            return [("GET", f"/orders/{self._random.choice(known)}", None)]
        if r < 0.90:
            return [("GET", f"/orders/legacy-{self._random.randrange(1000, 9999)}", None)]
        if r < 0.92:
            return [("GET", f"/orders/missing-{uuid.uuid4().hex[:6]}", None)]
        burst = 3 if self._random.random() < 0.33 else 1
        return [("GET", "/report", None)] * burst

    def _order(self, order_id: str) -> bytes:
        items = [
            {
                "sku": f"SKU-{self._random.randrange(100, 999)}",
                "qty": self._random.randint(1, 3),
                "price": round(self._random.uniform(3, 80), 2),
            }
            for _ in range(self._random.randint(1, 4))
        ]
        customer = self._random.choice(("alice", "bob", "carol", "dave", "erin"))
        return json.dumps({"orderId": order_id, "items": items, "customer": customer}).encode()

    def _send(self, method: str, path: str, body: bytes | None) -> None:
        status = 0
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=REQUEST_TIMEOUT)
            try:
                headers = {"User-Agent": "fluoroscope-demo/1.0"}
                if body is not None:
                    headers["Content-Type"] = "application/json"
                conn.request(method, self.prefix + path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                status = response.status
            finally:
                conn.close()
            if method == "POST" and status == 201:
                order_id = json.loads(data).get("orderId")
                if isinstance(order_id, str):
                    with self._lock:
                        self._orders.append(order_id)
        except (OSError, ValueError, http.client.HTTPException):
            status = 0
        finally:
            self._slots.release()
            with self._lock:
                s = self._stats
                if status == 0:
                    s.failed += 1
                elif status == 429:
                    s.throttled += 1
                elif status >= 500:
                    s.server_errors += 1
                elif status >= 400:
                    s.client_errors += 1
                else:
                    s.ok += 1
