"""Parser for FilterLogEvents filter patterns (``reference/logs.md`` §3.3).

The first non-blank character picks the form: ``{`` a JSON pattern, ``[`` a
space-delimited pattern, ``%`` a regular expression (``%...%``), anything else terms.

Grammars, one method per level::

    terms      := { ["?" | "-"] (word | "quoted phrase") }          _terms
    json       := "{" or "}"
    or         := and { "||" and }                                   _or
    and        := primary { "&&" primary }                           _and
    primary    := "(" or ")" | selector test                         _primary
    test       := op value | IS (NULL | TRUE | FALSE) | NOT EXISTS  _test
    selector   := "$" { "." key | "[" digits "]" }                   _selector
    delimited  := "[" column { "," column } "]"
    column     := "..." | name [ op value { ("&&" | "||") name op value } ]

Strings (``=``/``!=`` only) may hold ``*`` wildcards; numbers take every operator.
Regexes are compiled with RE2, the engine's library, so one the engine would reject is
refused here. ``MAX_LENGTH`` is FilterLogEvents' limit (1,024 characters).

``parse_pattern`` is pure and thread-safe; it raises only ``PatternSyntaxError``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from fluoroscope.query.insights.regex import RegexError, check
from fluoroscope.query.patterns import ast
from fluoroscope.query.patterns.errors import PatternSyntaxError

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "parse_pattern"]

MAX_LENGTH = 1024
MAX_DEPTH = 30

_OPS: dict[str, ast.CompareOp] = {  # longest first
    "!=": "!=",
    "<=": "<=",
    ">=": ">=",
    "=": "=",
    "<": "<",
    ">": ">",
}
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_KEY = re.compile(r"[^\s.\[\]=!<>(){}&|\"',*$]+")
_WORD = re.compile(r"[^\s=!<>(){}&|\",\[\]]+")
_TERM = re.compile(r'[^\s"]+')
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_TESTS: dict[str, tuple[str, ...]] = {"IS": ("NULL", "TRUE", "FALSE"), "NOT": ("EXISTS",)}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.depth = 0

    # -- helpers -------------------------------------------------------------------

    def error(self, reason: str, start: int, end: int | None = None) -> PatternSyntaxError:
        return PatternSyntaxError(reason, self.text, start, end)

    def skip(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def at(self, literal: str) -> bool:
        self.skip()
        return self.text.startswith(literal, self.i)

    def found(self) -> str:
        self.skip()
        if self.i >= len(self.text):
            return "end of pattern"
        m = _WORD.match(self.text, self.i)
        return repr(m.group()[:30] if m else self.text[self.i])

    def expect(self, literal: str, what: str) -> int:
        if not self.at(literal):
            raise self.error(f"expected {what}, found {self.found()}", self.i)
        start = self.i
        self.i += len(literal)
        return start

    def string(self) -> str:
        """A double-quoted string at ``self.i``: ``\\"`` and ``\\\\`` are escapes."""
        start, i = self.i, self.i + 1
        out: list[str] = []
        while i < len(self.text):
            c = self.text[i]
            if c == '"':
                self.i = i + 1
                return "".join(out)
            if c == "\\" and i + 1 < len(self.text):
                out.append(self.text[i + 1])
                i += 2
                continue
            out.append(c)
            i += 1
        raise self.error("unterminated quoted phrase", start, len(self.text))

    # -- the forms -----------------------------------------------------------------

    def pattern(self) -> ast.Pattern:
        self.skip()
        if self.i >= len(self.text):
            return ast.MatchAll(start=0, end=len(self.text))
        first = self.text[self.i]
        form: Callable[[], ast.Pattern] = {
            "{": self._json,
            "[": self._delimited,
            "%": self._regex,
        }.get(first, self._terms)
        result = form()
        self.skip()
        if self.i < len(self.text):
            raise self.error(f"unexpected {self.found()} after the pattern", self.i)
        return result

    def _terms(self) -> ast.Pattern:
        groups: dict[str, list[str]] = {"": [], "?": [], "-": []}
        start, blank = self.i, False
        while True:
            self.skip()
            if self.i >= len(self.text):
                break
            at = self.i
            prefix = self.text[at] if self.text[at] in "?-" else ""
            self.i += len(prefix)
            if self.text.startswith('"', self.i):
                term = self.string()
            else:
                m = _TERM.match(self.text, self.i)
                if m is None:
                    raise self.error(f"expected a term after '{prefix}'", self.i)
                term = m.group()
                self.i = m.end()
            if not term.strip():
                if not term:
                    raise self.error("empty quoted phrase", at, self.i)
                blank = True  # " " matches every event
                continue
            groups[prefix].append(term)
        if not any(groups.values()):
            if blank:
                return ast.MatchAll(start=start, end=self.i)
            raise self.error("expected a term", start)  # pragma: no cover - skipped blanks
        return ast.Terms(
            tuple(groups[""]), tuple(groups["?"]), tuple(groups["-"]), start=start, end=self.i
        )

    def _regex(self) -> ast.Pattern:
        start = self.i
        close = self.text.find("%", start + 1)
        if close < 0:
            raise self.error(
                "unterminated regular expression; close it with '%'", start, len(self.text)
            )
        pattern = self.text[start + 1 : close]
        if not pattern:
            raise self.error("empty regular expression", start, close + 1)
        try:
            check(pattern)
        except RegexError as exc:
            raise self.error(f"invalid regular expression: {exc}", start, close + 1) from None
        self.i = close + 1
        return ast.Regex(pattern, start=start, end=self.i)

    # -- JSON ----------------------------------------------------------------------

    def _json(self) -> ast.Pattern:
        start = self.expect("{", "'{'")
        if self.at("}"):
            raise self.error("expected a condition such as $.level = \"ERROR\" inside '{}'", self.i)
        expr = self._or()
        self.expect("}", f"'&&', '||' or '}}' to close the '{{' at position {start}")
        return ast.Json(expr, start=start, end=self.i)

    def _or(self) -> ast.JsonExpr:
        items = [self._and()]
        while self.at("||"):
            self.i += 2
            items.append(self._and())
        return _join(ast.JsonOr, items)

    def _and(self) -> ast.JsonExpr:
        items = [self._primary()]
        while self.at("&&"):
            self.i += 2
            items.append(self._primary())
        return _join(ast.JsonAnd, items)

    def _primary(self) -> ast.JsonExpr:
        if self.at("("):
            opened = self.i
            self.i += 1
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"pattern nests deeper than {MAX_DEPTH} levels", opened)
            inner = self._or()
            self.depth -= 1
            self.expect(")", f"')' to close the '(' at position {opened}")
            return inner
        if not self.at("$"):
            raise self.error(f"expected a selector such as $.level, found {self.found()}", self.i)
        start = self.i
        path = self._selector()
        return self._test(path, start)

    def _selector(self) -> ast.Path:
        self.i += 1
        path: list[str | int] = []
        while self.i < len(self.text) and self.text[self.i] in ".[":
            if self.text[self.i] == ".":
                m = _KEY.match(self.text, self.i + 1)
                if m is None:
                    raise self.error("expected a key after '.'", self.i + 1)
                path.append(m.group())
                self.i = m.end()
            else:
                m = re.compile(r"\[\s*([0-9]{1,9})\s*\]").match(self.text, self.i)
                if m is None:
                    raise self.error("expected an array index such as [0]", self.i)
                path.append(int(m.group(1)))
                self.i = m.end()
        if not path:
            raise self.error("expected '.key' or '[index]' after '$'", self.i)
        if self.i < len(self.text) and self.text[self.i] == "*":
            raise self.error("wildcards in selectors are not supported", self.i)
        return tuple(path)

    def _test(self, path: ast.Path, start: int) -> ast.JsonExpr:
        self.skip()
        word = re.compile(r"[A-Za-z]+").match(self.text, self.i)
        if word and word.group().upper() in _TESTS:
            first = word.group().upper()
            self.i = word.end()
            self.skip()
            second = re.compile(r"[A-Za-z]+").match(self.text, self.i)
            allowed = _TESTS[first]
            if second is None or second.group().upper() not in allowed:
                shown = " or ".join(f"{first} {a}" for a in allowed)
                raise self.error(f"expected {shown}", self.i)
            self.i = second.end()
            test = {"NULL": "null", "TRUE": "true", "FALSE": "false", "EXISTS": "missing"}[
                second.group().upper()
            ]
            return ast.JsonIs(path, test, start=start, end=self.i)  # type: ignore[arg-type]
        op, value = self._comparison(f"'{self.text[start : self.i].strip()}'")
        return ast.JsonCompare(path, op, value, start=start, end=self.i)

    def _comparison(self, after: str) -> tuple[ast.CompareOp, str | float]:
        self.skip()
        op = next((o for o in _OPS if self.text.startswith(o, self.i)), None)
        if op is None:
            raise self.error(
                f"expected an operator (= != < <= > >=) or IS / NOT EXISTS after {after}, "
                f"found {self.found()}",
                self.i,
            )
        op_at = self.i
        self.i += len(op)
        self.skip()
        value_at = self.i
        value: str | float
        if self.text.startswith('"', self.i):
            value = self.string()
        elif m := _NUMBER.match(self.text, self.i):
            end = m.end()
            word = _WORD.match(self.text, self.i)
            if word is not None and word.end() > end:  # 5* or 4xx: a string
                value, self.i = word.group(), word.end()
            else:
                value = float(m.group())
                if not math.isfinite(value):
                    raise self.error("number out of range", value_at, end)
                self.i = end
        elif m := _WORD.match(self.text, self.i):
            value, self.i = m.group(), m.end()
        else:
            raise self.error(f"expected a value after {after} {op}, found {self.found()}", value_at)
        if isinstance(value, str) and op not in ("=", "!="):
            raise self.error(f"operator {op} needs a number, found a string", op_at, self.i)
        return _OPS[op], value

    # -- space-delimited -------------------------------------------------------------

    def _delimited(self) -> ast.Pattern:
        start = self.expect("[", "'['")
        columns: list[ast.Column] = []
        while True:
            columns.append(self._column())
            if self.at(","):
                self.i += 1
                continue
            self.expect("]", f"',' or ']' to close the '[' at position {start}")
            break
        names = [c.name for c in columns if c.name is not None]
        if len(names) != len(set(names)):
            raise self.error("a column name is given twice", start, self.i)
        ellipses = [i for i, c in enumerate(columns) if c.name is None]
        for column in columns[ellipses[0] : ellipses[-1]] if ellipses else ():
            if column.tests:
                raise self.error(
                    "a tested column between two '...' has no fixed place", column.start, column.end
                )
        return ast.Delimited(tuple(columns), start=start, end=self.i)

    def _column(self) -> ast.Column:
        self.skip()
        start = self.i
        if self.text.startswith("...", self.i):
            self.i += 3
            return ast.Column(None, start=start, end=self.i)
        m = _NAME.match(self.text, self.i)
        if m is None:
            raise self.error(f"expected a column name or '...', found {self.found()}", self.i)
        name, self.i = m.group(), m.end()
        tests: list[ast.ColumnTest] = []
        any_of = False
        joiner = ""
        while True:
            self.skip()
            if not any(self.text.startswith(o, self.i) for o in _OPS):
                if tests:
                    raise self.error(f"expected a test on '{name}' after '{joiner}'", self.i)
                break
            test_at = self.i
            op, value = self._comparison(f"'{name}'")
            tests.append(ast.ColumnTest(op, value, start=test_at, end=self.i))
            self.skip()
            joiner = next((j for j in ("&&", "||") if self.text.startswith(j, self.i)), "")
            if not joiner:
                break
            if len(tests) > 1 and any_of != (joiner == "||"):
                raise self.error("mixing '&&' and '||' on one column is not supported", self.i)
            any_of = joiner == "||"
            self.i += 2
            self.skip()
            again = _NAME.match(self.text, self.i)
            if again is None or again.group() != name:
                raise self.error(f"expected '{name}' again after '{joiner}'", self.i)
            self.i = again.end()
        return ast.Column(name, tuple(tests), any_of, start=start, end=self.i)


def _join(cls: type[ast.JsonAnd] | type[ast.JsonOr], items: list[ast.JsonExpr]) -> ast.JsonExpr:
    if len(items) == 1:
        return items[0]
    flat: list[ast.JsonExpr] = []
    for item in items:
        flat.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(flat), start=items[0].start, end=items[-1].end)


def parse_pattern(text: str) -> ast.Pattern:
    """Parse a ``filterPattern``; raise ``PatternSyntaxError`` naming the first problem."""
    if len(text) > MAX_LENGTH:
        raise PatternSyntaxError(
            f"filter pattern is {len(text)} characters long; the limit is {MAX_LENGTH}",
            text,
            MAX_LENGTH,
            len(text),
        )
    return _Parser(text).pattern()
