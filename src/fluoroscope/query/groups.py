"""Group management over the store, and group references inside filter expressions.

Blocking (store calls); thread-safe. Every filter a group stores has been parsed and
compiled first, so a stored group is always usable.
"""

from __future__ import annotations

from typing import Final

from fluoroscope.model.errors import InvalidRequest
from fluoroscope.model.groups import DEFAULT_GROUP, Group, check_group_name, name_from_arn
from fluoroscope.query.compile import Condition, GroupResolver, filter_condition
from fluoroscope.store.store import Store

__all__ = ["MAX_GROUPS", "GroupService"]

MAX_GROUPS: Final = 100


class GroupService:
    """CreateGroup, GetGroup, GetGroups, UpdateGroup, DeleteGroup and group resolution."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _name(self, name: object, arn: object) -> str:
        if name is not None:
            return check_group_name(name)
        if arn is not None:
            return name_from_arn(arn)
        raise InvalidRequest("GroupName or GroupARN is required")

    def _validate(self, expression: str | None) -> None:
        if expression is not None:
            filter_condition(expression, self.resolver())

    def create(self, name: object, expression: str | None, insights: bool, notify: bool) -> Group:
        checked = check_group_name(name)
        if checked == DEFAULT_GROUP:
            raise InvalidRequest("the group name Default is reserved")
        if self._store.groups.get(checked) is not None:
            raise InvalidRequest(f"a group named {checked!r} already exists")
        if len(self._store.groups.all()) >= MAX_GROUPS:
            raise InvalidRequest(f"at most {MAX_GROUPS} groups can exist")
        self._validate(expression)
        group = Group(checked, expression, insights, notify)
        self._store.groups.put(group)
        return group

    def get(self, name: object = None, arn: object = None) -> Group:
        checked = self._name(name, arn)
        if checked == DEFAULT_GROUP:
            return Group(DEFAULT_GROUP)
        group = self._store.groups.get(checked)
        if group is None:
            raise InvalidRequest(f"group {checked!r} does not exist")
        return group

    def all(self) -> list[Group]:
        return [Group(DEFAULT_GROUP), *self._store.groups.all()]

    def update(
        self,
        name: object,
        arn: object,
        expression: str | None,
        insights: bool | None,
        notify: bool | None,
    ) -> Group:
        current = self.get(name, arn)
        if current.name == DEFAULT_GROUP:
            raise InvalidRequest("the Default group cannot be changed")
        self._validate(expression)
        group = Group(
            current.name,
            expression if expression is not None else current.filter_expression,
            current.insights_enabled if insights is None else insights,
            current.notifications_enabled if notify is None else notify,
        )
        self._store.groups.put(group)
        return group

    def delete(self, name: object = None, arn: object = None) -> None:
        group = self.get(name, arn)
        if group.name == DEFAULT_GROUP:
            raise InvalidRequest("the Default group cannot be deleted")
        self._store.groups.delete(group.name)

    def resolver(self) -> GroupResolver:
        """Resolves ``group.name``/``group.arn`` inside filter expressions."""

        def resolve(attribute: str, value: str) -> str | None:
            group = self.get(name=value) if attribute == "name" else self.get(arn=value)
            return group.filter_expression

        return resolve

    def condition(self, expression: str) -> Condition:
        """A FilterExpression compiled with group references resolved."""
        return filter_condition(expression, self.resolver())
