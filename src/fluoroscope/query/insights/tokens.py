"""Tokenizer for Logs Insights queries: text in, a list of ``Token`` ending in ``EOF`` out.

Lexical rules (``reference/logs.md`` §4):

- Whitespace is space, tab, CR and LF; ``#`` starts a comment running to the end of the
  line (outside strings, regexes and back-quoted names).
- Names are ``@?[A-Za-z_][A-Za-z0-9_]*`` followed by dotted parts of letters, digits,
  ``_``, ``@`` and ``$`` (``@message``, ``requestParameters.items.0.instanceId``), or
  anything between back quotes (`` `foo-bar` ``). A name's ``value`` is the name as
  written (back quotes removed). ``and or not like in as by asc desc`` (any case) get
  their own kinds; command names are ordinary names (the parser decides).
- Strings are single- or double-quoted; ``\\n \\t \\r \\\\ \\" \\'`` are escapes, any
  other backslash is kept as written (so ``"a\\.b"`` holds a backslash).
- ``/.../`` is a regular expression where one may stand: after ``like``, ``=~``, or
  the field of a ``parse`` command; elsewhere ``/`` divides. ``\\/`` inside stays as
  written (RE2 reads it as a slash). ``value`` is the pattern text.
- Numbers are decimal with optional fraction and exponent; a number followed by a unit
  (``ms s m h d w``) is a ``DURATION`` whose value is ``(number, unit)``.
- Punctuation ``| , ( ) [ ]`` and operators ``= != < <= > >= =~ + - * / % ^``.

Every token carries ``start`` and ``end`` offsets. Errors raise ``InsightsSyntaxError``
with the offending span. Pure function, no state.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

from fluoroscope.query.insights.errors import InsightsSyntaxError

__all__ = ["DURATION_UNITS", "MAX_TOKENS", "Token", "TokenKind", "tokenize"]

MAX_TOKENS = 5000
"""Most tokens one query may hold (including the final EOF)."""

DURATION_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 604800,
}
"""Time units of a duration literal (``5m``), in seconds."""


class TokenKind(enum.Enum):
    PIPE = "'|'"
    COMMA = "','"
    LPAREN = "'('"
    RPAREN = "')'"
    LBRACKET = "'['"
    RBRACKET = "']'"
    EQ = "'='"
    NE = "'!='"
    LT = "'<'"
    LE = "'<='"
    GT = "'>'"
    GE = "'>='"
    MATCH = "'=~'"
    PLUS = "'+'"
    MINUS = "'-'"
    STAR = "'*'"
    SLASH = "'/'"
    PERCENT = "'%'"
    CARET = "'^'"
    AND = "and"
    OR = "or"
    NOT = "not"
    LIKE = "like"
    IN = "in"
    AS = "as"
    BY = "by"
    ASC = "asc"
    DESC = "desc"
    NAME = "a name"
    STRING = "a string"
    REGEX = "a regular expression"
    NUMBER = "a number"
    DURATION = "a duration"
    EOF = "end of query"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``text`` is the exact source slice ``[start, end)``."""

    kind: TokenKind
    text: str
    value: str | float | tuple[float, str] | None
    start: int
    end: int

    def describe(self) -> str:
        """How an error message names this token."""
        if self.kind is TokenKind.EOF:
            return "end of query"
        return f"'{_shorten(self.text)}'"


def _shorten(text: str, limit: int = 40) -> str:
    text = " ".join(text.split()) if "\n" in text else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


