"""One Lambda function instance: a process that imports a handler and runs invocations.

Run as ``python -m fluoroscope.demo.worker`` by :mod:`fluoroscope.demo.lambda_runtime`,
with the sandbox's environment (``AWS_XRAY_DAEMON_ADDRESS``, dummy credentials, ...;
the function's own variables come with the ``init`` message). It speaks JSON lines with the runtime, like Lambda's Runtime API
does over HTTP:

* on start it imports the modules named in ``FLUOROSCOPE_DEMO_PRELOAD`` (comma
  separated: the runtime's libraries, as a pre-provisioned sandbox has them), writes
  ``{"standby": true}``, then waits for ``{"init": {"handler": "module:function", "environment": {...}}}``: it
  applies the environment, imports the handler (the function's initialization) and
  writes ``{"ready": true}``; an import error is written as ``{"init_error": {...}}``
  and the process exits;
* for each request line ``{"event", "trace_id_header", "request_id", "function_arn",
  "deadline"}`` it sets ``_X_AMZN_TRACE_ID`` (Root;Parent;Sampled, §1.4), calls
  ``handler(event, context)`` and writes ``{"result": ...}`` or ``{"error": {"errorType",
  "errorMessage", "stackTrace"}}``, then ``{"ready": true}`` when it can take the next
  one (the time in between is the runtime's ``Overhead``);
* end of input ends the process.

What the function writes reaches the runtime as ``{"log": text, "ts": epoch ms}``
messages, as Lambda's telemetry file descriptor carries it to CloudWatch Logs: each
``logging`` record on the root logger in the Python runtime's text format
(``[LEVEL]\t<UTC time>Z\t<request id>\t<message>``, one message per record, multi-line
included; the root logger at ``INFO``), each line printed to stdout as it is (a JSON
logger writing to stdout, as Powertools does, stays one line), and an uncaught handler
error as ``[ERROR] Type: message`` plus its traceback (no time or request id, as the
runtime writes it). ``result``/``error`` carry ``max_memory_mb``, the process's peak RSS.

The protocol goes through a private duplicate of the original stdout; writes to it are
serialized (handlers may log from several threads). One invocation at a time, as in Lambda; ``LAMBDA_TASK_ROOT`` is put first on
``sys.path``, as Lambda does with ``/var/task``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import resource
import sys
import threading
import time
import traceback
from typing import Any, TextIO

__all__ = ["Context", "main"]


class Context:
    """The ``context`` argument handlers receive (the attributes Lambda's has)."""

    def __init__(self, request_id: str, function_arn: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the runtime times the invocation out."""
        import time

        return max(0, int((self._deadline - time.time()) * 1000))


_write_lock = threading.Lock()
_request_id = ""  # the invocation running now ('' during initialization)


def _send(out: TextIO, message: dict[str, Any]) -> None:
    text = json.dumps(message, default=str) + "\n"
    with _write_lock:
        out.write(text)
        out.flush()


def _ship(out: TextIO, text: str) -> None:
    _send(out, {"log": text, "ts": int(time.time() * 1000)})


def _utc(seconds: float | None = None) -> time.struct_time:
    return time.gmtime(seconds)


class _RuntimeFormatter(logging.Formatter):
    """The Python runtime's text line (awslambdaric's default format, UTC)."""

    def __init__(self) -> None:
        super().__init__(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
        self.converter = _utc

    def format(self, record: logging.LogRecord) -> str:
        record.aws_request_id = _request_id
        return super().format(record)


class _RuntimeHandler(logging.Handler):
    """Each record on the root logger becomes one log event."""

    def __init__(self, out: TextIO) -> None:
        super().__init__(logging.NOTSET)
        self.out = out
        self.setFormatter(_RuntimeFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _ship(self.out, self.format(record))
        except Exception:  # a logging failure never breaks the handler
            self.handleError(record)


class _StdoutLines(io.TextIOBase):
    """stdout: each complete line becomes one log event."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._pending = ""
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._pending += text
            *lines, self._pending = self._pending.split("\n")
        for line in lines:
            _ship(self.out, line + "\n")
        return len(text)


def _uncaught(exc: BaseException) -> str:
    """An uncaught handler error as the runtime logs it (stack lines indented with NBSP)."""
    frames = traceback.format_tb(exc.__traceback__)[-12:]
    stack = "".join(f.replace("  ", "\u00a0\u00a0") for f in frames).rstrip("\n")
    return f"[ERROR] {type(exc).__name__}: {exc}\nTraceback (most recent call last):\n{stack}\n"


def _max_memory_mb() -> int:
    return max(1, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-12:],
    }


def main() -> int:
    """Serve invocations until stdin closes; returns the exit status."""
    global _request_id
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = _StdoutLines(out)
    root = logging.getLogger()
    root.addHandler(_RuntimeHandler(out))
    root.setLevel(logging.INFO)
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if task_root and task_root not in sys.path:
        sys.path.insert(0, task_root)  # as Lambda puts /var/task first
    for name in filter(None, os.environ.get("FLUOROSCOPE_DEMO_PRELOAD", "").split(",")):
        with contextlib.suppress(ImportError):  # the handler's own import reports it
            importlib.import_module(name.strip())
    _send(out, {"standby": True})
    line = sys.stdin.readline()
    if not line:
        return 0  # a standby sandbox that was never used
    try:
        init = json.loads(line)["init"]
        os.environ.update(init.get("environment") or {})
        module_name, _, attr = str(init["handler"]).partition(":")
        os.environ["_HANDLER"] = init["handler"]
        handler = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:
        _send(out, {"init_error": _error(exc)})
        return 1
    _send(out, {"ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        os.environ["_X_AMZN_TRACE_ID"] = request["trace_id_header"]
        _request_id = request["request_id"]
        context = Context(request["request_id"], request["function_arn"], request["deadline"])
        try:
            result = handler(request["event"], context)
            _send(out, {"result": result, "max_memory_mb": _max_memory_mb()})
        except Exception as exc:
            _ship(out, _uncaught(exc))
            _send(out, {"error": _error(exc), "max_memory_mb": _max_memory_mb()})
        finally:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
            _request_id = ""
        _send(out, {"ready": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
