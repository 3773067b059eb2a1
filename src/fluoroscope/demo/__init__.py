"""The sample serverless app of ``fluoroscope demo``, and its traffic generator.

An orders API deployed locally the way it would be on AWS — an API Gateway stage,
Lambda functions, DynamoDB, S3 and a third-party HTTP API — every piece a real server
on loopback, instrumented only through :mod:`fluoroscope.sdk` (the handlers in
:mod:`fluoroscope.demo.functions` double as an example of tracing Lambda code):

* :class:`~fluoroscope.demo.app.DemoApp` starts and stops the deployment;
* :class:`~fluoroscope.demo.traffic.Traffic` sends it a realistic mix of requests.

Starting the Fluoroscope server and the ``fluoroscope demo`` command itself live in
``fluoroscope.cli`` (the composition root); this package imports only the SDK and
the model. It needs the ``demo`` extra (boto3, moto, requests, httpx).
"""

from __future__ import annotations

__all__ = ["REQUIREMENTS", "DemoApp", "Traffic", "TrafficStats", "missing_requirements"]

import importlib.util

from fluoroscope.demo.app import DemoApp
from fluoroscope.demo.traffic import Traffic, TrafficStats

REQUIREMENTS = ("boto3", "moto", "flask", "requests", "httpx", "yaml")
"""Modules the app's processes import (the ``demo`` extra); ``flask`` is moto's server."""


def missing_requirements() -> list[str]:
    """The :data:`REQUIREMENTS` that are not installed (imports nothing)."""
    return [name for name in REQUIREMENTS if importlib.util.find_spec(name) is None]
