"""Local sampling rules (reference: xray-protocol §7.1, §7.2).

A rules document::

    {"version": 2,
     "rules": [{"description": "moves", "host": "*", "http_method": "*",
                "url_path": "/api/move/*", "fixed_target": 0, "rate": 0.05}],
     "default": {"fixed_target": 1, "rate": 0.1}}

Version 1 names the host matcher ``service_name``. Rules are tried in order and the
first match wins, else ``default``. A rule samples its first ``fixed_target``
requests in each wall-clock second (the reservoir), then a ``rate`` fraction of the
rest. Matchers use ``*`` (any run) and ``?`` (one character), case-insensitively; a
request attribute that is not known (None) matches any pattern. Without a document
the default is one request per second plus 5 %.

``Sampler.should_sample`` is pure computation: no I/O, never blocks (beyond a
microsecond lock), never raises; the clock and the random source are injectable.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol, runtime_checkable

from fluoroscope.sdk._errors import SamplingRulesError

__all__ = [
    "DEFAULT_RULES",
    "ConstantSampler",
    "Decision",
    "LocalSampler",
    "Sampler",
    "SamplingRequest",
]

DEFAULT_RULES: Final[Mapping[str, Any]] = {
    "version": 2,
    "default": {"fixed_target": 1, "rate": 0.05},
    "rules": [],
}


@dataclass(frozen=True, slots=True)
class SamplingRequest:
    """What a sampling decision may look at; unknown attributes are None."""

    service: str | None = None
    host: str | None = None
    method: str | None = None
    path: str | None = None
    service_type: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """A sampling decision and the name of the rule that made it (None for constants)."""

    sampled: bool
    rule: str | None = None

    def __bool__(self) -> bool:
        return self.sampled


@runtime_checkable
class Sampler(Protocol):
    """Decides whether a new trace is recorded.

    Called by the tracer on the request path for every new segment that has no
    upstream decision: must be fast, never block, never raise, and be thread-safe.
    """

    def should_sample(self, request: SamplingRequest) -> Decision: ...


class ConstantSampler:
    """Always (or never) samples; ``Tracer(sampling=False)`` uses ``ConstantSampler(True)``."""

    __slots__ = ("_decision",)

    def __init__(self, sampled: bool = True) -> None:
        self._decision = Decision(bool(sampled))

    def should_sample(self, request: SamplingRequest) -> Decision:
        return self._decision


_MATCH_ALL: Final = "*"


def _matcher(pattern: str) -> Callable[[str | None], bool]:
    if pattern == _MATCH_ALL:
        return lambda value: True
    regex = re.compile(
        "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
        re.IGNORECASE | re.DOTALL,
    )

    def match(value: str | None) -> bool:
        return value is None or regex.fullmatch(value) is not None

    return match


class _Rule:
    __slots__ = (
        "_lock",
        "_second",
        "_taken",
        "fixed_target",
        "host",
        "method",
        "name",
        "path",
        "rate",
    )

    def __init__(
        self,
        name: str,
        fixed_target: int,
        rate: float,
        host: str = _MATCH_ALL,
        method: str = _MATCH_ALL,
        path: str = _MATCH_ALL,
    ) -> None:
        self.name = name
        self.fixed_target = fixed_target
        self.rate = rate
        self.host = _matcher(host)
        self.method = _matcher(method)
        self.path = _matcher(path)
        self._lock = threading.Lock()
        self._second = -1
        self._taken = 0

    def matches(self, request: SamplingRequest) -> bool:
        return self.host(request.host) and self.method(request.method) and self.path(request.path)

    def decide(self, now: float, draw: Callable[[], float]) -> Decision:
        if self.fixed_target > 0:
            second = int(now)
            with self._lock:
                if second != self._second:
                    self._second = second
                    self._taken = 0
                if self._taken < self.fixed_target:
                    self._taken += 1
                    return Decision(True, self.name)
        return Decision(self.rate > 0 and draw() < self.rate, self.name)


def _number(rule: Mapping[str, Any], key: str, where: str, *, integer: bool) -> Any:
    value: Any = rule.get(key)
    ok = isinstance(value, int) if integer else isinstance(value, int | float)
    if not ok or isinstance(value, bool) or value < 0:
        kind = "a non-negative integer" if integer else "a non-negative number"
        raise SamplingRulesError(f"sampling rules: {where}.{key} must be {kind}, got {value!r}")
    if not integer and value > 1:
        raise SamplingRulesError(f"sampling rules: {where}.rate must be at most 1, got {value!r}")
    return value


def _pattern(rule: Mapping[str, Any], key: str, where: str) -> str:
    value = rule.get(key)
    if not isinstance(value, str):
        raise SamplingRulesError(f"sampling rules: {where} needs a string {key!r}")
    return value


def _parse_rules(document: Mapping[str, Any]) -> tuple[list[_Rule], _Rule]:
    if not isinstance(document, Mapping):
        raise SamplingRulesError("sampling rules must be a JSON object")
    version = document.get("version")
    if version not in (1, 2) or isinstance(version, bool):
        raise SamplingRulesError(f"sampling rules: version must be 1 or 2, got {version!r}")
    host_key = "host" if version == 2 else "service_name"
    default = document.get("default")
    if not isinstance(default, Mapping):
        raise SamplingRulesError("sampling rules: a 'default' object is required")
    stray = {"host", "service_name", "http_method", "url_path"} & set(default)
    if stray:
        raise SamplingRulesError(
            f"sampling rules: 'default' must not have matchers {sorted(stray)}"
        )
    default_rule = _Rule(
        "Default",
        _number(default, "fixed_target", "default", integer=True),
        _number(default, "rate", "default", integer=False),
    )
    raw_rules = document.get("rules", [])
    if not isinstance(raw_rules, list):
        raise SamplingRulesError("sampling rules: 'rules' must be an array")
    rules: list[_Rule] = []
    for index, raw in enumerate(raw_rules):
        where = f"rules[{index}]"
        if not isinstance(raw, Mapping):
            raise SamplingRulesError(f"sampling rules: {where} must be an object")
        description = raw.get("description")
        rules.append(
            _Rule(
                description if isinstance(description, str) and description else where,
                _number(raw, "fixed_target", where, integer=True),
                _number(raw, "rate", where, integer=False),
                host=_pattern(raw, host_key, where),
                method=_pattern(raw, "http_method", where),
                path=_pattern(raw, "url_path", where),
            )
        )
    return rules, default_rule


class LocalSampler:
    """Samples by a local rules document (§7.2); the default is 1/s + 5 %.

    ``rules`` is a mapping, a JSON string, or a path to a JSON file; it is checked
    at construction and :class:`SamplingRulesError` names what is wrong. ``clock``
    returns epoch seconds; ``random`` returns floats in [0, 1).
    """

    __slots__ = ("_clock", "_default", "_random", "_rules")

    def __init__(
        self,
        rules: Mapping[str, Any] | str | Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = random.random,
    ) -> None:
        if rules is None:
            document: Any = DEFAULT_RULES
        elif isinstance(rules, Mapping):
            document = rules
        else:
            text = str(rules)
            try:
                if isinstance(rules, Path) or not text.lstrip().startswith("{"):
                    text = Path(text).read_text(encoding="utf-8")
                document = json.loads(text)
            except (OSError, ValueError) as exc:
                raise SamplingRulesError(
                    f"cannot read sampling rules {rules!s:.200}: {exc}"
                ) from exc
        self._rules, self._default = _parse_rules(document)
        self._clock = clock
        self._random = random

    def should_sample(self, request: SamplingRequest) -> Decision:
        """The first matching rule's decision, else the default rule's."""
        now = self._clock()
        for rule in self._rules:
            if rule.matches(request):
                return rule.decide(now, self._random)
        return self._default.decide(now, self._random)
