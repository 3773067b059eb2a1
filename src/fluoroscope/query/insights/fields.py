"""The fields every event has (``reference/logs.md`` §4.1) and JSON fields, as SQL over
the ``log_events`` columns of a row source.

``system(name, col, account)`` gives a system field's ``Sql`` (or None for a name that
is not one), where ``col(c)`` is the SQL of the row's column ``c``. ``json_field(path,
col, params)`` reads a key path of the message's first JSON object (the ``json``
column): ``a.b.0.c`` walks objects by key and arrays by 0-based index; a string value
comes back decoded, any other value as its JSON text, a missing key or ``null`` as
NULL. ``@@key`` names a JSON key that itself starts with ``@``.

The Lambda REPORT numbers are computed only for ``type = 'REPORT'`` rows: from the text
line (``Duration: 20.39 ms``...) or, for JSON-format logs, from ``record.metrics`` of a
``platform.report`` event. ``@memorySize``/``@maxMemoryUsed`` are in bytes (MB x 10^6),
as the Logs Insights sample queries assume.
"""

from __future__ import annotations

from collections.abc import Callable

from fluoroscope.query.insights.sql import Kind, Params, Sql, literal

__all__ = ["RAW_COLUMNS", "SYSTEM_FIELDS", "json_field", "system"]

RAW_COLUMNS = (
    "ts",
    "ingest_ts",
    "seq",
    "log_group",
    "stream",
    "message",
    "trace_id",
    "segment_id",
    "request_id",
    "level",
    "type",
    "json",
)
"""The ``log_events`` columns the compiled statement reads."""

Column = Callable[[str], str]

# name -> (text REPORT regex with one group, JSON key under record.metrics, scale)
_REPORT: dict[str, tuple[str, str, int]] = {
    "@duration": (r"RequestId:\s*\S+\s+Duration:\s*([0-9.]+)\s*ms", "durationMs", 1),
    "@billedDuration": (r"Billed Duration:\s*([0-9.]+)\s*ms", "billedDurationMs", 1),
    "@initDuration": (r"Init Duration:\s*([0-9.]+)\s*ms", "initDurationMs", 1),
    "@memorySize": (r"Memory Size:\s*([0-9]+)\s*MB", "memorySizeMB", 1_000_000),
    "@maxMemoryUsed": (r"Max Memory Used:\s*([0-9]+)\s*MB", "maxMemoryUsedMB", 1_000_000),
}


def _report(col: Column, name: str) -> Sql:
    pattern, key, scale = _REPORT[name]
    text = f"toFloat64OrNull(extract({col('message')}, {literal(pattern)}))"
    from_json = (
        f"JSONExtract({col('json')}, 'record', 'metrics', {literal(key)}, 'Nullable(Float64)')"
    )
    value = f"if(startsWith({col('message')}, 'REPORT'), {text}, {from_json})"
    scaled = value if scale == 1 else f"({value}) * {scale}"
    return Sql(f"if({col('type')} = 'REPORT', {scaled}, NULL)", Kind.NUM)


_SIMPLE: dict[str, tuple[str, Kind]] = {
    "@timestamp": ("{ts}", Kind.TIME),
    "@ingestionTime": ("{ingest_ts}", Kind.TIME),
    "@message": ("{message}", Kind.STR),
    "@logStream": ("{stream}", Kind.STR),
    "@requestId": ("nullIf({request_id}, '')", Kind.STR),
    "@type": ("nullIf({type}, '')", Kind.STR),
    "@xrayTraceId": ("nullIf({trace_id}, '')", Kind.STR),
    "@xraySegmentId": ("nullIf({segment_id}, '')", Kind.STR),
}

SYSTEM_FIELDS = (*_SIMPLE, "@log", *_REPORT)
"""Every system field name the compiler knows (besides ``@ptr`` on each result row)."""


def system(name: str, col: Column, account: str) -> Sql | None:
    """The SQL of system field ``name`` (None if it is not one); ``account`` is the
    bound parameter holding the account id (for ``@log``)."""
    if name in _SIMPLE:
        template, kind = _SIMPLE[name]
        return Sql(template.format_map(_Columns(col)), kind)
    if name == "@log":
        return Sql(f"concat({account}, ':', {col('log_group')})", Kind.STR)
    if name in _REPORT:
        return _report(col, name)
    return None


class _Columns(dict[str, str]):
    def __init__(self, col: Column) -> None:
        super().__init__()
        self._col = col

    def __missing__(self, key: str) -> str:
        return self._col(key)


def json_field(path: str, col: Column, params: Params) -> Sql:
    """The value at key path ``path`` of the row's first JSON object (see module doc)."""
    if path.startswith("@@"):
        path = path[1:]
    keys: list[str] = []
    for part in path.split("."):
        if part.isdigit() and len(part) < 10:
            keys.append(str(int(part) + 1))  # JSON functions count array items from 1
        else:
            keys.append(params.bind(part, "String"))
    raw = f"JSONExtractRaw({col('json')}, {', '.join(keys)})"
    return Sql(
        f"multiIf({raw} IN ('', 'null'), NULL, startsWith({raw}, '\"'), "
        f"JSONExtractString({raw}), {raw})",
        Kind.STR,
    )
