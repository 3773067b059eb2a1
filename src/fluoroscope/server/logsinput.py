"""CloudWatch Logs request members: their validation, and the API's errors.

Contract: :class:`Members` reads one request body (a JSON object already parsed) and
checks each member against the constraints of the CloudWatch Logs service model (type,
required, length, range, pattern, enum), raising :class:`LogsError` with the
documented ``__type`` on the first member that breaks one. Messages follow AWS's
wording (``1 validation error detected: Value 'x' at 'limit' failed to satisfy
constraint: Member must have value less than or equal to 50``), so a client that shows
them shows what it would show against AWS. Nothing here touches the store.

Names: a log group's name is 1-512 characters of ``[.\\-_/#A-Za-z0-9]`` not starting
with ``aws/``; a stream's 1-512 characters without ``:`` or ``*``; a group identifier is
a name or the group's ARN (``arn:aws:logs:REGION:ACCOUNT:log-group:NAME`` with or
without a trailing ``:*``), of which the name is used.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from fluoroscope.model.errors import FluoroscopeError

__all__ = [
    "ACCOUNT_ID",
    "GROUP_NAME",
    "GROUP_NAME_PATTERN",
    "LOG_GROUP_CLASSES",
    "REGION",
    "RETENTION_DAYS",
    "STREAM_NAME",
    "LogsError",
    "Members",
    "group_arn",
    "invalid",
    "stream_arn",
]

ACCOUNT_ID: Final = "000000000000"  # the account every resource of this server belongs to
REGION: Final = "us-east-1"

GROUP_NAME: Final = re.compile(r"[.\-_/#A-Za-z0-9]+")
GROUP_NAME_PATTERN: Final = re.compile(r"[.\-_/#A-Za-z0-9]*")
STREAM_NAME: Final = re.compile(r"[^:*]*")
GROUP_IDENTIFIER: Final = re.compile(r"[\w#+=/:,.@-]*")
_ARN: Final = re.compile(r"arn:aws[\w-]*:logs:[\w-]*:\d*:log-group:([^:]+)(?::\*)?")

RETENTION_DAYS: Final = frozenset(
    (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557,
     2922, 3288, 3653)
)  # fmt: skip
LOG_GROUP_CLASSES: Final = ("STANDARD", "INFREQUENT_ACCESS", "DELIVERY")
_MAX_SHOWN: Final = 60  # characters of a bad value quoted back in a message


class LogsError(FluoroscopeError):
    """An answer in the CloudWatch Logs error shape: ``code`` is the ``__type``,
    ``status`` the HTTP status, ``extra`` more members of the error body (for
    ``MalformedQueryException``'s ``queryCompileError``)."""

    def __init__(
        self, code: str, message: str, status: int = 400, extra: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.extra = dict(extra or {})


def invalid(message: str) -> LogsError:
    """An ``InvalidParameterException``."""
    return LogsError("InvalidParameterException", message)


def group_arn(name: str, *, star: bool = True) -> str:
    """The ARN of the log group ``name``: with the trailing ``:*`` (``arn``) or without
    (``logGroupArn``)."""
    arn = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}"
    return f"{arn}:*" if star else arn


def stream_arn(group: str, stream: str) -> str:
    """The ARN of the log stream ``stream`` of ``group``."""
    return f"{group_arn(group, star=False)}:log-stream:{stream}"


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def _violation(name: str, value: object, constraint: str) -> LogsError:
    return invalid(
        f"1 validation error detected: Value '{_shown(value)}' at '{name}' failed to "
        f"satisfy constraint: {constraint}"
    )


class Members:
    """The members of one request body, read and checked one at a time."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        self.body = body

    def present(self, name: str) -> bool:
        return self.body.get(name) is not None

    def _get(self, name: str, required: bool) -> Any:
        value = self.body.get(name)
        if value is None and required:
            raise invalid(
                f"1 validation error detected: Value null at '{name}' failed to satisfy "
                "constraint: Member must not be null"
            )
        return value

    def string(
        self,
        name: str,
        *,
        required: bool = False,
        min_len: int = 0,
        max_len: int | None = None,
        pattern: re.Pattern[str] | None = None,
    ) -> str | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise _violation(name, value, "Member must be a string")
        if len(value) < min_len:
            raise _violation(
                name, value, f"Member must have length greater than or equal to {min_len}"
            )
        if max_len is not None and len(value) > max_len:
            raise _violation(
                name, value, f"Member must have length less than or equal to {max_len}"
            )
        if pattern is not None and not pattern.fullmatch(value):
            raise _violation(
                name,
                value,
                f"Member must satisfy regular expression pattern: {pattern.pattern}",
            )
        return value

    def integer(
        self,
        name: str,
        *,
        required: bool = False,
        minimum: int | None = None,
        maximum: int | None = None,
    ) -> int | None:
        value = self._get(name, required)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _violation(name, value, "Member must be an integer")
        if minimum is not None and value < minimum:
            raise _violation(
                name, value, f"Member must have value greater than or equal to {minimum}"
            )
        if maximum is not None and value > maximum:
            raise _violation(name, value, f"Member must have value less than or equal to {maximum}")
        return value

    def timestamp(self, name: str, *, required: bool = False) -> int | None:
        """A ``Timestamp`` member: a long, at least 0 (epoch milliseconds, or seconds for
        StartQuery's times)."""
        return self.integer(name, required=required, minimum=0, maximum=(1 << 63) - 1)

    def boolean(self, name: str) -> bool | None:
        value = self._get(name, False)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise _violation(name, value, "Member must be a boolean")
        return value

    def enum(self, name: str, values: Sequence[str], *, required: bool = False) -> str | None:
        value = self.string(name, required=required)
        if value is not None and value not in values:
            raise _violation(
                name, value, f"Member must satisfy enum value set: [{', '.join(values)}]"
            )
        return value

    def list_of(
        self, name: str, *, required: bool = False, min_items: int = 0, max_items: int | None = None
    ) -> list[Any] | None:
        value = self._get(name, required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise _violation(name, value, "Member must be a list")
        if len(value) < min_items:
            raise _violation(
                name,
                f"[{len(value)} items]",
                f"Member must have length greater than or equal to {min_items}",
            )
        if max_items is not None and len(value) > max_items:
            raise _violation(
                name,
                f"[{len(value)} items]",
                f"Member must have length less than or equal to {max_items}",
            )
        return value

    def strings(
        self,
        name: str,
        *,
        min_items: int = 0,
        max_items: int | None = None,
        min_len: int = 0,
        max_len: int | None = None,
        pattern: re.Pattern[str] | None = None,
    ) -> list[str] | None:
        values = self.list_of(name, min_items=min_items, max_items=max_items)
        if values is None:
            return None
        item = Members({})
        checked: list[str] = []
        for index, value in enumerate(values):
            item.body = {f"{name}.{index + 1}.member": value}
            text = item.string(
                f"{name}.{index + 1}.member", min_len=min_len, max_len=max_len, pattern=pattern
            )
            if text is None:
                raise _violation(f"{name}.{index + 1}.member", None, "Member must not be null")
            checked.append(text)
        return checked

    def mapping(
        self, name: str, *, min_items: int = 0, max_items: int | None = None
    ) -> dict[str, Any] | None:
        value = self._get(name, False)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _violation(name, value, "Member must be a map")
        if len(value) < min_items or (max_items is not None and len(value) > max_items):
            raise _violation(
                name,
                f"{{{len(value)} entries}}",
                f"Member must have between {min_items} and {max_items} entries",
            )
        return value

    # -- the API's shared members ----------------------------------------------------

    def group_name(self, name: str = "logGroupName", *, required: bool = True) -> str | None:
        value = self.string(name, required=required, min_len=1, max_len=512, pattern=GROUP_NAME)
        return value

    def stream_name(self, name: str = "logStreamName", *, required: bool = True) -> str | None:
        return self.string(name, required=required, min_len=1, max_len=512, pattern=STREAM_NAME)

    def group(self) -> str:
        """The log group named by exactly one of ``logGroupName`` and
        ``logGroupIdentifier`` (a name or an ARN)."""
        name = self.group_name(required=False)
        identifier = self.string(
            "logGroupIdentifier", min_len=1, max_len=2048, pattern=GROUP_IDENTIFIER
        )
        if name is not None and identifier is not None:
            raise invalid("LogGroupName and LogGroupIdentifier are mutually exclusive parameters.")
        if name is not None:
            return name
        if identifier is None:
            raise invalid("Either LogGroupName or LogGroupIdentifier must be specified.")
        return identifier_name(identifier)

    def token(self, name: str = "nextToken") -> str | None:
        return self.string(name, min_len=1, max_len=4096)


def identifier_name(identifier: str) -> str:
    """The group name a ``logGroupIdentifier`` (a name or an ARN) designates."""
    match = _ARN.fullmatch(identifier)
    name = match.group(1) if match else identifier
    if not GROUP_NAME.fullmatch(name) or len(name) > 512:
        raise invalid(f"Invalid log group identifier: {_shown(identifier)}")
    return name


def check_new_group_name(name: str) -> None:
    """A name a group may be created with: not in the ``aws/`` namespace."""
    if name.startswith("aws/"):
        raise invalid("Log group names cannot start with 'aws/'; that namespace is reserved.")
