"""What kind of migration statement a layout change is (see :mod:`fluoroscope.store.schema`)."""

from __future__ import annotations

__all__ = ["Tuning"]


class Tuning(str):
    """A migration statement that only changes how data is laid out on disk, never what
    a query returns. An engine too old for it (a ClickHouse server before 23.12 has no
    column-level settings) keeps the previous layout: the statement is skipped with a
    warning instead of failing the migration."""
