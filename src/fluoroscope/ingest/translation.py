"""An OTLP request's translation by the ingest workers, as the server sees it.

:class:`~fluoroscope.ingest.process.IngestProcess` sends each OTLP request to one
worker, or to each of up to :data:`SHARE_OTLP_UP_TO` workers (each translating the
spans of the traces it owns); :class:`Translating` adds up their answers and, once the
last has answered, completes the request's future with a :class:`Translated`.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Final

from fluoroscope.ingest.readahead import all_of

__all__ = ["SHARE_OTLP_UP_TO", "Translated", "Translating"]


@dataclass(frozen=True, slots=True)
class Translated:
    """An OTLP request's spans as a worker translated them: how many became valid
    documents, spans rejected and why, and ``stored``, done once the valid documents are
    stored (None when there are none); ``not_otlp`` when the body was no
    ``ExportTraceServiceRequest`` (``reasons`` says why; nothing is stored)."""

    documents: int
    rejected: int
    reasons: str
    stored: Future[None] | None = None
    not_otlp: bool = False


@dataclass(slots=True)
class Translating:
    """An OTLP request sent to ``parts`` workers: their answers added up, until the
    last one completes ``future``. Guarded by the owner's lock, apart from
    :meth:`finish` and :meth:`fail`."""

    future: Future[Translated]
    parts: int
    documents: int = 0
    rejected: int = 0
    reasons: str = ""
    not_otlp: bool = False
    stored: list[Future[None]] = field(default_factory=list)

    def add(
        self, valid: int, rejected: int, reasons: str, stored: list[Future[None]], not_otlp: bool
    ) -> bool:
        """Add one worker's answer; True once every worker has answered."""
        if not_otlp:
            self.not_otlp, self.reasons = True, reasons
        elif not self.not_otlp:
            self.documents += valid
            self.rejected += rejected
            if reasons:
                self.reasons = f"{self.reasons}\n{reasons}" if self.reasons else reasons
            self.stored += stored
        self.parts -= 1
        return self.parts == 0

    def finish(self) -> None:
        """Complete the future with the answers (unless it already failed)."""
        if self.future.done():
            return
        if self.not_otlp:  # every worker refuses the same bytes: nothing of it is stored
            self.future.set_result(Translated(0, 0, self.reasons, not_otlp=True))
            return
        done = all_of(self.stored) if self.stored else None
        self.future.set_result(Translated(self.documents, self.rejected, self.reasons, done))

    def fail(self, error: BaseException) -> None:
        """Fail the future (a worker translating the request stopped)."""
        if not self.future.done():
            self.future.set_exception(error)


SHARE_OTLP_UP_TO: Final = 2
"""Up to how many workers every worker is sent each OTLP request (:meth:`IngestProcess.
translate`): each then parses the whole request (upb, ~0.6 us per span with the
attribute view) and looks up every span's owner, where handing a document on costs its
serialization being parsed again in its owner (~2 us); so sharing is the cheaper of the
two for 2 workers (the default on 2 or more cores), handing on for many."""
