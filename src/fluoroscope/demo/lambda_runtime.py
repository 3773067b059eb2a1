"""A local Lambda service: the Invoke API over HTTP, function instances as processes.

:class:`LambdaService` listens on loopback and answers Lambda's ``Invoke`` call
(``POST /2015-03-31/functions/{name}/invocations``, event in the body, the caller's
``X-Amzn-Trace-Id`` header) the way the real service does: 200 with the handler's
result (plus ``X-Amz-Function-Error: Unhandled`` when the handler raised or timed out),
429 ``TooManyRequestsException`` when the function's concurrency is used up, 404 for
an unknown function.

Each function instance is a worker process (:mod:`fluoroscope.demo.worker`) that
handles one invocation at a time. A request takes an idle instance (warm) or
initializes a new one (cold: a sandbox process imports the handler module — the
``Initialization`` — taking one of ``standby`` pre-started sandboxes that already
loaded the runtime's libraries, as Lambda keeps sandboxes ready, or starting a process
when none is left). Instances idle for ``idle_timeout`` seconds are recycled, and each
retires after about ``max_lifetime`` seconds (±25 %, when given), as Lambda replaces
sandboxes over time, so later requests are cold again. Concurrency is limited per function (reserved concurrency,
else ``max_concurrency``); beyond it invocations are throttled.

For every traced invocation the service emits, through the public SDK, what Lambda
emits (xray-protocol §8.1):

* an ``AWS::Lambda`` segment named after the function, ``parent_id`` = the caller's
  subsegment (from the header), with ``resource_arn``, ``aws.request_id`` and the
  HTTP status of the Invoke call (429 → throttle);
* an ``AWS::Lambda::Function`` segment, parent the ``AWS::Lambda`` segment, with
  ``aws.{account_id, function_arn, resource_names}`` and the subsegments
  ``Initialization`` (cold starts only), ``Invocation`` and ``Overhead``.

With ``logs`` (a :class:`~fluoroscope.demo.cwlogs.LogShipper`), each function instance
writes to ``/aws/lambda/<function>``, stream ``YYYY/MM/DD/[$LATEST]<32 hex>``, what
Lambda writes there (reference logs.md §5.1): ``INIT_START`` when it initializes, then
per invocation ``START``, the handler's own output (see :mod:`fluoroscope.demo.worker`),
``END`` and ``REPORT`` (``Init Duration`` on cold starts; the ``XRAY TraceId … SegmentId
…`` line, naming the ``AWS::Lambda`` segment, when sampled). Functions get
``AWS_ENDPOINT_URL_LAMBDA`` = this service, so a handler's boto3 ``lambda`` client invokes
its sibling functions here, continuing the trace.

The handler receives ``_X_AMZN_TRACE_ID = Root=…;Parent=<Invocation id>;Sampled=…``, so
the subsegments of :func:`fluoroscope.sdk.lambda_handler` (whose facade takes ``Parent``
as its id) nest under ``Invocation``.

Threads: ``invoke`` runs on the HTTP server's request threads, concurrently; a reaper
thread recycles idle instances. ``start``/``close`` are for the owner's thread;
``close`` is bounded in time and stops every worker process.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, Final

from fluoroscope.demo._env import app_environ
from fluoroscope.demo._stamp import stamp_resource_arn
from fluoroscope.demo.cwlogs import (
    LogShipper,
    end_line,
    init_start_line,
    lambda_stream_name,
    report_line,
    start_line,
)
from fluoroscope.sdk import Emitter, Tracer

__all__ = ["FunctionConfig", "InvokeResult", "LambdaService"]

INVOKE_PREFIX: Final = "/2015-03-31/functions/"
INIT_TIMEOUT: Final = 20.0
PRELOAD: Final = "boto3,botocore.session,requests,httpx,fluoroscope.sdk,fluoroscope.sdk.instrument"


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """One deployed function: its handler (``module:function``) and limits."""

    name: str
    handler: str
    memory_mb: int = 256
    timeout: float = 10.0
    reserved_concurrency: int | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    tracing: str = "Active"  # Lambda's TracingConfig: Active | PassThrough


@dataclass(frozen=True, slots=True)
class InvokeResult:
    """What the Invoke API answers: status, body, and the function-error kind if any."""

    status: int
    payload: bytes
    function_error: str | None = None
    error_type: str | None = None


class FunctionError(Exception):
    """A handler failed (raised, timed out, or its instance died); recorded on Invocation."""


class _Instance:
    """One worker process; used by one invocation at a time."""

    def __init__(self, proc: subprocess.Popen[str], started: float) -> None:
        self.proc = proc
        self.started = started
        self.last_used = time.monotonic()
        self.retire_at = math.inf  # monotonic time after which it is not reused
        self.group = ""  # its log group and stream ('' until it initializes)
        self.stream = ""
        self.logs: LogShipper | None = None
        self.max_memory_mb = 0  # from the last result

    def read(self, timeout: float, keys: tuple[str, ...]) -> dict[str, Any] | None:
        """The next message with one of ``keys`` (others skipped); None when the process
        died or ``timeout`` passed (then it is killed)."""
        stdout = self.proc.stdout
        if stdout is None:
            return None
        timer = threading.Timer(timeout, self.kill)
        timer.daemon = True
        timer.start()
        try:
            while True:
                line = stdout.readline()
                if not line:
                    return None
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                if "log" in message and self.logs is not None and self.group:
                    ts = message.get("ts")
                    stamp = ts if isinstance(ts, int) else int(time.time() * 1000)
                    self.logs.put(self.group, self.stream, stamp, str(message["log"]))
                    continue
                if "max_memory_mb" in message:
                    self.max_memory_mb = int(message["max_memory_mb"] or 0)
                if any(k in message for k in keys):
                    return message
        finally:
            timer.cancel()

    def wait_ready(self, timeout: float) -> dict[str, Any] | None:
        return self.read(timeout, ("ready", "init_error"))

    def call(self, request: Mapping[str, Any], timeout: float) -> dict[str, Any] | None:
        stdin = self.proc.stdin
        if stdin is None:
            return None
        try:
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
        except (OSError, ValueError):
            return None
        return self.read(timeout, ("ready", "init_error", "result", "error"))

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def stop(self, timeout: float = 2.0) -> None:
        """Close its input (it exits after the current invocation); kill if it lingers."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait(timeout)
        for stream in (self.proc.stdout,):
            if stream is not None:
                stream.close()


