"""Groups: a name for a filter expression (X-Ray CreateGroup and friends).

Pure data. ``Default`` is reserved: it always exists, has no filter, and cannot be
created, changed or deleted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from fluoroscope.model.errors import InvalidRequest

__all__ = ["DEFAULT_GROUP", "Group", "check_group_name", "group_arn", "name_from_arn"]

DEFAULT_GROUP: Final = "Default"
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,32}")
_ARN_PREFIX: Final = "arn:aws:xray:us-east-1:000000000000:group/"


@dataclass(frozen=True, slots=True)
class Group:
    """A group and its settings."""

    name: str
    filter_expression: str | None = None
    insights_enabled: bool = False
    notifications_enabled: bool = False

    @property
    def arn(self) -> str:
        return group_arn(self.name)


def group_arn(name: str) -> str:
    """The ARN this server gives the group ``name``."""
    return f"{_ARN_PREFIX}{name}"


def check_group_name(name: object) -> str:
    """``name`` if it is a valid group name (1-32 letters, digits, ``_ . -``)."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise InvalidRequest(
            f"GroupName must be 1-32 letters, digits, '_', '.' or '-', got {name!r:.40}"
        )
    return name


def name_from_arn(arn: object) -> str:
    """The group name inside one of this server's group ARNs."""
    if not isinstance(arn, str) or not arn.startswith(_ARN_PREFIX):
        raise InvalidRequest(f"GroupARN is not a group ARN of this server: {arn!r:.80}")
    return check_group_name(arn[len(_ARN_PREFIX) :])
