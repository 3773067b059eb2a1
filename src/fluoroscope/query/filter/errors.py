"""The one error a filter expression can raise: ``FilterSyntaxError``.

::

    InvalidRequest                 (fluoroscope.model.errors; the server answers
    └── FilterSyntaxError           InvalidRequestException)

Its message names what was expected and what was found, the position, then the
excerpt of the expression with a caret under the offending character::

    expected a number after 'responsetime >', found "slow" at position 15
    responsetime > "slow"
                   ^
"""

from __future__ import annotations

from fluoroscope.model.errors import InvalidRequest

__all__ = ["FilterSyntaxError", "SpanSyntaxError", "excerpt"]

_WINDOW = 72  # characters of excerpt shown around the position in long expressions


class FilterSyntaxError(InvalidRequest):
    """A filter expression could not be parsed.

    ``position`` is a character offset in ``[0, len(expression)]`` (``len`` means "at
    the end"); ``reason`` is the first line without the position; ``str(error)`` is the
    whole three-line message.
    """

    def __init__(self, reason: str, expression: str, position: int, *, hint: str = "") -> None:
        position = min(max(position, 0), len(expression))
        self.reason = reason
        self.expression = expression
        self.position = position
        self.hint = hint
        super().__init__(f"{reason} at position {position}{hint}\n{excerpt(expression, position)}")

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


def excerpt(expression: str, position: int) -> str:
    """Two lines: (part of) ``expression`` and a caret under ``position``.

    Whitespace and control characters print as spaces so the caret stays aligned; long
    expressions are cut to a window around the position, marked with ``...``.
    """
    start = max(0, position - _WINDOW // 2)
    stop = min(len(expression), start + _WINDOW)
    start = max(0, min(start, stop - _WINDOW))
    shown = "".join(c if c.isprintable() else " " for c in expression[start:stop])
    prefix = "..." if start > 0 else ""
    suffix = "..." if stop < len(expression) else ""
    caret = " " * (len(prefix) + position - start) + "^"
    return f"{prefix}{shown}{suffix}\n{caret}"


class SpanSyntaxError(InvalidRequest):
    """A query text (a Logs Insights query, a filter pattern) could not be parsed or
    compiled, at a span of characters.

    ``start``/``end``: the offending span, clamped into ``[0, len(text)]``; ``position``
    is ``start``. ``reason`` is the first line without the position (control characters
    it quotes are escaped, so it stays one line); ``str(error)`` the whole three-line
    message, as :class:`FilterSyntaxError`'s.
    """

    def __init__(self, reason: str, text: str, start: int, end: int | None = None) -> None:
        start = min(max(start, 0), len(text))
        end = start if end is None else min(max(end, start), len(text))
        reason = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in reason)
        self.reason = reason
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
