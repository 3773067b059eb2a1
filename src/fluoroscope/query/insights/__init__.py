"""The Logs Insights query language: parse, print, compile to engine SQL.

``parse(text) -> Query`` turns a query into the tree of ``ast``; every problem raises
``InsightsSyntaxError`` (an ``InvalidRequest``) carrying ``start``/``end`` character
offsets and a message (the Logs API answers ``MalformedQueryException`` with
``queryCompileError.location``). ``to_text(query)`` prints a tree back as canonical
text. ``compile(query, database=, groups=, start_ms=, end_ms=, limit=, account=)``
returns a ``Compiled`` (SQL, parameters, result field names, ``is_stats``, ``limit``) to
run over the store's ``log_events`` table.

Pure functions, no state, safe from any thread.
"""

from __future__ import annotations

from fluoroscope.query.insights.ast import Query
from fluoroscope.query.insights.compile import DEFAULT_ACCOUNT, Compiled, compile
from fluoroscope.query.insights.errors import InsightsSyntaxError
from fluoroscope.query.insights.fields import SYSTEM_FIELDS
from fluoroscope.query.insights.parser import DEFAULT_LIMIT, MAX_LENGTH, MAX_LIMIT, parse
from fluoroscope.query.insights.printer import to_text

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_LIMIT",
    "MAX_LENGTH",
    "MAX_LIMIT",
    "SYSTEM_FIELDS",
    "Compiled",
    "InsightsSyntaxError",
    "Query",
    "compile",
    "parse",
    "to_text",
]
