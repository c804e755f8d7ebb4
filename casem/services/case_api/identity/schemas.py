from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Strict


class UserCreateAttributes(Strict):
    email: Any
    name: Any = None
    title: Any = None


class UserCreateData(Strict):
    type: Literal["users"]
    attributes: UserCreateAttributes
    # Roles are not modelled in casem: accepted so Datadog's request shape works, and not stored.
    relationships: dict[str, Any] | None = None


class UserCreateRequest(Strict):
    data: UserCreateData


class TeamCreateAttributes(Strict):
    handle: Any
    name: Any
    description: Any = None
    avatar: Any = None
    banner: Any = None
    visible_modules: list[str] | None = None
    hidden_modules: list[str] | None = None


class RelationshipItem(Strict):
    id: str
    type: str


class UsersRelationship(Strict):
    data: list[RelationshipItem] | None = None


class TeamCreateRelationships(Strict):
    users: UsersRelationship | None = None


class TeamCreateData(Strict):
    type: Literal["team"]
    attributes: TeamCreateAttributes
    relationships: TeamCreateRelationships | None = None


class TeamCreateRequest(Strict):
    data: TeamCreateData


class TeamUpdateAttributes(TeamCreateAttributes):
    pass


class TeamUpdateData(Strict):
    type: Literal["team"]
    attributes: TeamUpdateAttributes
    relationships: dict[str, Any] | None = None  # team links are not modelled: accepted, not stored


class TeamUpdateRequest(Strict):
    data: TeamUpdateData


class MembershipAttributes(Strict):
    role: Any = None
    provisioned_by: Any = None
    provisioned_by_id: Any = None


class MembershipUser(Strict):
    data: RelationshipItem | None = None


class MembershipRelationships(Strict):
    user: MembershipUser | None = None
    team: dict[str, Any] | None = None


class MembershipCreateData(Strict):
    type: Literal["team_memberships"]
    attributes: MembershipAttributes | None = None
    relationships: MembershipRelationships | None = None


class MembershipCreateRequest(Strict):
    data: MembershipCreateData


class MembershipUpdateData(Strict):
    type: Literal["team_memberships"]
    attributes: MembershipAttributes | None = None


class MembershipUpdateRequest(Strict):
    data: MembershipUpdateData
