"""The one error a filter pattern can raise: ``PatternSyntaxError``.

::

    InvalidRequest                 (fluoroscope.model.errors)
    └── SpanSyntaxError            (fluoroscope.query.filter.errors)
        └── PatternSyntaxError         the Logs API answers InvalidParameterException

``position`` is a character offset in ``[0, len(pattern)]`` (``start``/``end`` the
offending span); the message names what was expected and what was found, the position,
then an excerpt with a caret::

    expected a value after '$.level =', found '}' at position 12
    { $.level = }
                ^
"""

from __future__ import annotations

from fluoroscope.query.filter.errors import SpanSyntaxError

__all__ = ["PatternSyntaxError"]


class PatternSyntaxError(SpanSyntaxError):
    """A filter pattern could not be parsed (see the module docstring)."""
