"""Fields AWS services put on their segments that the public SDK has no setter for.

The segments of API Gateway and Lambda carry ``resource_arn`` (§2.2) and the
AWS-reserved annotation keys ``aws:api_id`` / ``aws:api_stage`` (§8.3), which
:meth:`Entity.put_annotation` refuses by design (keys are letters, digits and ``_``
for user code). The services emulated here write them anyway, into the entity's
field map, the same map the SDK's setters fill. Unsampled stand-ins are left alone.
Called from the thread that owns the entity, before it is closed; never raises.
"""

from __future__ import annotations

from typing import Any

from fluoroscope.sdk import Entity

__all__ = ["stamp_annotation", "stamp_resource_arn"]


def _fields(entity: Entity) -> dict[str, Any] | None:
    if not entity.sampled:
        return None
    fields = getattr(entity, "_fields", None)
    return fields() if callable(fields) else None


def stamp_resource_arn(entity: Entity, arn: str) -> None:
    """Set the segment's ``resource_arn``."""
    fields = _fields(entity)
    if fields is not None:
        fields["resource_arn"] = arn


def stamp_annotation(entity: Entity, key: str, value: str | int | float | bool) -> None:
    """Set an annotation whose key the SDK refuses (``aws:api_id``)."""
    fields = _fields(entity)
    if fields is not None:
        fields.setdefault("annotations", {})[key] = value
