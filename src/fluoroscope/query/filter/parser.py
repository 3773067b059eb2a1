"""Recursive-descent parser: filter expression text in, ``fluoroscope.query.filter.ast`` out.

Grammar (``reference/xray-protocol.md`` §5.2), one method per precedence level, loosest
first::

    or_expr     := and_expr { OR and_expr }                   _or
    and_expr    := unary { [AND] unary }                      _and  (juxtaposition = AND)
    unary       := ("!" | NOT) unary | comparison             _unary
    comparison  := "(" or_expr ")" | keyword [op value] | annotation [op value]
                 | service(...) [{...}] | edge(...) [{...}] | id(...)
                 | rootcause.x.y {...} | rootcause.json = #[...] | group.name = "g"
                                                              _comparison

What a keyword admits comes from the tables of ``fluoroscope.query.filter.keywords``,
not from code: ``KEYWORD_TYPES`` (boolean, number or string), ``OPERATORS_FOR``
(operators per type), ``SCOPE_KEYWORDS`` (simple keywords allowed at trace level,
inside ``service(){}``, ``edge(){}``, ``rootcause.*{}`` and in an entity selector) and
``COMPOUND_SCOPES`` (where ``service``, ``edge``, ``id``, ``rootcause.*`` and
``group.*`` are allowed). Compound forms dispatch through ``_COMPOUND_PARSERS``.

Limits against abuse: ``MAX_LENGTH`` characters (AWS publishes no limit for
``FilterExpression``; ours is 2,000), ``MAX_SELECTOR_LENGTH`` = 500 for
``EntitySelectorExpression`` (the botocore model's ``max``), ``MAX_DEPTH`` nested
parentheses, braces and negations, and ``tokens.MAX_TOKENS`` tokens.

Both entry points are pure functions, safe from any thread; they raise only
``FilterSyntaxError`` (an ``InvalidRequest``), whose ``position`` is within
``[0, len(text)]``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Literal

from fluoroscope.query.filter.ast import (
    And,
    Annotation,
    Compare,
    Edge,
    Exists,
    Expr,
    Flag,
    Group,
    Keyword,
    Not,
    Or,
    RootCause,
    RootCauseJson,
    Service,
    ServiceRef,
)
from fluoroscope.query.filter.errors import FilterSyntaxError
from fluoroscope.query.filter.keywords import (
    ANNOTATION_EXPECTS,
    ANNOTATION_SCOPES,
    COMPOUND_SCOPES,
    ID_ARGS,
    KEYWORD_TYPES,
    OPERATORS,
    OPERATORS_FOR,
    ROOT_CAUSES,
    SCOPE_KEYWORDS,
    UNARY_START,
    VALUE_TOKENS,
    Scope,
    ValueType,
)
from fluoroscope.query.filter.tokens import Token, TokenKind, tokenize

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_SELECTOR_LENGTH",
    "parse_entity_selector",
    "parse_filter",
]

MAX_LENGTH = 2000
MAX_SELECTOR_LENGTH = 500
MAX_DEPTH = 50


_REVERSED_ROOT_CAUSE = re.compile(r"(fault|error|responsetime)\.rootcause(?:\.(\w+))?")


class _Parser:
    """One parse of one expression; not reused."""

    def __init__(self, text: str, tokens: list[Token], scope: Scope, max_depth: int) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.scope = scope
        self.depth = 0
        self.max_depth = max_depth

    # -- token helpers -------------------------------------------------------------

    @property
    def peek(self) -> Token:
        return self.tokens[self.i]

    @property
    def prev(self) -> Token:
        return self.tokens[self.i - 1]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind is not TokenKind.EOF:
            self.i += 1
        return tok

    def error(self, reason: str, position: int, hint: str = "") -> FilterSyntaxError:
        return FilterSyntaxError(reason, self.text, position, hint=hint)

    def expect(self, kind: TokenKind, what: str) -> Token:
        """Consume a ``kind`` token or fail with "expected {what}, found ..."."""
        tok = self.peek
        if tok.kind is not kind:
            raise self.error(f"expected {what}, found {tok.describe()}", tok.start)
        return self.advance()

    def nested(self, opener: Token, parse: Callable[[], Expr]) -> Expr:
        """Run ``parse`` one nesting level deeper (parenthesis, brace or negation)."""
        self.depth += 1
        if self.depth > self.max_depth:
            raise self.error(f"expression nests deeper than {self.max_depth} levels", opener.start)
        try:
            return parse()
        finally:
            self.depth -= 1

    # -- precedence levels ---------------------------------------------------------

    def parse(self) -> Expr:
        if self.peek.kind is TokenKind.EOF:
            raise self.error(
                "empty filter expression; expected a condition such as 'responsetime > 5'",
                self.peek.start,
            )
        expr = self._or()
        tok = self.peek
        if tok.kind is TokenKind.EOF:
            return expr
        if tok.kind in (TokenKind.RPAREN, TokenKind.RBRACE):
            raise self.error(f"unexpected {tok.describe()} with nothing open to close", tok.start)
        raise self.error(f"expected AND, OR or a condition, found {tok.describe()}", tok.start)

    def _or(self) -> Expr:
        items = [self._and()]
        while self.peek.kind is TokenKind.OR:
            self.advance()
            items.append(self._and())
        return _join(Or, items)

    def _and(self) -> Expr:
        items = [self._unary()]
        while True:
            if self.peek.kind is TokenKind.AND:
                self.advance()
            elif self.peek.kind not in UNARY_START:
                break
            items.append(self._unary())
        return _join(And, items)

    def _unary(self) -> Expr:
        if self.peek.kind in (TokenKind.BANG, TokenKind.NOT):
            tok = self.advance()
            operand = self.nested(tok, self._unary)
            return Not(operand, start=tok.start, end=self.prev.end)
        return self._comparison()

    def _comparison(self) -> Expr:
        tok = self.peek
        if tok.kind is TokenKind.LPAREN:
            self.advance()
            inner = self.nested(tok, self._or)
            self.expect(TokenKind.RPAREN, f"')' to close the '(' opened at position {tok.start}")
            return inner
        if tok.kind is TokenKind.WORD:
            return self._keyword(self.advance())
        if tok.kind is TokenKind.ANNOTATION:
            return self._annotation(self.advance())
        after = f" after '{self.prev.text}'" if self.i > 0 else ""
        raise self.error(f"expected a condition{after}, found {tok.describe()}", tok.start)

    # -- keywords ------------------------------------------------------------------

    def _keyword(self, tok: Token) -> Expr:
        name = str(tok.value)
        compound = _COMPOUND_PARSERS.get(name)
        if compound is not None:
            self._check_scope(tok, name, self.scope in COMPOUND_SCOPES[name])
            return compound(self, tok)
        vtype = KEYWORD_TYPES.get(name)
        if vtype is None:
            raise self.error(f"unknown keyword '{tok.text}'", tok.start, self._suggest(name))
        self._check_scope(tok, name, name in SCOPE_KEYWORDS[self.scope])
        field = Keyword(name, start=tok.start, end=tok.end)
        op_tok = self.peek
        op = OPERATORS.get(op_tok.kind)
        if op is None:
            bare = _BARE_KEYWORD.get(vtype)
            if bare is not None:
                return bare(field)
            raise self.error(
                f"expected a comparison operator ({' '.join(OPERATORS_FOR[vtype])}) after "
                f"'{tok.text}', found {op_tok.describe()}",
                op_tok.start,
            )
        if op not in OPERATORS_FOR[vtype]:
            allowed = " ".join(o.upper() if o.isalpha() else o for o in OPERATORS_FOR[vtype])
            raise self.error(
                f"operator {op_tok.describe()} does not apply to the {vtype.name.lower()} "
                f"keyword '{name}'; use one of {allowed}",
                op_tok.start,
            )
        self.advance()
        value_tok = self.peek
        if VALUE_TOKENS.get(value_tok.kind) is not vtype:
            raise self.error(
                f"expected {vtype.value} after '{tok.text} {op_tok.text}', "
                f"found {value_tok.describe()}",
                value_tok.start,
            )
        self.advance()
        if vtype is ValueType.BOOLEAN:
            flag = Flag(name, start=tok.start, end=value_tok.end)
            holds = (value_tok.value is True) == (op == "=")
            return flag if holds else Not(flag, start=tok.start, end=value_tok.end)
        value = value_tok.value
        if not isinstance(value, str | float):  # pragma: no cover - the tokenizer's contract
            raise self.error("internal: bad literal", value_tok.start)
        return Compare(field, op, value, start=tok.start, end=value_tok.end)

    def _annotation(self, tok: Token) -> Expr:
        if self.scope not in ANNOTATION_SCOPES:
            raise self.error(f"annotations are not allowed {self.scope.value}", tok.start)
        field = Annotation(str(tok.value), start=tok.start, end=tok.end)
        op_tok = self.peek
        op = OPERATORS.get(op_tok.kind)
        if op is None:
            return Exists(field, start=tok.start, end=tok.end)
        self.advance()
        value_tok = self.peek
        vtype = VALUE_TOKENS.get(value_tok.kind)
        if vtype is None or op not in OPERATORS_FOR[vtype]:
            raise self.error(
                f"expected {ANNOTATION_EXPECTS[op]} after '{tok.text} {op_tok.text}', "
                f"found {value_tok.describe()}",
                value_tok.start,
            )
        self.advance()
        value = value_tok.value
        if value is None:  # pragma: no cover - the tokenizer's contract
            raise self.error("internal: bad literal", value_tok.start)
        return Compare(field, op, value, start=tok.start, end=value_tok.end)

    def _check_scope(self, tok: Token, name: str, allowed: bool) -> None:
        if allowed:
            return
        where = [s.value for s in Scope if name in SCOPE_KEYWORDS[s]]
        where += [s.value for s in COMPOUND_SCOPES.get(name, ())]
        hint = f"; use it {' or '.join(sorted(where))}" if where else ""
        raise self.error(f"'{tok.text}' is not allowed {self.scope.value}", tok.start, hint)

    def _suggest(self, name: str) -> str:
        here = SCOPE_KEYWORDS[self.scope] | {
            k for k, scopes in COMPOUND_SCOPES.items() if self.scope in scopes
        }
        everywhere = set(KEYWORD_TYPES) | set(COMPOUND_SCOPES) | {"annotation"}
        if m := _REVERSED_ROOT_CAUSE.fullmatch(name):
            return f"; did you mean 'rootcause.{m[1]}.{m[2] or 'service'}'?"
        for candidates in (here, everywhere):
            close = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
            if close:
                return f"; did you mean '{close[0]}'?"
        return ""

    # -- compound forms ------------------------------------------------------------

    def _service(self, tok: Token) -> Expr:
        self.expect(TokenKind.LPAREN, f"'(' after '{tok.text}'")
        ref = None if self.peek.kind is TokenKind.RPAREN else self._service_ref(tok)
        self.expect(TokenKind.RPAREN, f"')' to close '{tok.text}('")
        body = self._body(Scope.SERVICE) if self.peek.kind is TokenKind.LBRACE else None
        return Service(ref, body, start=tok.start, end=self.prev.end)

    def _edge(self, tok: Token) -> Expr:
        self.expect(TokenKind.LPAREN, f"'(' after '{tok.text}'")
        source = self._service_ref(tok)
        self.expect(TokenKind.COMMA, f"',' between the two services of '{tok.text}(...)'")
        dest = self._service_ref(tok)
        self.expect(TokenKind.RPAREN, f"')' to close '{tok.text}('")
        body = self._body(Scope.EDGE) if self.peek.kind is TokenKind.LBRACE else None
        return Edge(source, dest, body, start=tok.start, end=self.prev.end)

    def _bare_id(self, tok: Token) -> Expr:
        ref = self._id(tok)
        return Service(ref, None, start=tok.start, end=ref.end)

    def _service_ref(self, owner: Token) -> ServiceRef:
        tok = self.peek
        if tok.kind is TokenKind.STRING:
            self.advance()
            return ServiceRef(str(tok.value), start=tok.start, end=tok.end)
        if tok.kind is TokenKind.WORD and tok.value == "id":
            return self._id(self.advance())
        raise self.error(
            f"expected a service name (a string) or id(...) in '{owner.text}(...)', "
            f"found {tok.describe()}",
            tok.start,
        )

    def _id(self, tok: Token) -> ServiceRef:
        self.expect(TokenKind.LPAREN, f"'(' after '{tok.text}'")
        args: dict[str, str] = {}
        while True:
            arg = self.peek
            if arg.kind is TokenKind.RPAREN and not args:
                raise self.error(
                    "id(...) needs at least one of name:, type:, account.id:", arg.start
                )
            if arg.kind is not TokenKind.WORD or arg.value not in ID_ARGS:
                raise self.error(
                    f"expected name:, type: or account.id: in id(...), found {arg.describe()}",
                    arg.start,
                )
            key = ID_ARGS[str(arg.value)]
            if key in args:
                raise self.error(f"'{arg.text}' is given twice in id(...)", arg.start)
            self.advance()
            self.expect(TokenKind.COLON, f"':' after '{arg.text}'")
            args[key] = str(self.expect(TokenKind.STRING, f"a string after '{arg.text}:'").value)
            if self.peek.kind is not TokenKind.COMMA:
                break
            self.advance()
        self.expect(TokenKind.RPAREN, "',' or ')' in id(...)")
        return ServiceRef(**args, start=tok.start, end=self.prev.end)

    def _body(self, scope: Scope) -> Expr:
        brace = self.advance()
        outer = self.scope

        def inner() -> Expr:
            if self.peek.kind is TokenKind.RBRACE:
                raise self.error("expected a condition inside '{...}', found '}'", self.peek.start)
            expr = self._or()
            self.expect(
                TokenKind.RBRACE, f"'}}' to close the '{{' opened at position {brace.start}"
            )
            return expr

        self.scope = scope
        try:
            return self.nested(brace, inner)
        finally:
            self.scope = outer

    def _root_cause(self, tok: Token) -> Expr:
        category, level = ROOT_CAUSES[str(tok.value)]
        if self.peek.kind is not TokenKind.LBRACE:
            raise self.error(
                f"expected '{{' after '{tok.text}', found {self.peek.describe()}", self.peek.start
            )
        body = self._body(Scope.ROOT_CAUSE)
        return RootCause(category, level, body, start=tok.start, end=self.prev.end)

    def _root_cause_json(self, tok: Token) -> Expr:
        self.expect(TokenKind.EQ, f"'=' after '{tok.text}'")
        literal = self.expect(TokenKind.JSON, f"a JSON literal #[...] after '{tok.text} ='")
        return RootCauseJson(str(literal.value), start=tok.start, end=literal.end)

    def _group(self, tok: Token) -> Expr:
        attribute: Literal["name", "arn"] = "name" if tok.value == "group.name" else "arn"
        self.expect(TokenKind.EQ, f"'=' after '{tok.text}'")
        value = self.expect(TokenKind.STRING, f"a string after '{tok.text} ='")
        return Group(attribute, str(value.value), start=tok.start, end=value.end)


_BARE_KEYWORD: dict[ValueType, Callable[[Keyword], Expr]] = {
    ValueType.BOOLEAN: lambda kw: Flag(kw.name, start=kw.start, end=kw.end),  # "fault"
    ValueType.STRING: lambda kw: Exists(kw, start=kw.start, end=kw.end),  # "http.url"
}  # a bare number keyword means nothing: "responsetime" alone is an error

_COMPOUND_PARSERS: dict[str, Callable[[_Parser, Token], Expr]] = {
    "service": _Parser._service,
    "edge": _Parser._edge,
    "id": _Parser._bare_id,
    "rootcause.json": _Parser._root_cause_json,
    "group.name": _Parser._group,
    "group.arn": _Parser._group,
    **dict.fromkeys(ROOT_CAUSES, _Parser._root_cause),
}


def _join(cls: type[And] | type[Or], items: list[Expr]) -> Expr:
    """One item stays itself; more become ``cls`` with same-kind children flattened."""
    if len(items) == 1:
        return items[0]
    flat: list[Expr] = []
    for item in items:
        flat.extend(item.items if isinstance(item, cls) else (item,))
    return cls(tuple(flat), start=items[0].start, end=items[-1].end)


def _parse(text: str, scope: Scope, max_length: int, max_depth: int) -> Expr:
    if len(text) > max_length:
        raise FilterSyntaxError(
            f"expression is {len(text)} characters long; the limit is {max_length}",
            text,
            max_length,
        )
    return _Parser(text, tokenize(text), scope, max_depth).parse()


def parse_filter(text: str, *, max_length: int = MAX_LENGTH, max_depth: int = MAX_DEPTH) -> Expr:
    """Parse a ``FilterExpression`` (GetTraceSummaries, groups) into its tree.

    Raises ``FilterSyntaxError`` (never anything else) naming the first problem.
    """
    return _parse(text, Scope.TRACE, max_length, max_depth)


def parse_entity_selector(
    text: str, *, max_length: int = MAX_SELECTOR_LENGTH, max_depth: int = MAX_DEPTH
) -> Expr:
    """Parse an ``EntitySelectorExpression`` (GetTimeSeriesServiceStatistics).

    Only ``service(...)``, ``edge(...)`` and ``id(...)`` (with optional bodies),
    combined with ``!``, AND, OR and parentheses. Raises ``FilterSyntaxError``.
    """
    return _parse(text, Scope.SELECTOR, max_length, max_depth)
