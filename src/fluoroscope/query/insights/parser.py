"""Recursive-descent parser: Logs Insights text in, ``fluoroscope.query.insights.ast`` out.

Grammar (``reference/logs.md`` §4), commands separated by ``|``::

    query      := command { "|" command }
    command    := fields alias {, alias} | display name {, name} | filter expr
                | stats alias {, alias} [by alias {, alias}] | sort [by] key {, key}
                | limit N | parse name ("glob" as name {, name} | /regex/)
                | dedup name {, name}
    alias      := expr [as name]          key := expr [asc | desc]

Expressions, one method per precedence level, loosest first::

    or_expr    := and_expr { or and_expr }                          _or
    and_expr   := not_expr { and not_expr }                         _and
    not_expr   := not not_expr | comparison                         _not
    comparison := additive [ op additive | [not] like (str|/re/)    _comparison
                           | =~ /re/ | [not] in [ expr {, expr} ] ]
    additive   := term { (+|-) term }                               _additive
    term       := power { (*|/|%) power }                           _term
    power      := unary [ ^ power ]                                 _power
    unary      := - unary | primary                                 _unary
    primary    := name | name ( args ) | "str" | number | duration | ( or_expr )

Operators come from the tables ``_COMPARE``, ``_ADDITIVE``, ``_TERM`` and commands
from ``_COMMANDS``, not chains of ``if``. Limits against abuse: ``MAX_LENGTH``
characters (StartQuery's ``queryString`` maximum, 10,000), ``MAX_DEPTH`` nested
parentheses/negations, ``tokens.MAX_TOKENS`` tokens. Regular expressions are compiled
with RE2 (``regex.check``) here, so one the engine would reject is a syntax error at
its ``/.../``.

``parse`` is a pure function, safe from any thread; it raises only
``InsightsSyntaxError``, whose ``start <= end`` lie within ``[0, len(text)]``.
"""

from __future__ import annotations

from collections.abc import Callable

from fluoroscope.query.insights import ast
from fluoroscope.query.insights.errors import InsightsSyntaxError
from fluoroscope.query.insights.regex import CheckedRegex, RegexError, check
from fluoroscope.query.insights.tokens import Token, TokenKind, tokenize

__all__ = ["DEFAULT_LIMIT", "MAX_DEPTH", "MAX_LENGTH", "MAX_LIMIT", "parse"]

MAX_LENGTH = 10_000
MAX_DEPTH = 50
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 100_000

_COMPARE: dict[TokenKind, ast.BinaryOp] = {
    TokenKind.EQ: "=",
    TokenKind.NE: "!=",
    TokenKind.LT: "<",
    TokenKind.LE: "<=",
    TokenKind.GT: ">",
    TokenKind.GE: ">=",
}
_ADDITIVE: dict[TokenKind, ast.BinaryOp] = {TokenKind.PLUS: "+", TokenKind.MINUS: "-"}
_TERM: dict[TokenKind, ast.BinaryOp] = {
    TokenKind.STAR: "*",
    TokenKind.SLASH: "/",
    TokenKind.PERCENT: "%",
}
_UNSUPPORTED = frozenset(
    {"pattern", "diff", "unmask", "unnest", "anomaly", "source", "filterindex", "lookup"}
)
_NAME_KINDS = frozenset({TokenKind.NAME})


