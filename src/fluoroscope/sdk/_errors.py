"""The SDK's exceptions, under the project's single root.

::

    FluoroscopeError                 (fluoroscope.model.errors)
    └── TracingError                 anything the SDK raises on purpose
        ├── ContextMissingError      no current segment and context_missing="raise"
        └── ConfigurationError       an explicit argument cannot be used (also a ValueError)
            └── SamplingRulesError   a local sampling rules document is invalid

The SDK raises these only from calls made explicitly by the application at setup
time (bad arguments) or under the opt-in ``context_missing="raise"`` policy. Tracing
itself (recording, serializing, sending) never raises into application code.
"""

from __future__ import annotations

from fluoroscope.model.errors import FluoroscopeError

__all__ = ["ConfigurationError", "ContextMissingError", "SamplingRulesError", "TracingError"]


class TracingError(FluoroscopeError):
    """Root of the SDK's exceptions."""


class ContextMissingError(TracingError):
    """No segment is active in this context, and the policy is ``"raise"``."""


class ConfigurationError(TracingError, ValueError):
    """An explicit configuration value (address, policy, rules, ...) is invalid."""


class SamplingRulesError(ConfigurationError):
    """A local sampling rules document (xray-protocol §7.2) is invalid."""
