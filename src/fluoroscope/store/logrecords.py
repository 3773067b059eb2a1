"""The log store's vocabulary: its errors, the rows it returns, and the Arrow columns it
takes (re-exported by :mod:`fluoroscope.store.logs`; see there for the contract)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa

from fluoroscope.model.errors import InvalidRequest, ResourceNotFound

__all__ = [
    "EVENT_SCHEMA",
    "EventPage",
    "IndexEntry",
    "LogEvent",
    "LogGroup",
    "LogGroupExists",
    "LogGroupNotFound",
    "LogStream",
    "LogStreamExists",
    "LogStreamNotFound",
    "Page",
    "ResourceExists",
    "normalize_trace_id",
]


class ResourceExists(InvalidRequest):
    """A resource to create exists already (``ResourceAlreadyExistsException``)."""


class LogGroupNotFound(ResourceNotFound):
    def __init__(self, name: str = "") -> None:
        super().__init__("The specified log group does not exist.")
        self.name = name


class LogStreamNotFound(ResourceNotFound):
    def __init__(self, name: str = "") -> None:
        super().__init__("The specified log stream does not exist.")
        self.name = name


class LogGroupExists(ResourceExists):
    def __init__(self, name: str = "") -> None:
        super().__init__("The specified log group already exists")
        self.name = name


class LogStreamExists(ResourceExists):
    def __init__(self, name: str = "") -> None:
        super().__init__("The specified log stream already exists")
        self.name = name


_MS: Final = pa.timestamp("ms", tz="UTC")
EVENT_SCHEMA: Final = pa.schema(
    [
        ("log_group", pa.string()),
        ("stream", pa.string()),
        ("ts", _MS),
        ("ingest_ts", _MS),
        ("seq", pa.uint64()),
        ("message", pa.string()),
        ("trace_id", pa.string()),
        ("segment_id", pa.string()),
        ("request_id", pa.string()),
        ("level", pa.string()),
        ("type", pa.string()),
        ("json_whole", pa.uint8()),
        ("json_text", pa.string()),
        ("retention_days", pa.uint16()),
    ]
)
"""The Arrow columns :meth:`LogStore.write` takes (those of ``log_events`` but ``json``)."""

_XRAY_ID: Final = re.compile(r"1-[0-9a-f]{8}-[0-9a-f]{24}")
_W3C_ID: Final = re.compile(r"[0-9a-f]{32}")


def normalize_trace_id(trace_id: str) -> str:
    """``trace_id`` in the stored ``1-8hex-24hex`` form (from that form or a W3C 32-hex
    id), or raise InvalidRequest."""
    text = trace_id.strip().lower()
    if _XRAY_ID.fullmatch(text):
        return text
    if _W3C_ID.fullmatch(text):
        return f"1-{text[:8]}-{text[8:]}"
    raise InvalidRequest(f"not a trace id: {trace_id!r}")


@dataclass(frozen=True, slots=True)
class LogGroup:
    name: str
    creation_time: int
    retention_days: int | None  # the policy; None = none (the server's default applies)
    log_group_class: str = "STANDARD"
    kms_key_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    stored_bytes: int = 0  # message bytes stored (filled by describe_groups/get_group)


@dataclass(frozen=True, slots=True)
class LogStream:
    log_group: str
    name: str
    creation_time: int
    first_event: int | None  # first/last event timestamp, last ingestion time; None
    last_event: int | None  # while the stream holds no event
    last_ingestion: int | None
    stored_bytes: int = 0


@dataclass(frozen=True, slots=True)
class LogEvent:
    log_group: str
    stream: str
    timestamp: int
    ingestion_time: int
    seq: int
    message: str
    trace_id: str = ""  # trace_lines(): the trace the line belongs to
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One entry of the trace index (``log_index``): where a line carrying a trace or
    request id is stored (``key``: the trace id it carries, else ``'r:'`` + its request
    id)."""

    key: str
    log_group: str
    stream: str
    request_id: str
    timestamp: int  # epoch ms
    seq: int


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Any]  # LogGroup or LogStream
    next_key: str | None


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[LogEvent]
    next_key: tuple[int, int] | None
