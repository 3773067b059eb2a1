"""Tokenizer for filter expressions: text in, a list of ``Token`` ending in ``EOF`` out.

Lexical rules (``reference/xray-protocol.md`` §5.1):

- Whitespace is space, tab, CR and LF; any other control character, a lone surrogate
  or a character that starts no token is an error at that character.
- Words are ASCII identifiers with dots: ``responsetime``, ``http.status``,
  ``rootcause.fault.service``, ``group.name``, ``account.id``. A word's ``value`` is
  its lowercase form (keywords are case-insensitive); ``AND OR NOT CONTAINS BEGINSWITH
  ENDSWITH TRUE FALSE`` get their own kinds. Which words are known keywords is the
  parser's business (so it can say where a keyword is allowed).
- ``annotation.key`` and ``annotation[key]`` are one ``ANNOTATION`` token whose value
  is the key, case kept; the bracket key is a double-quoted string or a bare run of
  letters, digits and ``_ . : - / @ $``.
- Strings are double-quoted with JSON escapes (``\\" \\\\ \\/ \\b \\f \\n \\r \\t
  \\uXXXX``); raw control characters inside are errors.
- Numbers are decimal, optionally negative, with optional fraction and exponent;
  ``value`` is a finite ``float``.
- Punctuation ``( ) { } , :``, comparison operators ``= != < <= > >=``, ``!``.
- ``#[ ... ]`` is a JSON array literal (for ``rootcause.json``); ``value`` is the
  canonical JSON text of the array, whose elements must be objects.

Every token carries ``start`` and ``end`` offsets into the text. Errors raise
``FilterSyntaxError`` with the offending offset. Pure function, no state.
"""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass

from fluoroscope.query.filter.errors import FilterSyntaxError

__all__ = ["MAX_TOKENS", "Token", "TokenKind", "tokenize"]

MAX_TOKENS = 1000
"""Most tokens one expression may hold (including the final EOF)."""


