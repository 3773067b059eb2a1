"""Every environment variable the SDK reads, named in one place, with its parser.

Precedence everywhere: explicit argument > environment > default. A malformed
*environment* value never raises: it is logged once and the default is used (the
environment is not the application's code). A malformed explicit argument raises
:class:`~fluoroscope.sdk._errors.ConfigurationError` at setup time.

The variables are read when a :class:`~fluoroscope.sdk.Tracer` or a
:class:`~fluoroscope.sdk.LogsHandler` is built (or, for the Lambda header, on each
invocation), never at import time.
"""

from __future__ import annotations

import os
from typing import Final

__all__ = [
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_XRAY_CONTEXT_MISSING",
    "AWS_XRAY_DAEMON_ADDRESS",
    "AWS_XRAY_SDK_ENABLED",
    "AWS_XRAY_TRACING_NAME",
    "FLUOROSCOPE_LOGS_ENDPOINT",
    "FLUOROSCOPE_LOGS_TOKEN",
    "FLUOROSCOPE_LOG_GROUP",
    "FLUOROSCOPE_LOG_STREAM",
    "LAMBDA_TASK_ROOT",
    "LOGS_ENDPOINT_URL",
    "X_AMZN_TRACE_ID",
    "env",
    "env_enabled",
]

AWS_XRAY_DAEMON_ADDRESS: Final = "AWS_XRAY_DAEMON_ADDRESS"
"""``host:port`` or ``tcp:host:port udp:host:port``; default ``127.0.0.1:2000``."""

AWS_XRAY_CONTEXT_MISSING: Final = "AWS_XRAY_CONTEXT_MISSING"
"""``RUNTIME_ERROR`` / ``LOG_ERROR`` / ``IGNORE_ERROR`` (or ``raise`` / ``log`` / ``ignore``)."""

AWS_XRAY_TRACING_NAME: Final = "AWS_XRAY_TRACING_NAME"
"""Default segment name when ``Tracer(service=...)`` is not given."""

AWS_XRAY_SDK_ENABLED: Final = "AWS_XRAY_SDK_ENABLED"
"""``false``/``0``/``no``/``off`` disables tracing (nothing recorded, nothing patched)."""

LAMBDA_TASK_ROOT: Final = "LAMBDA_TASK_ROOT"
"""Set inside AWS Lambda (and emulators)."""

X_AMZN_TRACE_ID: Final = "_X_AMZN_TRACE_ID"
"""The Lambda invocation's trace header (xray-protocol §1.4); read per invocation."""

AWS_LAMBDA_FUNCTION_NAME: Final = "AWS_LAMBDA_FUNCTION_NAME"
"""The Lambda function's name, used as the default service name there."""

FLUOROSCOPE_LOGS_ENDPOINT: Final = "FLUOROSCOPE_LOGS_ENDPOINT"
"""Where :class:`~fluoroscope.sdk.LogsHandler` sends records: the server's base URL
(``http://HOST:PORT``); else :data:`LOGS_ENDPOINT_URL`; else ``http://`` + the TCP part of
``AWS_XRAY_DAEMON_ADDRESS``; else ``http://127.0.0.1:2000``."""

LOGS_ENDPOINT_URL: Final = "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"
"""The endpoint boto3 and the AWS CLI use for CloudWatch Logs; the handler honours it too."""

FLUOROSCOPE_LOGS_TOKEN: Final = "FLUOROSCOPE_LOGS_TOKEN"
"""A token the handler sends as ``Authorization: Bearer TOKEN`` (a server's ``--api-key``)."""

FLUOROSCOPE_LOG_GROUP: Final = "FLUOROSCOPE_LOG_GROUP"
"""The handler's log group; default: the service name."""

FLUOROSCOPE_LOG_STREAM: Final = "FLUOROSCOPE_LOG_STREAM"
"""The handler's log stream; default: the host name."""

_FALSE: Final = frozenset(("false", "0", "no", "off", "n", "f", "disabled"))


def env(name: str) -> str | None:
    """The variable's value with surrounding spaces removed, or None when unset/empty."""
    value = os.environ.get(name)
    if value is None:
        return None
    value = value.strip()
    return value or None


def env_enabled() -> bool:
    """False when ``AWS_XRAY_SDK_ENABLED`` says so; True when unset or anything else."""
    value = env(AWS_XRAY_SDK_ENABLED)
    return value is None or value.lower() not in _FALSE
