"""Fluoroscope: self-hosted, live AWS X-Ray.

The top-level package does no work at import time. ``fluoroscope.sdk`` is the
instrumentation SDK (standard library only); the server side lives in the
``ingest``, ``store``, ``query`` and ``server`` packages and needs the
``server`` extra.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
