"""What kind of migration statement a layout change is (see :mod:`fluoroscope.store.schema`)."""

from __future__ import annotations

__all__ = ["EngineCompression", "Tuning"]


class Tuning(str):
    """A migration statement that only changes how data is laid out on disk, never what
    a query returns. An engine too old for it (a ClickHouse server before 23.12 has no
    column-level settings) keeps the previous layout: the statement is skipped with a
    warning instead of failing the migration."""


class EngineCompression(Tuning):
    """A layout change that hands a column's compression to the engine's configuration
    (its codec removed, or one pinned where that configuration would change it): applied
    only where the engine compresses by Fluoroscope's ``<compression>`` section
    (``Transport.compression_configured``: the embedded engine). Elsewhere - a ClickHouse
    server, a cluster's DDL - it is skipped and the explicit codecs stay, so the bytes
    stored never depend on a server configuration Fluoroscope does not write."""
