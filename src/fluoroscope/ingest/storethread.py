"""The ingest pipeline's store thread: merged tables written a batch at a time, beside
the worker (:class:`~fluoroscope.ingest.pipeline.Pipeline`, a :class:`StoreThread`).

Contract: the worker appends each slice's encoded tables to ``_merged`` (documents,
entities, tables); :meth:`StoreThread._flush` hands them to the store thread
(``fluoroscope-store``) as one batch, once the previous write is done, so at most one
write is in flight and the worker merges the next batch meanwhile (the engine releases
the GIL). :meth:`StoreThread._settle` writes what is merged and waits for it; an error of
a write becomes ``_round_error`` (the round's, which the worker clears). A write is
retried (:func:`~fluoroscope.ingest.retries.with_retries`) and counted:
``stored_documents`` and ``stored_entities``, or ``lost_documents``. The assembler
reloads evicted traces through :class:`_AfterWrites`, which waits for the write in
flight first. All methods but the store thread's :meth:`StoreThread._store_batch` run
in the worker thread, which shuts ``_writer`` down as it ends.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pyarrow as pa

from fluoroscope.ingest.retries import with_retries
from fluoroscope.model.errors import StoreError
from fluoroscope.store.batch import StoredTrace, WriteBatch
from fluoroscope.store.store import Store

__all__ = ["StoreThread"]

log = logging.getLogger("fluoroscope.ingest")


class StoreThread:
    """Writes batches of merged tables to ``store`` in a thread of its own (see module
    docstring)."""

    def __init__(self, store: Store, counters: Counter[str]) -> None:
        """``counters``: where writes are counted."""
        self._store = store
        self.counters = counters
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: Future[BaseException | None] | None = None
        self._merged: list[tuple[int, int, list[tuple[str, pa.Table]]]] = []  # see _flush
        self._round_error: BaseException | None = None

    def _flush(self) -> None:
        """Hand the tables merged since the last batch to the store thread as one batch,
        once the previous write is done (worker thread). Each table is the slices' tables
        joined: rows of a trace merged in two slices are replaced as rows of two batches
        are, statistics rows are sums, and contributions are applied in order."""
        merged, self._merged = self._merged, []
        if not merged:
            return
        parts: dict[str, list[pa.Table]] = {}
        for _, _, tables in merged:
            for name, table in tables:
                parts.setdefault(name, []).append(table)
        joined = [(name, t[0] if len(t) == 1 else pa.concat_tables(t)) for name, t in parts.items()]
        batch = _Joined(entities=sum(entities for _, entities, _ in merged))
        batch.documents = sum(documents for documents, _, _ in merged)
        self._wait()
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="fluoroscope-store")
        self._inflight = self._writer.submit(self._store_batch, batch, joined)

    def _settle(self) -> None:
        """Write what is merged and wait for it (see :meth:`_flush`); an error becomes
        the round's. Worker thread."""
        self._flush()
        self._wait()

    def _wait(self) -> None:
        """Wait for the write in flight, if any; its error becomes the round's."""
        inflight, self._inflight = self._inflight, None
        if inflight is not None:
            error = inflight.result()
            if error is not None:
                self._round_error = error

    def _store_batch(
        self, batch: WriteBatch, tables: list[tuple[str, pa.Table]]
    ) -> BaseException | None:
        """Write ``batch`` with retries (store thread); the last error if all failed.
        Never raises: an unexpected error is not retried, and counted like a store's."""
        try:
            error = with_retries(lambda: self._store.write(batch, tables))
        except Exception as exc:
            log.exception("writing a batch failed")
            error = StoreError(f"writing a batch failed: {exc!r:.200}")
        if error is None:
            self.counters["stored_documents"] += batch.documents
            self.counters["stored_entities"] += len(batch)
        else:
            self.counters["lost_documents"] += batch.documents
        return error


@dataclass(slots=True)
class _Joined(WriteBatch):
    """The batch of the tables of several merged slices: only its counts are read."""

    entities: int = 0

    def __len__(self) -> int:
        return self.entities


class _AfterWrites:
    """The store as the assembler's loader: a reload first waits for the write in
    flight, so it sees every row merged before it."""

    def __init__(self, store: Store, settle: Callable[[], None]) -> None:
        self._store = store
        self._settle = settle

    def load_traces(self, trace_ids: Iterable[str]) -> dict[str, StoredTrace]:
        """See :meth:`fluoroscope.store.store.Store.load_traces` (worker thread)."""
        self._settle()
        return self._store.load_traces(trace_ids)
