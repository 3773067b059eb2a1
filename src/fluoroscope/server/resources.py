"""Tags, resource policies, encryption, indexing rules and the trace segment destination.

:class:`ApiSettings` keeps what these X-Ray operations set, in the store, and reports
it for what Fluoroscope does: every trace is indexed (``ActualSamplingPercentage`` is
always 100), segments are kept in Fluoroscope's own store (destination ``XRay``),
stored data is not encrypted with a KMS key, and resource policies are kept and listed
but not enforced (access is decided by API keys and signatures). Whatever cannot be
done here - KMS encryption, the ``CloudWatchLogs`` destination - is refused with an
error naming it, never pretended. Limits are X-Ray's: 200 tags per resource (keys
1-128, values 0-256 characters, ``aws:`` reserved), 5 resource policies of at most
5 KB each, policy revision ids checked.

Contract: blocking (store calls), so the server calls it from worker threads;
thread-safe (one lock around each read-modify-write).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Final

import orjson

from fluoroscope.model.errors import ApiError, InvalidRequest, ResourceNotFound
from fluoroscope.store.store import Store

__all__ = ["MAX_POLICIES", "MAX_POLICY_BYTES", "MAX_TAGS", "ApiSettings", "check_tags"]

MAX_TAGS: Final = 200
MAX_POLICIES: Final = 5
MAX_POLICY_BYTES: Final = 5 * 1024
_POLICY_NAME = re.compile(r"[\w+=,.@-]{1,128}")
_TAGS: Final = "tags"
_POLICY: Final = "policy"
_CONFIG: Final = "config"


def check_tags(tags: object) -> dict[str, str]:
    """A ``Tags`` list (``[{Key, Value}]``) checked, as a dict; ``{}`` for None."""
    if tags is None:
        return {}
    if not isinstance(tags, list):
        raise InvalidRequest("Tags must be a list of {Key, Value}")
    if len(tags) > MAX_TAGS:
        raise ApiError(
            f"at most {MAX_TAGS} tags per resource, got {len(tags)}", code="TooManyTagsException"
        )
    checked: dict[str, str] = {}
    for tag in tags:
        if not isinstance(tag, dict):
            raise InvalidRequest("each tag must be an object {Key, Value}")
        key, value = tag.get("Key"), tag.get("Value")
        checked[_tag_key(key)] = _tag_value(key, value)
    return checked


def _tag_key(key: object) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= 128:
        raise InvalidRequest(f"tag Key must be 1 to 128 characters, got {key!r:.40}")
    if key.lower().startswith("aws:"):
        raise InvalidRequest(f"tag Key {key!r:.40}: keys starting with aws: are reserved")
    return key


def _tag_value(key: object, value: object) -> str:
    if not isinstance(value, str) or len(value) > 256:
        raise InvalidRequest(f"tag Value of {key!r:.40} must be at most 256 characters")
    return value


class ApiSettings:
    """Tags by resource ARN and the account-wide settings (module docstring).

    ``exists(arn)`` says whether a taggable resource (a group or a sampling rule) with
    that ARN exists; the server passes one that asks the group and sampling services.
    """

    def __init__(
        self, store: Store, exists: Callable[[str], bool], clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._exists = exists
        self._clock = clock
        self._lock = threading.Lock()

    # -- tags --------------------------------------------------------------------------

    def _resource(self, arn: object) -> str:
        if not isinstance(arn, str) or not 1 <= len(arn) <= 1011:
            raise InvalidRequest("ResourceARN is required (1 to 1011 characters)")
        if not self._exists(arn):
            raise ResourceNotFound(f"no group or sampling rule has the ARN {arn!r:.120}")
        return arn

    def set_tags(self, arn: str, tags: dict[str, str]) -> None:
        """Replace the tags of ``arn`` (a resource just created; no existence check)."""
        with self._lock:
            if tags:
                self._store.settings.put(_TAGS, arn, tags)
            else:
                self._store.settings.delete(_TAGS, arn)

    def tag(self, arn: object, tags: object) -> None:
        with self._lock:
            resource = self._resource(arn)
            adding = check_tags(tags)
            current = dict(self._store.settings.get(_TAGS, resource) or {})
            current.update(adding)
            if len(current) > MAX_TAGS:
                raise ApiError(
                    f"the resource would have {len(current)} tags; at most {MAX_TAGS}",
                    code="TooManyTagsException",
                )
            self._store.settings.put(_TAGS, resource, current)

    def untag(self, arn: object, keys: object) -> None:
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise InvalidRequest("TagKeys is required and must be a list of strings")
        if len(keys) > MAX_TAGS:
            raise InvalidRequest(f"at most {MAX_TAGS} TagKeys per call")
        with self._lock:
            resource = self._resource(arn)
            current = dict(self._store.settings.get(_TAGS, resource) or {})
            for key in keys:
                current.pop(_tag_key(key), None)
            self._store.settings.put(_TAGS, resource, current)

    def tags(self, arn: object) -> list[dict[str, str]]:
        resource = self._resource(arn)
        current = self._store.settings.get(_TAGS, resource) or {}
        return [{"Key": k, "Value": v} for k, v in sorted(current.items())]

    # -- resource policies -------------------------------------------------------------

    def put_policy(self, body: dict[str, Any]) -> dict[str, Any]:
        name = _policy_name(body.get("PolicyName"))
        document = body.get("PolicyDocument")
        if not isinstance(document, str):
            raise InvalidRequest("PolicyDocument is required and must be a string")
        if len(document.encode()) > MAX_POLICY_BYTES:
            raise ApiError(
                f"the policy is {len(document.encode())} bytes; at most {MAX_POLICY_BYTES}",
                code="PolicySizeLimitExceededException",
            )
        _check_policy(document)
        revision = body.get("PolicyRevisionId")
        if revision is not None and not isinstance(revision, str):
            raise InvalidRequest("PolicyRevisionId must be a string")
        with self._lock:
            policies = self._store.settings.all(_POLICY)
            current = policies.get(name)
            if revision is not None:
                if current is None and revision != "0":
                    raise ApiError(
                        f"no policy named {name!r} exists to revise",
                        code="InvalidPolicyRevisionIdException",
                    )
                if current is not None and revision != current["PolicyRevisionId"]:
                    raise ApiError(
                        f"PolicyRevisionId {revision!r:.40} is not the latest revision of {name!r}",
                        code="InvalidPolicyRevisionIdException",
                    )
            if current is None and len(policies) >= MAX_POLICIES:
                raise ApiError(
                    f"at most {MAX_POLICIES} resource policies can exist",
                    code="PolicyCountLimitExceededException",
                )
            policy = {
                "PolicyName": name,
                "PolicyDocument": document,
                "PolicyRevisionId": uuid.uuid4().hex,
                "LastUpdatedTime": round(self._clock(), 3),
            }
            self._store.settings.put(_POLICY, name, policy)
            return policy

    def policies(self) -> list[dict[str, Any]]:
        return list(self._store.settings.all(_POLICY).values())

    def delete_policy(self, name: object, revision: object) -> None:
        checked = _policy_name(name)
        with self._lock:
            current = self._store.settings.get(_POLICY, checked)
            if current is None:
                if revision is not None:
                    raise ApiError(
                        f"no policy named {checked!r} exists",
                        code="InvalidPolicyRevisionIdException",
                    )
                return  # as X-Ray: deleting what is not there succeeds
            if revision is not None and revision != current["PolicyRevisionId"]:
                raise ApiError(
                    f"PolicyRevisionId {revision!r:.40} is not the latest revision of {checked!r}",
                    code="InvalidPolicyRevisionIdException",
                )
            self._store.settings.delete(_POLICY, checked)

    # -- encryption, indexing, destination -----------------------------------------------

    def encryption(self) -> dict[str, Any]:
        return {"Type": "NONE", "Status": "ACTIVE"}

    def put_encryption(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = body.get("Type")
        if kind not in ("NONE", "KMS"):
            raise InvalidRequest(f"Type must be NONE or KMS, got {kind!r:.40}")
        if kind == "KMS":
            raise InvalidRequest(
                "PutEncryptionConfig: Type KMS is not available in Fluoroscope, which has no "
                "KMS keys; its store is encrypted (or not) by the disk it lives on. Type NONE "
                "is the only setting."
            )
        if body.get("KeyId") is not None:
            raise InvalidRequest("KeyId is only meaningful with Type KMS")
        with self._lock:
            self._store.settings.put(_CONFIG, "encryption", {"Type": "NONE"})
        return self.encryption()

    def indexing_rules(self) -> list[dict[str, Any]]:
        stored = self._store.settings.get(_CONFIG, "indexing") or {}
        desired = float(stored.get("DesiredSamplingPercentage", 100.0))
        return [
            {
                "Name": "Default",
                "ModifiedAt": float(stored.get("ModifiedAt", 0.0)),
                "Rule": {
                    "Probabilistic": {
                        "DesiredSamplingPercentage": desired,
                        "ActualSamplingPercentage": 100.0,  # every trace is indexed here
                    }
                },
            }
        ]

    def update_indexing_rule(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("Name")
        if not isinstance(name, str):
            raise InvalidRequest("Name is required")
        if name != "Default":
            raise ResourceNotFound(f"no indexing rule named {name!r:.40}; there is only Default")
        rule = body.get("Rule")
        probabilistic = rule.get("Probabilistic") if isinstance(rule, dict) else None
        if not isinstance(probabilistic, dict):
            raise InvalidRequest("Rule must be {Probabilistic: {DesiredSamplingPercentage}}")
        desired = probabilistic.get("DesiredSamplingPercentage")
        if not isinstance(desired, int | float) or isinstance(desired, bool):
            raise InvalidRequest("DesiredSamplingPercentage is required and must be a number")
        if not 0 <= desired <= 100:
            raise InvalidRequest(f"DesiredSamplingPercentage must be 0 to 100, got {desired}")
        with self._lock:
            self._store.settings.put(
                _CONFIG,
                "indexing",
                {
                    "DesiredSamplingPercentage": float(desired),
                    "ModifiedAt": round(self._clock(), 3),
                },
            )
        return self.indexing_rules()[0]

    def destination(self) -> dict[str, Any]:
        return {"Destination": "XRay", "Status": "ACTIVE"}

    def update_destination(self, body: dict[str, Any]) -> dict[str, Any]:
        destination = body.get("Destination", "XRay")
        if destination not in ("XRay", "CloudWatchLogs"):
            raise InvalidRequest(
                f"Destination must be XRay or CloudWatchLogs, got {destination!r:.40}"
            )
        if destination == "CloudWatchLogs":
            raise InvalidRequest(
                "UpdateTraceSegmentDestination: the CloudWatchLogs destination (Transaction "
                "Search) is not available in Fluoroscope; segments are kept in its own store "
                "(destination XRay)"
            )
        with self._lock:
            self._store.settings.put(_CONFIG, "destination", {"Destination": "XRay"})
        return self.destination()


def _policy_name(name: object) -> str:
    if not isinstance(name, str) or _POLICY_NAME.fullmatch(name) is None:
        raise InvalidRequest(
            f"PolicyName must be 1 to 128 of letters, digits and +=,.@_-, got {name!r:.40}"
        )
    return name


def _check_policy(document: str) -> None:
    """X-Ray's shape of an IAM policy: a JSON object with ``Version`` and a non-empty
    ``Statement`` whose entries each name an ``Effect`` and an ``Action``."""
    try:
        policy = orjson.loads(document)
    except orjson.JSONDecodeError as exc:
        raise ApiError(
            f"the policy is not valid JSON: {exc}", code="MalformedPolicyDocumentException"
        ) from None
    if not isinstance(policy, dict) or "Version" not in policy:
        raise ApiError(
            "the policy must be a JSON object with a Version",
            code="MalformedPolicyDocumentException",
        )
    statements = policy.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        raise ApiError(
            "the policy must hold at least one Statement", code="MalformedPolicyDocumentException"
        )
    for statement in statements:
        if (
            not isinstance(statement, dict)
            or statement.get("Effect") not in ("Allow", "Deny")
            or ("Action" not in statement and "NotAction" not in statement)
        ):
            raise ApiError(
                "each Statement needs an Effect (Allow or Deny) and an Action",
                code="MalformedPolicyDocumentException",
            )
