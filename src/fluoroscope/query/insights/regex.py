"""Regular expressions of a query, checked with RE2 - the engine's own library.

The engine (ClickHouse) evaluates ``match``/``extractGroups`` with RE2, which never
backtracks; a pattern RE2 rejects (look-arounds, back-references, a bad class) must be
refused here, as a syntax error pointing at the ``/.../`` literal, never reach the
engine. ``check(pattern)`` compiles the pattern with the same library (``google-re2``)
and returns it rewritten for the engine: ``(?<name>`` named groups become
``(?P<name>``, the spelling every RE2 release reads, with the names in group order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import re2  # type: ignore[import-untyped]

__all__ = ["CheckedRegex", "RegexError", "check"]

MAX_PATTERN = 4096
_NAMED = re.compile(r"\\.|\[(?:\\.|[^\]])*\]|\(\?<(?![=!])")


class RegexError(ValueError):
    """RE2 refused the pattern; ``str(error)`` says why."""


@dataclass(frozen=True, slots=True)
class CheckedRegex:
    """``pattern``: the text to send to the engine; ``groups``: how many capturing
    groups it has; ``names``: ``(name, group number from 1)`` in order."""

    pattern: str
    groups: int
    names: tuple[tuple[str, int], ...]


def _engine_spelling(pattern: str) -> str:
    """``(?<name>`` -> ``(?P<name>`` outside escapes and character classes."""

    def fix(m: re.Match[str]) -> str:
        return "(?P<" if m.group() == "(?<" else m.group()

    return _NAMED.sub(fix, pattern)


def check(pattern: str) -> CheckedRegex:
    """Compile ``pattern`` with RE2; raise ``RegexError`` with RE2's reason if it cannot."""
    if len(pattern) > MAX_PATTERN:
        raise RegexError(f"regular expression longer than {MAX_PATTERN} characters")
    if "\x00" in pattern:
        raise RegexError("NUL character in regular expression")
    spelled = _engine_spelling(pattern)
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(spelled, options)
    except re2.error as exc:
        said = exc.args[0] if exc.args else b""
        reason = said.decode(errors="replace") if isinstance(said, bytes) else str(said)
        raise RegexError(reason or "invalid regular expression") from None
    except (TypeError, ValueError) as exc:  # e.g. text RE2 cannot take as UTF-8
        raise RegexError(str(exc) or "invalid regular expression") from None
    names = tuple(sorted(compiled.groupindex.items(), key=lambda item: item[1]))
    return CheckedRegex(spelled, int(compiled.groups), names)
