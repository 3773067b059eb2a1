"""Centralized sampling rules as X-Ray defines them (reference §4.3, §7.1, §7.3).

Pure data and validation, no I/O. :func:`rule_from_api` checks a ``SamplingRule`` of
CreateSamplingRule field by field with the model's bounds (name 1-32 characters,
priority 1-9999, fixed rate 0-1, reservoir 0 to 2^31-1, matcher lengths, version 1, at
most 5 attributes of 1-32 characters), :func:`apply_update` does the same for
UpdateSamplingRule's subset of fields. The ``Default`` rule always exists with
priority 10000 and every matcher ``*``; only its fixed rate and reservoir change.

Every refusal is an :class:`~fluoroscope.model.errors.InvalidRequest` whose message
starts with the offending field's name (the console shows it at that field).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from fluoroscope.model.errors import InvalidRequest

__all__ = [
    "ARN_PREFIX",
    "DEFAULT_RULE",
    "DEFAULT_RULE_NAME",
    "MATCHERS",
    "MAX_RESERVOIR",
    "SamplingRule",
    "apply_update",
    "check_rule_name",
    "name_from_rule_arn",
    "proposed_rules",
    "rule_arn",
    "rule_from_api",
    "rule_order",
    "wildcard_match",
]

ARN_PREFIX: Final = "arn:aws:xray:us-east-1:000000000000:sampling-rule/"
DEFAULT_RULE_NAME: Final = "Default"
DEFAULT_PRIORITY: Final = 10000
MAX_RESERVOIR: Final = 2**31 - 1
_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")

MATCHERS: Final[dict[str, int]] = {
    "ResourceARN": 500,
    "ServiceName": 64,
    "ServiceType": 64,
    "Host": 64,
    "HTTPMethod": 10,
    "URLPath": 128,
}
"""The rule's matchers (API field name -> longest value)."""

_REQUIRED: Final = ("Priority", "FixedRate", "ReservoirSize", *MATCHERS, "Version")


@dataclass(frozen=True, slots=True)
class SamplingRule:
    """One rule; times are epoch seconds."""

    name: str
    priority: int
    fixed_rate: float
    reservoir_size: int
    resource_arn: str = "*"
    service_name: str = "*"
    service_type: str = "*"
    host: str = "*"
    http_method: str = "*"
    url_path: str = "*"
    version: int = 1
    attributes: dict[str, str] = field(default_factory=dict)
    created_at: float = 0.0
    modified_at: float = 0.0

    @property
    def arn(self) -> str:
        return rule_arn(self.name)

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_RULE_NAME

    def matchers(self) -> dict[str, str]:
        """The matchers by API field name."""
        return {
            "ResourceARN": self.resource_arn,
            "ServiceName": self.service_name,
            "ServiceType": self.service_type,
            "Host": self.host,
            "HTTPMethod": self.http_method,
            "URLPath": self.url_path,
        }

    def to_api(self) -> dict[str, Any]:
        """The ``SamplingRule`` shape with every classic field and nothing else."""
        return {
            "RuleName": self.name,
            "RuleARN": self.arn,
            **self.matchers(),
            "Priority": self.priority,
            "FixedRate": self.fixed_rate,
            "ReservoirSize": self.reservoir_size,
            "Version": self.version,
            "Attributes": dict(self.attributes),
        }

    def record(self) -> dict[str, Any]:
        """The ``SamplingRuleRecord`` shape."""
        return {
            "SamplingRule": self.to_api(),
            "CreatedAt": self.created_at,
            "ModifiedAt": self.modified_at,
        }


DEFAULT_RULE: Final = SamplingRule(DEFAULT_RULE_NAME, DEFAULT_PRIORITY, 0.05, 1)


def rule_arn(name: str) -> str:
    """The ARN this server gives the rule ``name``."""
    return f"{ARN_PREFIX}{name}"


def rule_order(rule: SamplingRule) -> tuple[int, str]:
    """The order in which rules are tried: priority, then name (as the SDKs sort)."""
    return (rule.priority, rule.name)


def check_rule_name(name: object) -> str:
    """``name`` if it is a valid rule name (1-32 letters, digits, ``-`` and ``_``)."""
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise InvalidRequest(
            f"RuleName must be 1 to 32 letters, digits, '-' or '_', got {name!r:.40}"
        )
    return name


def name_from_rule_arn(arn: object) -> str:
    """The rule name inside one of this server's sampling-rule ARNs."""
    if not isinstance(arn, str) or not arn.startswith(ARN_PREFIX):
        raise InvalidRequest(f"RuleARN is not a sampling rule ARN of this server: {arn!r:.80}")
    return check_rule_name(arn[len(ARN_PREFIX) :])


