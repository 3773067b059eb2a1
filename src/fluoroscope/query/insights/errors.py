"""The one error a Logs Insights query can raise: ``InsightsSyntaxError``.

::

    InvalidRequest                 (fluoroscope.model.errors)
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

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.query.filter.errors import excerpt

__all__ = ["InsightsSyntaxError"]


class InsightsSyntaxError(InvalidRequest):
    """A query could not be parsed or compiled.

    ``start``/``end``: the offending span, clamped into ``[0, len(text)]``; ``position``
    is ``start``. ``reason`` is the first line without the position; ``str(error)`` the
    whole three-line message.
    """

    def __init__(self, reason: str, text: str, start: int, end: int | None = None) -> None:
        start = min(max(start, 0), len(text))
        end = start if end is None else min(max(end, start), len(text))
        reason = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in reason)
        self.reason = reason  # one line: control characters it quotes are escaped
        self.text = text
        self.start = start
        self.end = end
        super().__init__(f"{reason} at position {start}\n{excerpt(text, start)}")

    @property
    def position(self) -> int:
        return self.start

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""
