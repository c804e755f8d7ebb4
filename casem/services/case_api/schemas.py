"""Request documents shared by every resource: JSON:API `data` wrappers with strict members.

Every resource object and every relationship's resource identifier declares the `type` it accepts as a
`Literal`; a wrong one is a 400 in Datadog's words (`got type "userx" expected one of "user"`, see
casem/services/case_api/jsonapi.py), never a lookup that fails later with a misleading 404.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown members are rejected with a pointer to them, so a typo never silently does nothing."""

    model_config = ConfigDict(extra="forbid", strict=False)


# -- resource identifiers of relationships (Datadog's *RelationshipData, *Data of RelationshipTo*) -------------


class ProjectIdentifier(Strict):
    id: str
    type: Literal["project"]


class UserIdentifier(Strict):
    """NullableUserRelationshipData: a case's assignee, creator, modifier."""

    id: str
    type: Literal["user"]


class UsersIdentifier(Strict):
    """RelationshipToUserData: the identity API's users (type `users`, plural, as Datadog has it)."""

    id: str
    type: Literal["users"]


class RoleIdentifier(Strict):
    id: str
    type: Literal["roles"]


class ProjectRelationship(Strict):
    data: ProjectIdentifier | None = None


class NullableUserRelationship(Strict):
    data: UserIdentifier | None


def dump_set(model: BaseModel) -> dict[str, Any]:
    """Only the members the client actually sent (PATCH semantics)."""
    return model.model_dump(exclude_unset=True)
