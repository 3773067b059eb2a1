"""What ingest reads out of each log line, computed a whole batch at a time.

:func:`extract` takes a column of messages and returns the columns the ``log_events``
table stores beside them (store/schema.py, migration 10):

``trace_id``
    The X-Ray trace id the line carries, always as ``1-8hex-24hex``: the X-Ray form
    wherever it appears (Lambda ``REPORT ... XRAY TraceId: 1-...``, a trace header
    ``Root=1-...;Parent=...`` as in Lambda JSON ``record.tracing.value`` and API Gateway's
    ``X-ray Tracing ID : Root=1-...``, the JSON keys ``xray_trace_id`` / ``xrayTraceId`` /
    ``traceId`` / ``trace_id``, Java's ``AWS-XRAY-TRACE-ID: 1-...@segment``); else a W3C
    32-hex id after ``trace_id``/``traceId``/``trace-id``/``otelTraceID``/``traceparent``
    (``1-`` + its first 8 + ``-`` + its last 24). Lower case; ``''`` when none.
``segment_id``
    16 hex after ``SegmentId``/``segment_id``/``spanId``/``span_id``/``Parent``, or
    after ``1-...@`` (Java); ``''`` when none.
``request_id``
    Lambda ``START/END/REPORT RequestId: <id>``, the Python runtime's text line
    ``[LEVEL]\\t<time>\\t<id>\\t``, Node's ``<time>\\t<id>\\tLEVEL\\t``, API Gateway
    execution logs' ``(<id>) `` prefix, JSON ``"requestId"`` (Lambda JSON
    ``record.requestId``, API Gateway access logs) and ``"function_request_id"``
    (Powertools); ``''`` when none. Outside platform lines an id is up to 128 letters,
    digits, ``-`` or ``_`` starting with a letter or digit, and not a placeholder
    (``-``, ``null``, ``None``, ``undefined``, ``nil``), which would join unrelated lines.
``level``
    Upper case: ``[LEVEL]`` at the start, Node's tab-separated level, the level after a
    leading date (Python ``logging``/OpenTelemetry formats), or a JSON ``"level"`` /
    ``"levelname"`` / ``"severity"`` string; ``''`` when none.
``type``
    The Lambda platform line kind: the first word of a text platform line (``START``,
    ``END``, ``REPORT``, ``INIT_START``, ...), or the JSON format's ``platform.<kind>`` in
    upper snake case (``platform.report`` -> ``REPORT``, ``platform.runtimeDone`` ->
    ``RUNTIME_DONE``); ``''`` otherwise.
``json_whole`` / ``json_text``
    The message's first JSON object, stored once: ``json_whole = 1`` when the whole
    message (surrounding white space aside) is an object ``{"...}`` or ``{}``, else
    ``json_text`` is the span from the first ``{"`` to the last ``}`` (``''`` if none).
    Not validated here (a broken object reads as no fields at query time).

Lambda correlation is not done here: an application line keeps only its request id, and
the store's ``log_requests`` (filled by the engine from lines carrying both ids, such as
REPORT) resolves its trace at read time, whatever order the lines arrived in.

How, and why so. Every per-row step is a compiled kernel: RE2 regular expressions (which
cannot backtrack) run by Arrow compute (``extract_regex``), which releases the GIL, so
the server's event loop keeps running while a batch is read. Measured on this (shared,
2-core, loaded) machine, 100,000 lines of the benchmark's mix (~150 bytes): Arrow
extraction 0.29-0.40 s, then the insert of the extracted rows 0.19-0.24 s; the same
extraction done by the engine inside the insert (``INSERT ... SELECT extract(...)`` with
``position``/``multiSearchAny`` guards before each regex) 0.42-0.53 s all in, against
0.09-0.10 s for inserting the raw rows alone. The two cost about the same; Arrow was
chosen because it is the same on both transports (the engine path needs ``Python()``
under chDB and ``input()`` over HTTP), keeps what is extracted in this layer, and lets
the writer read the next batch while the engine inserts the previous one.

Tuning measured since (100,000 lines of ~195 bytes, best of 5, interleaved A/B in one
process): the JSON-part and segment-id expressions run only on the rows a cheap test
selects (``find_substring('{"')`` outside whole-JSON lines; lines with a trace id), and
the X-Ray id expression starts with its literal ``1-`` (a leading ``\b`` kept RE2 from
skipping ahead to it: 105 -> 60 ms alone): 0.38-0.67 s -> 0.32-0.49 s per 100,000.
The test for ``{"`` is a regular expression, not Arrow's substring search: RE2 skips
ahead with memchr, 0.33 -> 0.05 us per line (~200 bytes, best of 5).
Folding the three anchored expressions (request id, level, type) into one with eleven
groups was slower (0.74 -> 1.02 s): RE2 then extracts groups with its slower engine.

Arrow compiles each expression on every call (no compiled form can be kept across
calls), which a small batch pays in full: a one-line call took 2.3 ms. Since: the text
request id's lengths are checked after matching, not by counted repetitions (which RE2
compiles into a state per repetition: 0.63 -> 0.08 ms to compile that one), and the
JSON key expressions run only on rows holding a ``"`` whose text form found nothing
(skipped, compile included, when no row does): one line 2.3 -> 1.3 ms, 16,000 of the
API benchmark's lines 2.02 -> 1.49 us per line (best of 5, load ~10). Since, the
platform line kind is extracted only from rows its expression matches (a test without
groups, which RE2 answers with its fast engine; a text or JSON platform line is rare
beside application lines) and a W3C id is reshaped only where one was found: 16,000 of
those lines 37.2 -> 30.0 ms (median of 25, interleaved with the code before in one
process, thread CPU), the same columns for 11,000 lines of the reference and the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["EXTRACTED", "extract", "message_array"]

EXTRACTED: Final = (
    "trace_id", "segment_id", "request_id", "level", "type", "json_whole", "json_text",
)  # fmt: skip
"""The columns :func:`extract` returns, in order."""

_LEVELS: Final = "TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|CRITICAL|FATAL"
_DATE: Final = r"\d{4}-\d\d-\d\d"

_XRAY: Final = r"(?P<t>1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24})\b"
_W3C: Final = r"(?i)(?:trace[_-]?id|traceparent)\W{0,4}(?:00-)?(?P<w>[0-9a-f]{32})\b"
_SEGMENT: Final = (
    r"(?i)(?:(?:segment|span|parent)[_-]?id|parent|\b1-[0-9a-f]{8}-[0-9a-f]{24}@)"
    r"\W{0,4}(?P<s>[0-9a-f]{16})\b"
)
# Each id's length is checked after the match (_REQUEST_LENGTHS), not by a counted
# repetition: RE2 compiles ``{0,127}`` into 127 states (0.63 -> 0.08 ms to compile, paid
# on every call). The same rows match: each id is followed by a character its class
# excludes, and the four alternatives start differently, so a row matches one at most.
_REQUEST: Final = (
    r"^(?:(?:START|END|REPORT) RequestId: (?P<a>[^\s]+)"
    rf"|\[[A-Za-z]+\]\t{_DATE}T[^\t\n]*\t(?P<b>[0-9A-Za-z][0-9A-Za-z_-]*)\t"
    rf"|{_DATE}T[0-9:.]+Z\t(?P<c>[0-9a-fA-F-]+)\t"
    r"|\((?P<d>[0-9a-fA-F][0-9a-fA-F-]*)\) )"
)
_REQUEST_LENGTHS: Final = {"b": (1, 128), "c": (36, 36), "d": (8, 64)}
_REQUEST_JSON: Final = (
    r'"(?:requestId|function_request_id)"\s*:\s*"(?P<e>[0-9A-Za-z][0-9A-Za-z_-]{0,127})"'
)
_PLACEHOLDERS: Final = pa.array(["null", "NULL", "Null", "None", "none", "undefined", "nil"])
_LEVEL: Final = (
    rf"^(?:\[(?P<a>{_LEVELS})\]"
    rf"|{_DATE}T[0-9:.]+Z\t[^\t]*\t(?P<b>{_LEVELS})\t"
    rf"|{_DATE}[ T][0-9:.,]+(?:Z|[+-]\d\d:?\d\d)?\s+\[?(?P<c>{_LEVELS})\b)"
)
_LEVEL_JSON: Final = (
    r'(?i)"(?:level|levelname|severity|severityText|severity_text)"\s*:\s*"(?P<e>[a-z]+)"'
)
_TYPE: Final = (
    r"^(?:(?P<a>START|END|REPORT|INIT_START|INIT_REPORT|INIT_RUNTIME_DONE|RESTORE_START"
    r"|RESTORE_REPORT|RESTORE_RUNTIME_DONE|EXTENSION|TELEMETRY|LOGS) "
    r'|\{\s*"time"\s*:\s*"[^"]*"\s*,\s*"type"\s*:\s*"platform\.(?P<b>[A-Za-z]+)")'
)
_JSON_WHOLE: Final = r'(?s)^\s*\{\s*(?:".*)?\}\s*$'
_JSON_PART: Final = r'(?s)(?P<j>\{".*\})'


def message_array(messages: Sequence[str | bytes]) -> pa.Array:
    """``messages`` as an Arrow string column. Text that is not valid UTF-8 (bytes, or
    strings holding lone surrogates) has the offending bytes replaced with U+FFFD
    (``?`` for a surrogate); only such a batch pays for the per-item repair."""
    try:
        return pa.array(messages, pa.string())
    except (pa.ArrowException, UnicodeError, TypeError):
        return pa.array([_repair(m) for m in messages], pa.string())


def _repair(message: str | bytes) -> str:
    if isinstance(message, bytes):
        return message.decode("utf-8", "replace")
    return message.encode("utf-8", "replace").decode("utf-8")


def _group(column: pa.Array, pattern: str, name: str) -> pa.Array:
    """The named group of ``pattern``'s first match in each row ('' when none)."""
    return pc.fill_null(pc.struct_field(pc.extract_regex(column, pattern), name), "")


