"""Reversible attribute patches, for instrumentations.

``Patch(owner, "name", make_wrapper)`` replaces ``owner.name`` with
``make_wrapper(original)`` on :meth:`apply` and puts the original back on
:meth:`revert`, but only if the attribute is still the wrapper this patch installed
(so patches layered by other tools are not torn out). Both are idempotent; called
from setup code, never concurrently with each other for one patch; never raise for
an attribute that has gone missing.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

__all__ = ["Patch"]


class Patch:
    """One reversible replacement of ``owner.<name>``."""

    __slots__ = ("_original", "_wrapper", "make_wrapper", "name", "owner")

    def __init__(self, owner: Any, name: str, make_wrapper: Callable[[Any], Any]) -> None:
        self.owner = owner
        self.name = name
        self.make_wrapper = make_wrapper
        self._original: Any = None
        self._wrapper: Any = None

    @property
    def applied(self) -> bool:
        """True while this patch's wrapper is installed."""
        return self._wrapper is not None

    def apply(self) -> bool:
        """Install the wrapper; False when the attribute does not exist."""
        if self._wrapper is not None:
            return True
        original = getattr(self.owner, self.name, None)
        if original is None:
            return False
        wrapper = self.make_wrapper(original)
        if callable(original) and callable(wrapper) and not hasattr(wrapper, "__wrapped__"):
            with contextlib.suppress(AttributeError, TypeError):  # builtins lack some
                functools.update_wrapper(wrapper, original)
        setattr(self.owner, self.name, wrapper)
        self._original, self._wrapper = original, wrapper
        return True

    def revert(self) -> None:
        """Put the original back if the attribute still holds this patch's wrapper."""
        if self._wrapper is None:
            return
        if getattr(self.owner, self.name, None) is self._wrapper:
            setattr(self.owner, self.name, self._original)
        self._original = self._wrapper = None