_SINGLE: dict[str, TokenKind] = {
    "|": TokenKind.PIPE,
    ",": TokenKind.COMMA,
    "(": TokenKind.LPAREN,
    ")": TokenKind.RPAREN,
    "[": TokenKind.LBRACKET,
    "]": TokenKind.RBRACKET,
    "+": TokenKind.PLUS,
    "-": TokenKind.MINUS,
    "*": TokenKind.STAR,
    "%": TokenKind.PERCENT,
    "^": TokenKind.CARET,
}
_OPERATORS: dict[str, TokenKind] = {  # two-character ones first
    "!=": TokenKind.NE,
    "<=": TokenKind.LE,
    ">=": TokenKind.GE,
    "=~": TokenKind.MATCH,
    "=": TokenKind.EQ,
    "<": TokenKind.LT,
    ">": TokenKind.GT,
}
_RESERVED: dict[str, TokenKind] = {
    "and": TokenKind.AND,
    "or": TokenKind.OR,
    "not": TokenKind.NOT,
    "like": TokenKind.LIKE,
    "in": TokenKind.IN,
    "as": TokenKind.AS,
    "by": TokenKind.BY,
    "asc": TokenKind.ASC,
    "desc": TokenKind.DESC,
}
_ESCAPES: dict[str, str] = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
_WHITESPACE = frozenset(" \t\r\n")
_NAME = re.compile(r"@?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_@$]+)*")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_UNIT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HINTS: dict[str, str] = {
    "&": "; use 'and'",
    "!": "; use 'not' or '!='",
    "{": "; JSON fields are named with dots, e.g. a.b.c",
}


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []

    def error(self, reason: str, start: int, end: int | None = None) -> InsightsSyntaxError:
        return InsightsSyntaxError(reason, self.text, start, end)

    def emit(
        self, kind: TokenKind, value: str | float | tuple[float, str] | None, start: int, end: int
    ) -> int:
        if len(self.tokens) >= MAX_TOKENS - 1:
            raise self.error(f"query has more than {MAX_TOKENS - 1} tokens", start, end)
        self.tokens.append(Token(kind, self.text[start:end], value, start, end))
        return end

    def regex_allowed(self) -> bool:
        """A ``/`` opens a regex after ``like``, ``=~`` or ``parse <field>``."""
        toks = self.tokens
        if toks and toks[-1].kind in (TokenKind.LIKE, TokenKind.MATCH):
            return True
        return (
            len(toks) >= 2
            and toks[-1].kind is TokenKind.NAME
            and toks[-2].kind is TokenKind.NAME
            and str(toks[-2].value).lower() == "parse"
            and (len(toks) == 2 or toks[-3].kind is TokenKind.PIPE)
        )

    def run(self) -> list[Token]:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            c = text[i]
            if c in _WHITESPACE:
                i += 1
            elif c == "#":
                newline = text.find("\n", i)
                i = n if newline < 0 else newline + 1
            elif c in "!=<>" and (text[i : i + 2] in _OPERATORS or c in _OPERATORS):
                op = text[i : i + 2] if text[i : i + 2] in _OPERATORS else c
                i = self.emit(_OPERATORS[op], None, i, i + len(op))
            elif c in _SINGLE:
                i = self.emit(_SINGLE[c], None, i, i + 1)
            elif c == "/":
                if self.regex_allowed():
                    i = self.regex(i)
                else:
                    i = self.emit(TokenKind.SLASH, None, i, i + 1)
            elif c in "\"'":
                i = self.string(i)
            elif c == "`":
                close = text.find("`", i + 1)
                if close < 0:
                    raise self.error("unterminated back-quoted name", i, n)
                if close == i + 1:
                    raise self.error("empty back-quoted name", i, i + 2)
                i = self.emit(TokenKind.NAME, text[i + 1 : close], i, close + 1)
            elif c.isascii() and (c.isdigit() or c == "."):
                i = self.number(i)
            elif c.isascii() and (c.isalpha() or c in "_@"):
                i = self.name(i)
            else:
                shown = f"U+{ord(c):04X}" if not c.isprintable() else repr(c)
                raise self.error(f"unexpected character {shown}{_HINTS.get(c, '')}", i, i + 1)
        self.tokens.append(Token(TokenKind.EOF, "", None, n, n))
        return self.tokens

    def string(self, start: int) -> int:
        text, quote, i, n = self.text, self.text[start], start + 1, len(self.text)
        out: list[str] = []
        while i < n:
            c = text[i]
            if c == quote:
                return self.emit(TokenKind.STRING, "".join(out), start, i + 1)
            if c == "\\" and i + 1 < n:
                esc = text[i + 1]
                out.append(_ESCAPES.get(esc, "\\" + esc))
                i += 2
                continue
            out.append(c)
            i += 1
        raise self.error("unterminated string", start, n)

    def regex(self, start: int) -> int:
        text, i, n = self.text, start + 1, len(self.text)
        while i < n:
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == "/":
                pattern = text[start + 1 : i]
                if not pattern:
                    raise self.error("empty regular expression", start, i + 1)
                return self.emit(TokenKind.REGEX, pattern, start, i + 1)
            i += 1
        raise self.error("unterminated regular expression; close it with '/'", start, n)

    def number(self, start: int) -> int:
        text = self.text
        m = _NUMBER.match(text, start)
        if m is None:
            raise self.error(f"unexpected character {text[start]!r}", start, start + 1)
        end = m.end()
        value = float(m.group())
        if not math.isfinite(value):
            raise self.error("number out of range", start, end)
        unit = _UNIT.match(text, end)
        if unit is None:
            if end < len(text) and text[end] in ".@$":
                raise self.error("malformed number", start, end + 1)
            return self.emit(TokenKind.NUMBER, value, start, end)
        if unit.group() not in DURATION_UNITS:
            units = " ".join(DURATION_UNITS)
            raise self.error(
                f"unknown time unit '{unit.group()}' after {m.group()}; use one of {units}",
                end,
                unit.end(),
            )
        return self.emit(TokenKind.DURATION, (value, unit.group()), start, unit.end())

    def name(self, start: int) -> int:
        text = self.text
        m = _NAME.match(text, start)
        if m is None:
            raise self.error("expected a name after '@'", start, start + 1)
        end = m.end()
        if end < len(text) and text[end] == ".":
            raise self.error(f"expected a name part after '{m.group()}.'", end + 1, end + 1)
        kind = _RESERVED.get(m.group().lower(), TokenKind.NAME)
        return self.emit(kind, m.group(), start, end)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; the last is always ``EOF`` at ``len(text)``.

    Raises ``InsightsSyntaxError`` on any lexical error or past ``MAX_TOKENS``.
    """
    return _Lexer(text).run()
