"""The one error a filter pattern can raise: ``PatternSyntaxError``.

::

    InvalidRequest                 (fluoroscope.model.errors)
    └── PatternSyntaxError         the Logs API answers InvalidParameterException

``position`` is a character offset in ``[0, len(pattern)]`` (``start``/``end`` the
offending span); the message names what was expected and what was found, the position,
then an excerpt with a caret::

    expected a value after '$.level =', found '}' at position 12
    { $.level = }
                ^
"""

from __future__ import annotations

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.query.filter.errors import excerpt

__all__ = ["PatternSyntaxError"]


class PatternSyntaxError(InvalidRequest):
    """A filter pattern could not be parsed (see the module docstring)."""

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