class TokenKind(enum.Enum):
    LPAREN = "'('"
    RPAREN = "')'"
    LBRACE = "'{'"
    RBRACE = "'}'"
    COMMA = "','"
    COLON = "':'"
    EQ = "'='"
    NE = "'!='"
    LT = "'<'"
    LE = "'<='"
    GT = "'>'"
    GE = "'>='"
    BANG = "'!'"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    CONTAINS = "CONTAINS"
    BEGINSWITH = "BEGINSWITH"
    ENDSWITH = "ENDSWITH"
    TRUE = "true"
    FALSE = "false"
    WORD = "a keyword"
    ANNOTATION = "an annotation"
    STRING = "a string"
    NUMBER = "a number"
    JSON = "a JSON literal"
    EOF = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: ``text`` is the exact source slice ``[start, end)``."""

    kind: TokenKind
    text: str
    value: str | float | bool | None
    start: int
    end: int

    def describe(self) -> str:
        """How an error message names this token: ``'>'``, ``"slow"``, ``5``, ..."""
        if self.kind is TokenKind.EOF:
            return "end of expression"
        if self.kind in (TokenKind.STRING, TokenKind.NUMBER, TokenKind.JSON):
            return _shorten(self.text)
        return f"'{_shorten(self.text)}'"


def _shorten(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


_PUNCTUATION: dict[str, TokenKind] = {
    "(": TokenKind.LPAREN,
    ")": TokenKind.RPAREN,
    "{": TokenKind.LBRACE,
    "}": TokenKind.RBRACE,
    ",": TokenKind.COMMA,
    ":": TokenKind.COLON,
}
_OPERATORS: dict[str, TokenKind] = {  # longest first
    "!=": TokenKind.NE,
    "<=": TokenKind.LE,
    ">=": TokenKind.GE,
    "=": TokenKind.EQ,
    "<": TokenKind.LT,
    ">": TokenKind.GT,
    "!": TokenKind.BANG,
}
_RESERVED_WORDS: dict[str, TokenKind] = {
    "and": TokenKind.AND,
    "or": TokenKind.OR,
    "not": TokenKind.NOT,
    "contains": TokenKind.CONTAINS,
    "beginswith": TokenKind.BEGINSWITH,
    "endswith": TokenKind.ENDSWITH,
    "true": TokenKind.TRUE,
    "false": TokenKind.FALSE,
}
_ESCAPES: dict[str, str] = {
    '"': '"',
    "\\": "\\",
    "/": "/",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
}
_CHAR_HINTS: dict[str, str] = {
    "'": "; strings use double quotes",
    "|": "; use OR",
    "&": "; use AND",
    "~": "; use ! or NOT",
}
_WHITESPACE = frozenset(" \t\r\n")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BARE_KEY = re.compile(r"[A-Za-z0-9_.:\-/@$]+")
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_WORD_CHAR = re.compile(r"[A-Za-z0-9_.]")


def _is_control(c: str) -> bool:
    """C0/C1 control characters and lone surrogates (never valid in an expression)."""
    code = ord(c)
    return code < 0x20 or 0x7F <= code < 0xA0 or 0xD800 <= code <= 0xDFFF


def _bad_char(text: str, i: int) -> FilterSyntaxError:
    c = text[i]
    if _is_control(c):
        return FilterSyntaxError(f"control character U+{ord(c):04X} is not allowed", text, i)
    return FilterSyntaxError(f"unexpected character {c!r}", text, i, hint=_CHAR_HINTS.get(c, ""))


class _Lexer:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[Token] = []

    def emit(self, kind: TokenKind, value: str | float | bool | None, start: int, end: int) -> int:
        if len(self.tokens) >= MAX_TOKENS - 1:
            raise FilterSyntaxError(
                f"filter expression has more than {MAX_TOKENS - 1} tokens", self.text, start
            )
        self.tokens.append(Token(kind, self.text[start:end], value, start, end))
        return end

    def run(self) -> list[Token]:
        text, i, n = self.text, 0, len(self.text)
        while i < n:
            c = text[i]
            if c in _WHITESPACE:
                i += 1
            elif c in _PUNCTUATION:
                i = self.emit(_PUNCTUATION[c], None, i, i + 1)
            elif c in "!=<>":
                op = text[i : i + 2] if text[i : i + 2] in _OPERATORS else c
                i = self.emit(_OPERATORS[op], None, i, i + len(op))
            elif c == '"':
                value, end = self.string(i)
                i = self.emit(TokenKind.STRING, value, i, end)
            elif c.isascii() and (c.isdigit() or c in "-."):
                i = self.number(i)
            elif c.isascii() and (c.isalpha() or c == "_"):
                i = self.word(i)
            elif c == "#":
                i = self.json_literal(i)
            else:
                raise _bad_char(text, i)
        self.tokens.append(Token(TokenKind.EOF, "", None, n, n))
        return self.tokens

    def string(self, start: int) -> tuple[str, int]:
        """Decode the string literal opening at ``start``; return (value, end)."""
        text, i, n = self.text, start + 1, len(self.text)
        out: list[str] = []
        while i < n:
            c = text[i]
            if c == '"':
                return "".join(out), i + 1
            if c == "\\":
                esc = text[i + 1 : i + 2]
                if esc == "u":
                    code, i = self.unicode_escape(i)
                    out.append(code)
                    continue
                if not esc:
                    break
                if esc not in _ESCAPES:
                    shown = esc if esc.isprintable() else f"U+{ord(esc):04X}"
                    raise FilterSyntaxError(
                        f"unknown escape '\\{shown}' in string; write '\\\\' for a backslash",
                        text,
                        i,
                    )
                out.append(_ESCAPES[esc])
                i += 2
                continue
            if _is_control(c):
                raise FilterSyntaxError(
                    f"control character U+{ord(c):04X} in string; escape it (e.g. \\n, \\t)",
                    text,
                    i,
                )
            out.append(c)
            i += 1
        raise FilterSyntaxError("unterminated string", text, start)

    def unicode_escape(self, i: int) -> tuple[str, int]:
        """Decode ``\\uXXXX`` (a surrogate pair counts as one) at ``i``; return (char, end)."""
        text = self.text
        if not _HEX4.fullmatch(text, i + 2, i + 6):
            raise FilterSyntaxError("expected four hex digits after '\\u'", text, i)
        code = int(text[i + 2 : i + 6], 16)
        pair = text[i + 6 : i + 8] == "\\u" and _HEX4.fullmatch(text, i + 8, i + 12)
        if 0xD800 <= code <= 0xDBFF and pair:
            low = int(text[i + 8 : i + 12], 16)
            if 0xDC00 <= low <= 0xDFFF:
                return chr(0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)), i + 12
        if 0xD800 <= code <= 0xDFFF:
            raise FilterSyntaxError("unpaired surrogate escape in string", text, i)
        return chr(code), i + 6

    def number(self, start: int) -> int:
        text = self.text
        m = _NUMBER.match(text, start)
        if m is None:
            raise _bad_char(text, start)
        end = m.end()
        if end < len(text) and _WORD_CHAR.match(text, end):
            raise FilterSyntaxError("malformed number", text, end)
        value = float(m.group())
        if not math.isfinite(value):
            raise FilterSyntaxError("number out of range", text, start)
        return self.emit(TokenKind.NUMBER, value, start, end)

    def word(self, start: int) -> int:
        text = self.text
        m = _WORD.match(text, start)
        if m is None:  # pragma: no cover - the caller saw a letter or "_"
            raise _bad_char(text, start)
        end, lower = m.end(), m.group().lower()
        if end < len(text) and text[end] == ".":
            raise FilterSyntaxError(f"expected a name after '{text[start:end]}.'", text, end + 1)
        if lower == "annotation":
            return self.bracket_annotation(start, end)
        if lower.startswith("annotation."):
            return self.emit(TokenKind.ANNOTATION, m.group()[11:], start, end)
        kind = _RESERVED_WORDS.get(lower, TokenKind.WORD)
        value = {TokenKind.TRUE: True, TokenKind.FALSE: False}.get(kind, lower)
        return self.emit(kind, value, start, end)

    def bracket_annotation(self, start: int, i: int) -> int:
        """``annotation[key]`` / ``annotation["key"]``; ``i`` is just past the word."""
        text = self.text
        if text[i : i + 1] != "[":
            raise FilterSyntaxError("expected '.key' or '[key]' after 'annotation'", text, i)
        i = self._skip_space(i + 1)
        key_at = i
        if text[i : i + 1] == '"':
            key, i = self.string(i)
        elif m := _BARE_KEY.match(text, i):
            key, i = m.group(), m.end()
        else:
            raise FilterSyntaxError("expected an annotation key after 'annotation['", text, i)
        if not key:
            raise FilterSyntaxError("annotation key is empty", text, key_at)
        i = self._skip_space(i)
        if text[i : i + 1] != "]":
            found = repr(text[i]) if i < len(text) else "end of expression"
            raise FilterSyntaxError(
                f"expected ']' to close the 'annotation[' opened at position {start}, "
                f"found {found}",
                text,
                i,
            )
        return self.emit(TokenKind.ANNOTATION, key, start, i + 1)

    def json_literal(self, start: int) -> int:
        """``#[ ... ]``: a JSON array of objects, kept as canonical JSON text."""
        text = self.text
        if text[start + 1 : start + 2] != "[":
            raise FilterSyntaxError("expected '[' after '#' (a JSON literal #[...])", text, start)

        def no_constants(name: str) -> object:
            raise ValueError(name)

        def finite(literal: str) -> float:
            value = float(literal)
            if not math.isfinite(value):
                raise ValueError(literal)
            return value

        decoder = json.JSONDecoder(parse_constant=no_constants, parse_float=finite)
        try:
            value, end = decoder.raw_decode(text, start + 1)
        except json.JSONDecodeError as exc:
            raise FilterSyntaxError(f"invalid JSON literal: {exc.msg}", text, exc.pos) from None
        except (ValueError, RecursionError):
            raise FilterSyntaxError("invalid JSON literal", text, start) from None
        if not all(isinstance(item, dict) for item in value):
            raise FilterSyntaxError("a #[...] literal must hold JSON objects", text, start)
        canonical = json.dumps(value, sort_keys=True, separators=(",", ":"))
        return self.emit(TokenKind.JSON, canonical, start, end)

    def _skip_space(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in _WHITESPACE:
            i += 1
        return i


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; the last is always ``EOF`` at ``len(text)``.

    Raises ``FilterSyntaxError`` on any lexical error or past ``MAX_TOKENS``. Does not
    check the expression's length (the parser does, before calling this).
    """
    return _Lexer(text).run()