def _int(body: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = body[key]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRequest(f"{key} must be a whole number, got {value!r:.40}")
    if not low <= value <= high:
        raise InvalidRequest(f"{key} must be between {low} and {high}, got {value}")
    return value


def _rate(body: Mapping[str, Any], key: str) -> float:
    value = body[key]
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise InvalidRequest(f"{key} must be a number between 0 and 1, got {value!r:.40}")
    if not 0 <= value <= 1:
        raise InvalidRequest(f"{key} must be between 0 and 1, got {value}")
    return float(value)


def _text(body: Mapping[str, Any], key: str, longest: int) -> str:
    value = body[key]
    if not isinstance(value, str):
        raise InvalidRequest(f"{key} must be a string, got {value!r:.40}")
    if len(value) > longest:
        raise InvalidRequest(f"{key} must be at most {longest} characters, got {len(value)}")
    return value


def _attributes(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidRequest("Attributes must be an object of strings")
    if len(value) > 5:
        raise InvalidRequest(f"Attributes holds at most 5 entries, got {len(value)}")
    checked: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 32:
            raise InvalidRequest(f"Attributes keys must be 1 to 32 characters, got {key!r:.40}")
        if not isinstance(item, str) or not 1 <= len(item) <= 32:
            raise InvalidRequest(
                f"Attributes values must be 1 to 32 characters, got {item!r:.40} for {key!r}"
            )
        checked[key] = item
    return checked


def _fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The rule fields present in ``body``, checked, as dataclass keyword arguments."""
    found: dict[str, Any] = {}
    if body.get("Priority") is not None:
        found["priority"] = _int(body, "Priority", 1, 9999)
    if body.get("FixedRate") is not None:
        found["fixed_rate"] = _rate(body, "FixedRate")
    if body.get("ReservoirSize") is not None:
        found["reservoir_size"] = _int(body, "ReservoirSize", 0, MAX_RESERVOIR)
    for key, longest in MATCHERS.items():
        if body.get(key) is not None:
            found[_SNAKE[key]] = _text(body, key, longest)
    if body.get("Attributes") is not None:
        found["attributes"] = _attributes(body["Attributes"])
    if body.get("SamplingRateBoost") is not None:
        raise InvalidRequest("SamplingRateBoost: sampling rate boosts are not supported here")
    return found


_SNAKE: Final = {
    "ResourceARN": "resource_arn",
    "ServiceName": "service_name",
    "ServiceType": "service_type",
    "Host": "host",
    "HTTPMethod": "http_method",
    "URLPath": "url_path",
}


def rule_from_api(body: object, now: float) -> SamplingRule:
    """A new rule from CreateSamplingRule's ``SamplingRule``, checked."""
    if not isinstance(body, Mapping):
        raise InvalidRequest("SamplingRule is required and must be an object")
    name = check_rule_name(body.get("RuleName"))
    if name == DEFAULT_RULE_NAME:
        raise InvalidRequest("RuleName Default is reserved for the default rule")
    missing = [key for key in _REQUIRED if body.get(key) is None]
    if missing:
        raise InvalidRequest(f"{missing[0]} is required (missing: {', '.join(missing)})")
    version = _int(body, "Version", 1, MAX_RESERVOIR)
    if version != 1:
        raise InvalidRequest(f"Version must be 1, the only rule version, got {version}")
    if body.get("RuleARN") is not None and body["RuleARN"] != rule_arn(name):
        raise InvalidRequest("RuleARN is assigned by the server; leave it out")
    return SamplingRule(name=name, created_at=now, modified_at=now, **_fields(body))


def apply_update(rule: SamplingRule, update: Mapping[str, Any], now: float) -> SamplingRule:
    """``rule`` with UpdateSamplingRule's fields applied, checked."""
    if update.get("Version") is not None:
        raise InvalidRequest("Version cannot be changed")
    if rule.is_default and update.get("Priority") == DEFAULT_PRIORITY:
        update = {k: v for k, v in update.items() if k != "Priority"}  # its own, unchanged
    changes = _fields(update)
    if rule.is_default:
        fixed = {"fixed_rate", "reservoir_size"}
        other = sorted(k for k, v in changes.items() if k not in fixed and v != getattr(rule, k))
        if other:
            raise InvalidRequest(
                "the Default rule's matchers and priority cannot be changed, only its "
                f"FixedRate and ReservoirSize (got {', '.join(other)})"
            )
    return replace(rule, modified_at=now, **changes)


def wildcard_match(pattern: str, value: str) -> bool:
    """True when ``value`` matches ``pattern`` as the SDKs match: ``*`` any run of
    characters, ``?`` one character, case-insensitive, the whole value."""
    if pattern == "*":
        return True
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


def proposed_rules(items: object, default: SamplingRule, now: float) -> list[SamplingRule]:
    """A proposed rule set (a list of ``SamplingRule`` objects, each checked as
    CreateSamplingRule checks one; a ``Default`` entry changes only the Default rule's
    fixed rate and reservoir), in the order they are tried, ``Default`` last (the given
    ``default`` when the set has none)."""
    if not isinstance(items, list):
        raise InvalidRequest("Rules must be a list of SamplingRule objects")
    rules: dict[str, SamplingRule] = {}
    fallback = default
    for index, item in enumerate(items):
        try:
            if isinstance(item, Mapping) and item.get("RuleName") == DEFAULT_RULE_NAME:
                fallback = apply_update(default, {k: v for k, v in item.items()
                                                  if k not in ("RuleName", "RuleARN", "Version")},
                                        now)  # fmt: skip
                continue
            rule = rule_from_api(item, now)
        except InvalidRequest as exc:
            raise InvalidRequest(f"Rules[{index}]: {exc}") from None
        if rule.name in rules:
            raise InvalidRequest(f"Rules[{index}]: RuleName {rule.name!r} appears twice")
        rules[rule.name] = rule
    return [*sorted(rules.values(), key=rule_order), fallback]