@dataclass(slots=True)
class _Pool:
    config: FunctionConfig
    idle: list[_Instance] = field(default_factory=list)
    busy: int = 0


class LambdaService:
    """The Lambda service on ``host:port`` (0 picks a free port); see the module docstring.

    ``task_root`` (default: the current directory) is where handler modules are found
    besides the installed packages, like Lambda's ``/var/task``.
    """

    def __init__(
        self,
        functions: Sequence[FunctionConfig],
        *,
        daemon_address: str,
        host: str = "127.0.0.1",
        port: int = 0,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        idle_timeout: float = 30.0,
        max_lifetime: float | None = None,
        max_concurrency: int = 6,
        standby: int = 3,
        environment: Mapping[str, str] | None = None,
        log: IO[str] | None = None,
        emitter: Emitter | None = None,
        task_root: str | None = None,
        logs: LogShipper | None = None,
    ) -> None:
        self.region = region
        self.account_id = account_id
        self.idle_timeout = idle_timeout
        self.max_lifetime = max_lifetime
        self.max_concurrency = max_concurrency
        self.standby = standby
        self._standby: list[_Instance] = []
        self._daemon_address = daemon_address
        self._environment = dict(environment or {})
        self._log = log
        self.logs = logs
        self._task_root = task_root or os.getcwd()
        self._pools = {f.name: _Pool(f) for f in functions}
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.service_tracer = Tracer(
            "lambda",
            emitter=emitter,
            daemon_address=None if emitter else daemon_address,
            origin="AWS::Lambda",
            sampling=False,
            context_missing="ignore",
        )
        self.function_tracer = Tracer(
            "lambda-function",
            emitter=self.service_tracer.emitter,
            origin="AWS::Lambda::Function",
            sampling=False,
            context_missing="ignore",
        )
        self._server = ThreadingHTTPServer((host, port), _handler_class(self))
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []
        self.cold_starts = 0
        self.invocations = 0

    @property
    def url(self) -> str:
        """The endpoint URL of the Invoke API."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def function_arn(self, name: str) -> str:
        """The ARN of function ``name``."""
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{name}"

    def wait_standby(self, timeout: float = 30.0) -> None:
        """Start the standby sandboxes now and wait until they loaded their libraries."""
        with self._lock:
            missing = self.standby - len(self._standby)
        fresh = [self._sandbox() for _ in range(missing)]
        for instance in fresh:
            instance.read(timeout, ("standby",))
        with self._lock:
            self._standby += [i for i in fresh if i.proc.poll() is None]

    def start(self) -> None:
        """Start serving and recycling idle instances (background daemon threads)."""
        for target, name in ((self._server.serve_forever, "lambda-api"), (self._reap, "reaper")):
            thread = threading.Thread(target=target, name=f"demo-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving, stop every instance, flush the segments."""
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout)
        with self._lock:
            instances = [i for p in self._pools.values() for i in p.idle] + self._standby
            for pool in self._pools.values():
                pool.idle.clear()
            self._standby = []
        for instance in instances:
            instance.stop()
        self.service_tracer.flush(timeout)

    # -- instances ---------------------------------------------------------------------

    def _sandbox_env(self) -> dict[str, str]:
        env = app_environ(self.region)
        env.update(
            {
                "FLUOROSCOPE_DEMO_PRELOAD": PRELOAD,
                "AWS_XRAY_DAEMON_ADDRESS": self._daemon_address,
                "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
                "LAMBDA_TASK_ROOT": self._task_root,
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _function_env(self, config: FunctionConfig) -> dict[str, str]:
        env = {
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
            "AWS_ENDPOINT_URL_LAMBDA": self.url,
        }
        env.update(self._environment)
        env.update(config.environment)
        return env

    def _sandbox(self) -> _Instance:
        """A new sandbox process (it loads the runtime's libraries, then waits for ``init``)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "fluoroscope.demo.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log if self._log is not None else subprocess.DEVNULL,
            env=self._sandbox_env(),
            text=True,
            start_new_session=True,  # Ctrl-C in the terminal reaches the demo, not each instance
        )
        return _Instance(proc, time.time())

    def _spawn(self, config: FunctionConfig) -> tuple[_Instance | None, float, float]:
        """Initialize an instance of ``config``: (instance or None if it failed, start, end)."""
        started = time.time()
        with self._lock:
            instance = self._standby.pop() if self._standby else None
        if instance is None:
            instance = self._sandbox()
        env = self._function_env(config)
        if self.logs is not None:
            instance.logs = self.logs
            instance.group = f"/aws/lambda/{config.name}"
            instance.stream = lambda_stream_name(time.strftime("%Y/%m/%d"), uuid.uuid4().hex)
            env["AWS_LAMBDA_LOG_STREAM_NAME"] = instance.stream
            self._write(instance, init_start_line(), started)
        init = {"handler": config.handler, "environment": env}
        ready = instance.call({"init": init}, INIT_TIMEOUT)
        ended = time.time()
        if not ready or not ready.get("ready"):
            instance.stop()
            return None, started, ended
        if self.max_lifetime is not None:
            lifetime = self.max_lifetime * random.uniform(0.75, 1.25)
            instance.retire_at = time.monotonic() + lifetime
        with self._lock:
            self.cold_starts += 1
        return instance, started, ended

    def _write(self, instance: _Instance, line: str, at: float | None = None) -> None:
        if self.logs is not None and instance.group:
            stamp = time.time() if at is None else at
            self.logs.put(instance.group, instance.stream, int(stamp * 1000), line)

    def _take(self, name: str) -> tuple[_Pool, _Instance | None] | None:
        """Reserve concurrency: (pool, an idle instance or None for a cold start), or None."""
        with self._lock:
            pool = self._pools[name]
            limit = pool.config.reserved_concurrency or self.max_concurrency
            if pool.busy >= limit:
                return None
            pool.busy += 1
            self.invocations += 1
            return pool, (pool.idle.pop() if pool.idle else None)

    def _give_back(self, pool: _Pool, instance: _Instance | None) -> None:
        now = time.monotonic()
        with self._lock:
            pool.busy -= 1
            if instance is not None and not self._closed.is_set() and now < instance.retire_at:
                instance.last_used = now
                pool.idle.append(instance)
                instance = None
        if instance is not None:  # retired: stop it off the request's path
            threading.Thread(target=instance.stop, name="demo-retire", daemon=True).start()

    def _reap(self) -> None:
        while True:
            with self._lock:
                missing = 0 if self._closed.is_set() else self.standby - len(self._standby)
            for _ in range(missing):
                instance = self._sandbox()
                with self._lock:
                    self._standby.append(instance)
            if self._closed.wait(0.5):
                break
            now = time.monotonic()
            cutoff = now - self.idle_timeout
            stale: list[_Instance] = []
            with self._lock:
                for pool in self._pools.values():
                    keep = [i for i in pool.idle if i.last_used >= cutoff and now < i.retire_at]
                    stale += [i for i in pool.idle if i not in keep]
                    pool.idle = keep
            for instance in stale:
                instance.stop()

    # -- the Invoke API ----------------------------------------------------------------

    def invoke(self, name: str, event: Any, trace_header: str | None) -> InvokeResult:
        """Run one invocation of ``name`` and emit its segments; never raises."""
        if name not in self._pools:
            body = {"Type": "User", "message": f"Function not found: {self.function_arn(name)}"}
            return InvokeResult(
                404, json.dumps(body).encode(), error_type="ResourceNotFoundException"
            )
        arn = self.function_arn(name)
        request_id = str(uuid.uuid4())
        # PassThrough: traced only when the caller's header says so (Active: as it says,
        # else the sampler - every request, in the demo)
        passthrough = self._pools[name].config.tracing == "PassThrough"
        sampled = "Sampled=1" in (trace_header or "") if passthrough else None
        service = self.service_tracer.segment(name, trace_header=trace_header, sampled=sampled)
        with service:
            stamp_resource_arn(service, arn)
            service.set_aws(request_id=request_id)
            taken = self._take(name)
            if taken is None:
                service.set_http_response(status=429)
                body = {
                    "Reason": "ReservedFunctionConcurrentInvocationLimitExceeded",
                    "Type": "User",
                    "message": "Rate Exceeded.",
                }
                return InvokeResult(
                    429, json.dumps(body).encode(), error_type="TooManyRequestsException"
                )
            pool, instance = taken
            try:
                result, instance = self._run(pool.config, instance, service, event, request_id)
            finally:
                self._give_back(pool, instance)
            service.set_http_response(status=result.status)
            return result

    def _run(
        self,
        config: FunctionConfig,
        instance: _Instance | None,
        service: Any,
        event: Any,
        request_id: str,
    ) -> tuple[InvokeResult, _Instance | None]:
        arn = self.function_arn(config.name)
        cold = instance is None
        init: tuple[float, float] | None = None
        if instance is None:
            instance, init_start, init_end = self._spawn(config)
            init = (init_start, init_end)
        function = self.function_tracer.segment(
            config.name,
            trace_header=service.trace_header(),
            start_time=init[0] if init else None,
        )
        with function:
            function.set_aws(
                account_id=self.account_id, function_arn=arn, resource_names=[config.name]
            )
            if init is not None:
                sub = self.function_tracer.subsegment("Initialization")
                if sub.sampled:
                    sub.start_time = init[0]
                sub.set_aws(function_arn=arn)
                if instance is None:
                    sub.add_exception(
                        FunctionError("Runtime.ExitError: the handler failed to load")
                    )
                sub.close(init[1])
            if instance is None:
                function.mark_fault()
                body = {"errorType": "Runtime.ExitError", "errorMessage": "init failed"}
                return InvokeResult(200, json.dumps(body).encode(), "Unhandled"), None
            with self.function_tracer.subsegment("Invocation") as invocation:
                invocation.set_aws(function_arn=arn)
                if cold:
                    invocation.put_annotation("cold_start", True)
                request = {
                    "event": event,
                    "trace_id_header": invocation.trace_header(),
                    "request_id": request_id,
                    "function_arn": arn,
                    "deadline": time.time() + config.timeout,
                }
                self._write(instance, start_line(request_id))
                began = time.time()
                reply = instance.call(request, config.timeout)
                took = (time.time() - began) * 1000
                result = _result(reply)
                if result.function_error:
                    invocation.add_exception(_function_error(result.payload))
                    function.mark_fault()
            with self.function_tracer.subsegment("Overhead") as overhead:
                overhead.set_aws(function_arn=arn)
                ready = instance.wait_ready(2.0) if reply is not None else None
            self._write(instance, end_line(request_id))
            self._write(
                instance,
                report_line(
                    request_id,
                    duration_ms=took,
                    memory_mb=config.memory_mb,
                    max_memory_mb=instance.max_memory_mb,
                    init_ms=(init[1] - init[0]) * 1000 if init else None,
                    trace_header=service.trace_header(),
                    segment_id=service.id if service.sampled else None,
                ),
            )
            if not ready:
                instance.stop(0.5)
                instance = None
        return result, instance


def _function_error(payload: bytes) -> FunctionError:
    """The handler's error as an exception of its type's name (``KeyError: 'x'``)."""
    try:
        error = json.loads(payload)
        kind = str(error.get("errorType") or "Error")[:80]
        message = str(error.get("errorMessage") or "")[:400]
    except (ValueError, AttributeError):
        kind, message = "Error", payload.decode("utf-8", "replace")[:400]
    error_class: type[FunctionError] = type(kind, (FunctionError,), {})
    return error_class(message)


def _result(reply: dict[str, Any] | None) -> InvokeResult:
    if reply is None:
        body = {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"}
        return InvokeResult(200, json.dumps(body).encode(), "Unhandled")
    if "error" in reply:
        return InvokeResult(200, json.dumps(reply["error"]).encode(), "Unhandled")
    return InvokeResult(200, json.dumps(reply.get("result")).encode())


def _handler_class(service: LambdaService) -> type[BaseHTTPRequestHandler]:
    class InvokeHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            if not (path.startswith(INVOKE_PREFIX) and path.endswith("/invocations")):
                self._reply(InvokeResult(404, b'{"message":"not found"}'))
                return
            name = path[len(INVOKE_PREFIX) : -len("/invocations")]
            try:
                event = json.loads(raw or b"{}")
            except ValueError:
                self._reply(
                    InvokeResult(
                        400,
                        b'{"message":"invalid JSON"}',
                        error_type="InvalidRequestContentException",
                    )
                )
                return
            self._reply(service.invoke(name, event, self.headers.get("X-Amzn-Trace-Id")))

        def _reply(self, result: InvokeResult) -> None:
            self.send_response(result.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(result.payload)))
            if result.function_error:
                self.send_header("X-Amz-Function-Error", result.function_error)
            if result.error_type:
                self.send_header("X-Amzn-ErrorType", result.error_type)
            try:
                self.end_headers()
                self.wfile.write(result.payload)
            except (BrokenPipeError, ConnectionResetError):
                # the caller stopped waiting (API Gateway's integration timeout, a client's
                # read timeout): as in Lambda, the invocation ran all the same
                self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return InvokeHandler
