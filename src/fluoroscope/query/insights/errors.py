"""The one error a Logs Insights query can raise: ``InsightsSyntaxError``.

::

    InvalidRequest                 (fluoroscope.model.errors)
    └── SpanSyntaxError            (fluoroscope.query.filter.errors)
        └── InsightsSyntaxError        the Logs API answers MalformedQueryException with
                                   queryCompileError {location {startCharOffset,
                                   endCharOffset}, message}

``start``/``end`` are character offsets into the query text (``start <= end``, both
within ``[0, len(text)]``); the message names what was expected and what was found, the
position, then an excerpt with a caret under the offending character::

    expected a field name after 'fields', found '|' at position 7
    fields | limit 5
           ^

Semantic problems found while compiling (an unknown function, a field that a ``stats``
no longer produces, a regular expression the engine's RE2 rejects) raise the same error,
pointing at the construct.
"""

from __future__ import annotations

from fluoroscope.query.filter.errors import SpanSyntaxError

__all__ = ["InsightsSyntaxError"]


class InsightsSyntaxError(SpanSyntaxError):
    """A query could not be parsed or compiled (see :class:`SpanSyntaxError`)."""