class _Parser:
    """One parse of one query; not reused."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------

    @property
    def peek(self) -> Token:
        return self.tokens[self.i]

    @property
    def prev(self) -> Token:
        return self.tokens[max(self.i - 1, 0)]

    def ahead(self, n: int) -> Token:
        return self.tokens[min(self.i + n, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind is not TokenKind.EOF:
            self.i += 1
        return tok

    def error(self, reason: str, tok: Token) -> InsightsSyntaxError:
        return InsightsSyntaxError(reason, self.text, tok.start, tok.end)

    def expect(self, kind: TokenKind, what: str) -> Token:
        tok = self.peek
        if tok.kind is not kind:
            raise self.error(f"expected {what}, found {tok.describe()}", tok)
        return self.advance()

    def deeper(self, opener: Token, parse: Callable[[], ast.Expr]) -> ast.Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression nests deeper than {MAX_DEPTH} levels", opener)
        try:
            return parse()
        finally:
            self.depth -= 1

    def comma_list(self, item: Callable[[], ast.Node]) -> list[ast.Node]:
        items = [item()]
        while self.peek.kind is TokenKind.COMMA:
            self.advance()
            items.append(item())
        return items

    # -- commands ------------------------------------------------------------------

    def query(self) -> ast.Query:
        if self.peek.kind is TokenKind.EOF:
            raise self.error("empty query; expected a command such as 'fields @message'", self.peek)
        commands: list[ast.Command] = []
        while True:
            command = self.command()
            if any(isinstance(c, ast.Dedup) for c in commands) and not isinstance(
                command, ast.Limit | ast.Display
            ):
                raise InsightsSyntaxError(
                    "only 'limit' and 'display' may follow 'dedup'",
                    self.text,
                    command.start,
                    command.end,
                )
            commands.append(command)
            tok = self.peek
            if tok.kind is TokenKind.EOF:
                break
            if tok.kind is not TokenKind.PIPE:
                raise self.error(f"expected '|' or end of query, found {tok.describe()}", tok)
            self.advance()
        return ast.Query(
            tuple(commands), start=commands[0].start, end=commands[-1].end, text=self.text
        )

    def command(self) -> ast.Command:
        tok = self.peek
        if tok.kind is not TokenKind.NAME:
            after = " after '|'" if self.prev.kind is TokenKind.PIPE and self.i else ""
            raise self.error(f"expected a command{after}, found {tok.describe()}", tok)
        name = str(tok.value).lower()
        method = _COMMANDS.get(name)
        if method is None:
            if name in _UNSUPPORTED:
                raise self.error(f"the '{tok.text}' command is not supported", tok)
            known = ", ".join(sorted(_COMMANDS))
            raise self.error(f"unknown command '{tok.text}'; commands are {known}", tok)
        self.advance()
        node = method(self, tok)
        return node

    def _fields(self, tok: Token) -> ast.Command:
        items = self.comma_list(self.alias)
        return ast.Fields(_aliases(items), start=tok.start, end=self.prev.end)

    def _display(self, tok: Token) -> ast.Command:
        items = self.comma_list(lambda: self.field(f"a field name after '{tok.text}'"))
        return ast.Display(_fields(items), start=tok.start, end=self.prev.end)

    def _dedup(self, tok: Token) -> ast.Command:
        items = self.comma_list(lambda: self.field(f"a field name after '{tok.text}'"))
        return ast.Dedup(_fields(items), start=tok.start, end=self.prev.end)

    def _filter(self, tok: Token) -> ast.Command:
        if self.peek.kind in (TokenKind.PIPE, TokenKind.EOF):
            raise self.error(
                f"expected a condition after '{tok.text}', found {self.peek.describe()}", self.peek
            )
        expr = self.expr()
        return ast.Filter(expr, start=tok.start, end=self.prev.end)

    def _stats(self, tok: Token) -> ast.Command:
        aggs = self.comma_list(self.alias)
        by: list[ast.Node] = []
        if self.peek.kind is TokenKind.BY:
            self.advance()
            by = self.comma_list(self.alias)
        return ast.Stats(_aliases(aggs), _aliases(by), start=tok.start, end=self.prev.end)

    def _sort(self, tok: Token) -> ast.Command:
        if self.peek.kind is TokenKind.BY:
            self.advance()
        keys = self.comma_list(self.sort_key)
        return ast.Sort(
            tuple(k for k in keys if isinstance(k, ast.SortKey)),
            start=tok.start,
            end=self.prev.end,
        )

    def _limit(self, tok: Token) -> ast.Command:
        num = self.expect(TokenKind.NUMBER, f"a number after '{tok.text}'")
        value = num.value
        if not isinstance(value, float) or not value.is_integer() or not 1 <= value <= MAX_LIMIT:
            raise self.error(f"limit must be a whole number from 1 to {MAX_LIMIT}", num)
        return ast.Limit(int(value), start=tok.start, end=num.end)

    def _parse(self, tok: Token) -> ast.Command:
        source = self.field(f"a field name after '{tok.text}'")
        pat = self.peek
        if pat.kind is TokenKind.REGEX:
            self.advance()
            checked = self.regex(pat)
            if not checked.names:
                raise self.error(
                    "a parse regular expression needs named groups such as (?<name>\\S+)", pat
                )
            names = tuple(name for name, _ in checked.names)
            return ast.Parse(source, str(pat.value), True, names, start=tok.start, end=pat.end)
        if pat.kind is not TokenKind.STRING:
            raise self.error(
                f"expected a \"glob\" or /regex/ after '{tok.text} {source.name}', found "
                f"{pat.describe()}",
                pat,
            )
        self.advance()
        stars = str(pat.value).count("*")
        if stars == 0:
            raise self.error("a parse glob needs at least one '*'", pat)
        as_tok = self.expect(TokenKind.AS, "'as' and the names of the glob's fields")
        targets = [self.field(f"a field name after '{as_tok.text}'")]
        while self.peek.kind is TokenKind.COMMA:
            self.advance()
            targets.append(self.field("a field name after ','"))
        if len(targets) != stars:
            raise InsightsSyntaxError(
                f"the glob has {stars} '*' but {len(targets)} field name"
                f"{'' if len(targets) == 1 else 's'} follow 'as'",
                self.text,
                as_tok.start,
                self.prev.end,
            )
        seen: set[str] = set()
        for field in targets:
            if field.name in seen:
                raise InsightsSyntaxError(
                    f"field '{field.name}' is named twice", self.text, field.start, field.end
                )
            seen.add(field.name)
        return ast.Parse(
            source,
            str(pat.value),
            False,
            tuple(f.name for f in targets),
            start=tok.start,
            end=self.prev.end,
        )

    # -- pieces of commands ----------------------------------------------------------

    def field(self, what: str) -> ast.Field:
        tok = self.expect(TokenKind.NAME, what)
        return ast.Field(str(tok.value), start=tok.start, end=tok.end)

    def alias(self) -> ast.Alias:
        start = self.peek
        expr = self.expr()
        if self.peek.kind is TokenKind.AS:
            self.advance()
            name = self.field("a name after 'as'")
            return ast.Alias(expr, name.name, start=start.start, end=name.end)
        return ast.Alias(expr, None, start=start.start, end=self.prev.end)

    def sort_key(self) -> ast.SortKey:
        start = self.peek
        expr = self.expr()
        descending = False
        if self.peek.kind in (TokenKind.ASC, TokenKind.DESC):
            descending = self.advance().kind is TokenKind.DESC
        return ast.SortKey(expr, descending, start=start.start, end=self.prev.end)

    def regex(self, tok: Token) -> CheckedRegex:
        try:
            return check(str(tok.value))
        except RegexError as exc:
            raise self.error(f"invalid regular expression: {exc}", tok) from None

    # -- expressions, loosest first -----------------------------------------------

    def expr(self) -> ast.Expr:
        return self._or()

    def _or(self) -> ast.Expr:
        left = self._and()
        while self.peek.kind is TokenKind.OR:
            self.advance()
            right = self._and()
            left = ast.Binary("or", left, right, start=left.start, end=right.end)
        return left

    def _and(self) -> ast.Expr:
        left = self._not()
        while self.peek.kind is TokenKind.AND:
            self.advance()
            right = self._not()
            left = ast.Binary("and", left, right, start=left.start, end=right.end)
        return left

    def _not(self) -> ast.Expr:
        if self.peek.kind is TokenKind.NOT:
            tok = self.advance()
            inner = self.deeper(tok, self._not)
            return ast.Not(inner, start=tok.start, end=inner.end)
        return self._comparison()

    def _comparison(self) -> ast.Expr:
        left = self._additive()
        tok = self.peek
        op = _COMPARE.get(tok.kind)
        if op is not None:
            self.advance()
            right = self._additive()
            return ast.Binary(op, left, right, start=left.start, end=right.end)
        negated = tok.kind is TokenKind.NOT and self.ahead(1).kind in (TokenKind.LIKE, TokenKind.IN)
        if negated:
            self.advance()
            tok = self.peek
        if tok.kind in (TokenKind.LIKE, TokenKind.MATCH):
            self.advance()
            pattern = self.like_pattern(tok)
            return ast.Like(left, pattern, negated, start=left.start, end=pattern.end)
        if tok.kind is TokenKind.IN:
            self.advance()
            open_ = self.expect(TokenKind.LBRACKET, "'[' after 'in'")
            if self.peek.kind is TokenKind.RBRACKET:
                raise self.error("expected a value in '[...]', found ']'", self.peek)
            items = self.comma_list(self.expr)
            close = self.expect(
                TokenKind.RBRACKET, f"',' or ']' to close the '[' opened at position {open_.start}"
            )
            values = tuple(i for i in items if isinstance(i, _EXPR_TYPES))
            return ast.In(left, values, negated, start=left.start, end=close.end)
        return left

    def like_pattern(self, op: Token) -> ast.Str | ast.Regex:
        tok = self.advance()
        if tok.kind is TokenKind.REGEX:
            self.regex(tok)
            return ast.Regex(str(tok.value), start=tok.start, end=tok.end)
        if tok.kind is TokenKind.STRING and op.kind is TokenKind.LIKE:
            return ast.Str(str(tok.value), start=tok.start, end=tok.end)
        what = "a /regex/" if op.kind is TokenKind.MATCH else 'a "string" or a /regex/'
        raise self.error(f"expected {what} after '{op.text}', found {tok.describe()}", tok)

    def _binary_level(
        self, ops: dict[TokenKind, ast.BinaryOp], operand: Callable[[], ast.Expr]
    ) -> ast.Expr:
        left = operand()
        while (op := ops.get(self.peek.kind)) is not None:
            self.advance()
            right = operand()
            left = ast.Binary(op, left, right, start=left.start, end=right.end)
        return left

    def _additive(self) -> ast.Expr:
        return self._binary_level(_ADDITIVE, self._term)

    def _term(self) -> ast.Expr:
        return self._binary_level(_TERM, self._power)

    def _power(self) -> ast.Expr:
        base = self._unary()
        if self.peek.kind is TokenKind.CARET:
            tok = self.advance()
            exponent = self.deeper(tok, self._power)
            return ast.Binary("^", base, exponent, start=base.start, end=exponent.end)
        return base

    def _unary(self) -> ast.Expr:
        if self.peek.kind is TokenKind.MINUS:
            tok = self.advance()
            inner = self.deeper(tok, self._unary)
            return ast.Neg(inner, start=tok.start, end=inner.end)
        return self._primary()

    def _primary(self) -> ast.Expr:
        tok = self.peek
        kind = tok.kind
        if kind is TokenKind.LPAREN:
            self.advance()
            inner = self.deeper(tok, self.expr)
            self.expect(TokenKind.RPAREN, f"')' to close the '(' opened at position {tok.start}")
            return inner
        if kind is TokenKind.NAME:
            self.advance()
            if self.peek.kind is TokenKind.LPAREN:
                return self.call(tok)
            return ast.Field(str(tok.value), start=tok.start, end=tok.end)
        if kind is TokenKind.STRING:
            self.advance()
            return ast.Str(str(tok.value), start=tok.start, end=tok.end)
        if kind is TokenKind.NUMBER and isinstance(tok.value, float):
            self.advance()
            return ast.Num(tok.value, start=tok.start, end=tok.end)
        if kind is TokenKind.DURATION and isinstance(tok.value, tuple):
            self.advance()
            return ast.Duration(tok.value[0], tok.value[1], start=tok.start, end=tok.end)
        after = f" after {self.prev.describe()}" if self.i else ""
        raise self.error(f"expected a value or field{after}, found {tok.describe()}", tok)

    def call(self, name: Token) -> ast.Expr:
        open_ = self.advance()
        args: list[ast.Expr] = []
        if self.peek.kind is TokenKind.STAR:
            star = self.advance()
            args.append(ast.Star(start=star.start, end=star.end))
            self.expect(TokenKind.RPAREN, f"')' after '{name.text}(*'")
        elif self.peek.kind is not TokenKind.RPAREN:

            def argument() -> ast.Expr:
                return self.deeper(open_, self.expr)

            args = [a for a in self.comma_list(argument) if isinstance(a, _EXPR_TYPES)]
        if args and isinstance(args[0], ast.Star):
            close = self.prev
        else:
            close = self.expect(
                TokenKind.RPAREN,
                f"',' or ')' to close '{name.text}(' opened at position {name.start}",
            )
        return ast.Call(str(name.value).lower(), tuple(args), start=name.start, end=close.end)


_EXPR_TYPES = (
    ast.Field,
    ast.Str,
    ast.Num,
    ast.Duration,
    ast.Regex,
    ast.Star,
    ast.Call,
    ast.Neg,
    ast.Not,
    ast.Binary,
    ast.Like,
    ast.In,
)


def _aliases(items: list[ast.Node]) -> tuple[ast.Alias, ...]:
    return tuple(i for i in items if isinstance(i, ast.Alias))


def _fields(items: list[ast.Node]) -> tuple[ast.Field, ...]:
    return tuple(i for i in items if isinstance(i, ast.Field))


_COMMANDS: dict[str, Callable[[_Parser, Token], ast.Command]] = {
    "fields": _Parser._fields,
    "display": _Parser._display,
    "filter": _Parser._filter,
    "stats": _Parser._stats,
    "sort": _Parser._sort,
    "limit": _Parser._limit,
    "parse": _Parser._parse,
    "dedup": _Parser._dedup,
}


def parse(text: str) -> ast.Query:
    """Parse a Logs Insights query into its tree.

    Raises ``InsightsSyntaxError`` (never anything else) naming the first problem, with
    ``start``/``end`` offsets of the offending text.
    """
    if len(text) > MAX_LENGTH:
        raise InsightsSyntaxError(
            f"query is {len(text)} characters long; the limit is {MAX_LENGTH}",
            text,
            MAX_LENGTH,
            len(text),
        )
    return _Parser(text, tokenize(text)).query()
