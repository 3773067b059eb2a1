"""Process-wide recording of traces, for tests (:mod:`fluoroscope.sdk.testing`).

``RECORDING`` is a stack of emitters. While it is not empty, every tracer of the
process samples every segment it begins (its sampler, ``enabled`` flag and the
caller's ``Sampled`` decision are bypassed) and every closed segment or subsegment
goes to the top emitter instead of the tracer's own. Outside tests it stays empty,
and the cost on the emitting path is one truthiness test of a list.
Only :class:`fluoroscope.sdk.testing.TraceRecorder` pushes and pops it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from fluoroscope.sdk._emitters import Emitter

__all__ = ["RECORDING"]

RECORDING: Final[list[Emitter]] = []