def _first(
    column: pa.Array,
    pattern: str,
    names: Sequence[str],
    lengths: Mapping[str, tuple[int, int]] | None = None,
) -> pa.Array:
    """The first non-empty of several named groups of one alternation ('' when none);
    a group whose value's length is outside its ``lengths`` bounds counts as empty."""
    found = pc.extract_regex(column, pattern)
    out: pa.Array | None = None
    for name in names:
        value = pc.fill_null(pc.struct_field(found, name), "")
        if lengths and name in lengths:
            low, high = lengths[name]
            size = pc.utf8_length(value)
            value = pc.if_else(pc.and_(pc.greater_equal(size, low), pc.less_equal(size, high)),
                               value, "")  # fmt: skip
        out = value if out is None else pc.if_else(pc.equal(out, ""), value, out)
    assert out is not None
    return out


def _only(messages: pa.Array, mask: pa.Array, compute: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """``compute`` run on the rows ``mask`` selects only, '' elsewhere."""
    selected = int(pc.sum(mask).as_py() or 0)
    if selected == len(messages):
        return compute(messages)
    empty = pa.repeat(pa.scalar("", pa.string()), len(messages))
    if selected == 0:
        return empty
    return pc.replace_with_mask(empty, mask, compute(pc.filter(messages, mask)))


def _or(first: pa.Array, second: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(first, ""), second, first)


def extract(messages: pa.Array | pa.ChunkedArray) -> dict[str, pa.Array]:
    """The :data:`EXTRACTED` columns for ``messages`` (see the module docstring), each
    as long as ``messages``. Never raises on content: any string yields a row."""
    messages = _plain(messages)
    xray = _group(messages, _XRAY, "t")
    w3c = _group(messages, _W3C, "w")
    w3c = _only(w3c, pc.not_equal(w3c, ""), _xray_form)
    trace_id = pc.utf8_lower(_or(xray, w3c))
    segment_id = _only(  # only a line carrying a trace id has a segment id worth keeping
        messages, pc.not_equal(trace_id, ""), lambda m: pc.utf8_lower(_group(m, _SEGMENT, "s"))
    )
    # a JSON key needs a quote: rows without one (most text lines) skip the JSON
    # expressions, and so does a row whose text form already answered
    quoted = pc.match_substring_regex(messages, '"')
    text_request = _first(messages, _REQUEST, ("a", "b", "c", "d"), _REQUEST_LENGTHS)
    request_id = _or(
        text_request,
        _only(messages, pc.and_(quoted, pc.equal(text_request, "")),
              lambda m: _group(m, _REQUEST_JSON, "e")),
    )  # fmt: skip
    request_id = pc.if_else(pc.is_in(request_id, value_set=_PLACEHOLDERS), "", request_id)
    text_level = _first(messages, _LEVEL, ("a", "b", "c"))
    level = pc.utf8_upper(
        _or(text_level, _only(messages, pc.and_(quoted, pc.equal(text_level, "")),
                              lambda m: _group(m, _LEVEL_JSON, "e")))
    )  # fmt: skip
    kind = _only(messages, pc.match_substring_regex(messages, _TYPE), _kind)
    whole = pc.match_substring_regex(messages, _JSON_WHOLE)
    part = _only(
        messages,
        pc.and_(pc.invert(whole), pc.match_substring_regex(messages, r'\{"')),
        lambda m: _group(m, _JSON_PART, "j"),
    )
    columns = {
        "trace_id": trace_id,
        "segment_id": segment_id,
        "request_id": request_id,
        "level": level,
        "type": kind,
        "json_whole": pc.cast(whole, pa.uint8()),
        "json_text": part,
    }
    return {name: _plain(value) for name, value in columns.items()}


def _xray_form(w3c: pa.Array) -> pa.Array:
    """32-hex W3C trace ids as X-Ray's ``1-8hex-24hex``."""
    return pc.binary_join_element_wise(
        "1-", pc.utf8_slice_codeunits(w3c, 0, 8), "-", pc.utf8_slice_codeunits(w3c, 8, 32), ""
    )


def _kind(messages: pa.Array) -> pa.Array:
    """The platform line kind of rows that match :data:`_TYPE` (the ``type`` column)."""
    kinds = pc.extract_regex(messages, _TYPE)
    platform = pc.fill_null(pc.struct_field(kinds, "b"), "")
    platform = pc.utf8_upper(pc.replace_substring_regex(platform, r"([a-z])([A-Z])", r"\1_\2"))
    return _or(pc.fill_null(pc.struct_field(kinds, "a"), ""), platform)


def _plain(value: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks()
    return value
