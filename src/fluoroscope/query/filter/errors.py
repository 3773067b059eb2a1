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

__all__ = ["FilterSyntaxError"]

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
