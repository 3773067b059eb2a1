"""The translation settings, and their form on an ingest worker's command line.

Pure and thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["TranslateOptions", "decode_options", "encode_options", "translator"]


@dataclass(frozen=True, slots=True)
class TranslateOptions:
    """The awsxray exporter's settings: which attributes become annotations
    (``indexed``, or all of them), and log groups named on every segment
    (``log_groups``, its ``aws_log_groups``)."""

    indexed: frozenset[str] = frozenset()
    index_all: bool = False
    log_groups: tuple[str, ...] = ()


def encode_options(options: TranslateOptions) -> str:
    """``options`` as one JSON text."""
    return orjson.dumps(
        {
            "indexed": sorted(options.indexed),
            "index_all": options.index_all,
            "log_groups": list(options.log_groups),
        }
    ).decode()


def decode_options(text: str) -> TranslateOptions:
    """The options :func:`encode_options` encoded."""
    value = orjson.loads(text)
    return TranslateOptions(
        frozenset(value.get("indexed", ())),
        bool(value.get("index_all", False)),
        tuple(value.get("log_groups", ())),
    )


def translator(text: str) -> Any:
    """A :class:`~fluoroscope.ingest.otlp.Translator` with the encoded options."""
    from fluoroscope.ingest.otlp.translate import Translator

    return Translator(decode_options(text))
