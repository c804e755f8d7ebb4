from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import RoleIdentifier, Strict, UsersIdentifier


class UserCreateAttributes(Strict):
    email: Any
    name: Any = None
    title: Any = None


class RolesRelationship(Strict):
    data: list[RoleIdentifier] | None = None


class UserRelationships(Strict):
    roles: RolesRelationship | None = None


class UserCreateData(Strict):
    type: Literal["users"]
    attributes: UserCreateAttributes
    # Roles are not modelled in casem: accepted so Datadog's request shape works, and not stored.
    relationships: UserRelationships | None = None


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


class UsersRelationship(Strict):
    data: list[UsersIdentifier] | None = None


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
    data: UsersIdentifier | None = None


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
