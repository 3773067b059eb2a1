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

The protocol goes through a private duplicate of the original stdout; the handler's own
prints go to stderr. One invocation at a time, as in Lambda; ``LAMBDA_TASK_ROOT`` is put first on
``sys.path``, as Lambda does with ``/var/task``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
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


def _send(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message, default=str) + "\n")
    out.flush()


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-12:],
    }


def main() -> int:
    """Serve invocations until stdin closes; returns the exit status."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
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
        context = Context(request["request_id"], request["function_arn"], request["deadline"])
        try:
            result = handler(request["event"], context)
            _send(out, {"result": result})
        except Exception as exc:
            traceback.print_exc()
            _send(out, {"error": _error(exc)})
        finally:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        _send(out, {"ready": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
