"""FilterLogEvents filter patterns: parse, print, compile to a SQL condition.

``parse_pattern(text) -> Pattern`` (the tree of ``ast``) raises ``PatternSyntaxError``
(an ``InvalidRequest``; the Logs API answers ``InvalidParameterException``) carrying
``position``/``start``/``end`` and a message. ``compile_pattern(pattern) -> (condition,
params)`` gives a condition over the ``log_events`` columns ``message`` and ``json``
with its ``{fpN:Type}`` parameters. ``to_pattern(pattern)`` prints a tree back.

Pure functions, safe from any thread.
"""

from __future__ import annotations

from fluoroscope.query.patterns.ast import Pattern
from fluoroscope.query.patterns.compile import compile_pattern
from fluoroscope.query.patterns.errors import PatternSyntaxError
from fluoroscope.query.patterns.parser import MAX_LENGTH, parse_pattern
from fluoroscope.query.patterns.printer import to_pattern

__all__ = [
    "MAX_LENGTH",
    "Pattern",
    "PatternSyntaxError",
    "compile_pattern",
    "parse_pattern",
    "to_pattern",
]
