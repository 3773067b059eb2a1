"""The X-Ray filter expression language, front half: tokenizer, tree, parser, printer.

``parse_filter(text)`` turns a ``FilterExpression`` into a tree of the nodes in
``fluoroscope.query.filter.ast`` (the shape is drawn in that module's docstring);
``parse_entity_selector(text)`` does the same for an ``EntitySelectorExpression``.
Every problem raises ``FilterSyntaxError`` (an ``InvalidRequest``) with the position
and a caret excerpt. ``to_filter`` prints a tree back as canonical filter text and
``to_sexpr`` as a compact S-expression.

Standard library and ``fluoroscope.model`` only; pure functions, no state.
"""

from __future__ import annotations

from fluoroscope.query.filter.ast import (
    And,
    Annotation,
    Compare,
    CompareOp,
    Edge,
    Exists,
    Expr,
    Field,
    Flag,
    Group,
    Keyword,
    Node,
    Not,
    Or,
    RootCause,
    RootCauseJson,
    Service,
    ServiceRef,
    Value,
)
from fluoroscope.query.filter.errors import FilterSyntaxError
from fluoroscope.query.filter.parser import (
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_SELECTOR_LENGTH,
    parse_entity_selector,
    parse_filter,
)
from fluoroscope.query.filter.printer import to_filter, to_sexpr
from fluoroscope.query.filter.tokens import MAX_TOKENS

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_SELECTOR_LENGTH",
    "MAX_TOKENS",
    "And",
    "Annotation",
    "Compare",
    "CompareOp",
    "Edge",
    "Exists",
    "Expr",
    "Field",
    "FilterSyntaxError",
    "Flag",
    "Group",
    "Keyword",
    "Node",
    "Not",
    "Or",
    "RootCause",
    "RootCauseJson",
    "Service",
    "ServiceRef",
    "Value",
    "parse_entity_selector",
    "parse_filter",
    "to_filter",
    "to_sexpr",
]
