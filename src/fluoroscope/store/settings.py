"""Sampling rules and the API's small settings, persisted in the store.

Tables ``sampling_rules`` (one row version per change of a rule) and ``api_settings``
(JSON values by ``(kind, key)``: tags by resource ARN, resource policies, encryption,
indexing rules, trace segment destination). Contract: blocking, thread-safe (the
engine serializes statements). Reads collapse versions; a deletion is a newer version
marked deleted, so history never resurfaces. Versions are nanosecond clock readings,
made strictly increasing within the process.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson

from fluoroscope.model.sampling import SamplingRule
from fluoroscope.store.transport import Transport

__all__ = ["SamplingRuleStore", "SettingsStore"]

_last_version = 0
_version_lock = threading.Lock()


def _version() -> int:
    global _last_version
    with _version_lock:
        _last_version = max(_last_version + 1, time.time_ns())
        return _last_version


def _rule_to_json(rule: SamplingRule) -> str:
    return orjson.dumps(
        {**rule.to_api(), "CreatedAt": rule.created_at, "ModifiedAt": rule.modified_at}
    ).decode()


def _rule_from_json(text: str) -> SamplingRule:
    d = orjson.loads(text)
    return SamplingRule(
        name=d["RuleName"],
        priority=int(d["Priority"]),
        fixed_rate=float(d["FixedRate"]),
        reservoir_size=int(d["ReservoirSize"]),
        resource_arn=d["ResourceARN"],
        service_name=d["ServiceName"],
        service_type=d["ServiceType"],
        host=d["Host"],
        http_method=d["HTTPMethod"],
        url_path=d["URLPath"],
        version=int(d["Version"]),
        attributes=dict(d.get("Attributes") or {}),
        created_at=float(d["CreatedAt"]),
        modified_at=float(d["ModifiedAt"]),
    )


class SamplingRuleStore:
    """Create, read, update and delete sampling rules (``Default`` included once edited)."""

    def __init__(self, transport: Transport, db: str) -> None:
        self._t = transport
        self._db = db

    def put(self, rule: SamplingRule) -> None:
        """Store ``rule`` as the newest version of its name."""
        self._write(rule.name, _rule_to_json(rule), deleted=False)

    def delete(self, name: str) -> None:
        """Mark the rule ``name`` deleted."""
        self._write(name, "", deleted=True)

    def _write(self, name: str, rule: str, *, deleted: bool) -> None:
        self._t.execute(
            f"INSERT INTO {self._db}.sampling_rules (name, rule, deleted, version) VALUES "
            "({name:String}, {rule:String}, {deleted:UInt8}, {version:UInt64})",
            {"name": name, "rule": rule, "deleted": int(deleted), "version": _version()},
        )

    def all(self) -> list[SamplingRule]:
        """Every stored rule, by name."""
        rows = self._t.query_arrow(
            f"SELECT rule FROM {self._db}.sampling_rules FINAL WHERE deleted = 0 ORDER BY name"
        ).to_pylist()
        return [_rule_from_json(r["rule"]) for r in rows]

    def last_change(self) -> float:
        """Epoch seconds of the latest change (deletions included); 0 when none."""
        table = self._t.query_arrow(f"SELECT max(version) FROM {self._db}.sampling_rules")
        value = table.column(0)[0].as_py() if table.num_rows else 0
        return int(value or 0) / 1e9


class SettingsStore:
    """JSON values by ``(kind, key)``."""

    def __init__(self, transport: Transport, db: str) -> None:
        self._t = transport
        self._db = db

    def put(self, kind: str, key: str, value: Any) -> None:
        """Store ``value`` (anything JSON can hold) as the newest version of its key."""
        self._write(kind, key, orjson.dumps(value).decode(), deleted=False)

    def delete(self, kind: str, key: str) -> None:
        """Mark ``(kind, key)`` deleted."""
        self._write(kind, key, "", deleted=True)

    def _write(self, kind: str, key: str, value: str, *, deleted: bool) -> None:
        self._t.execute(
            f"INSERT INTO {self._db}.api_settings (kind, key, value, deleted, version) VALUES "
            "({kind:String}, {key:String}, {value:String}, {deleted:UInt8}, {version:UInt64})",
            {
                "kind": kind,
                "key": key,
                "value": value,
                "deleted": int(deleted),
                "version": _version(),
            },
        )

    def get(self, kind: str, key: str) -> Any:
        """The value of ``(kind, key)``, or None."""
        found = self.all(kind, key)
        return found.get(key)

    def all(self, kind: str, key: str | None = None) -> dict[str, Any]:
        """Every live value of ``kind`` (or just ``key``), by key."""
        extra = "AND key = {key:String}" if key is not None else ""
        rows = self._t.query_arrow(
            f"SELECT key, value FROM {self._db}.api_settings FINAL "
            f"WHERE kind = {{kind:String}} AND deleted = 0 {extra} ORDER BY key",
            {"kind": kind, "key": key or ""},
        ).to_pylist()
        return {r["key"]: orjson.loads(r["value"]) for r in rows}
