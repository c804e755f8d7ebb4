from __future__ import annotations

from typing import Any, Literal

from casem.services.case_api.schemas import Answer, RoleIdentifier, Strict, ToMany, ToOne, UsersIdentifier


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


# -- answers (serialize_user, serialize_team and serialize_membership in views.py) ------------------------------


class UserAnswerAttributes(Answer):
    uuid: str
    email: str
    handle: str | None
    name: str | None
    title: str | None
    disabled: bool
    service_account: bool
    status: Literal["Active", "Disabled"]
    verified: bool
    mfa_enabled: bool
    created_at: str
    modified_at: str
    last_login_time: str | None


class UserAnswerRelationships(Answer):
    org: ToOne
    roles: ToMany


class UserResource(Answer):
    id: str
    type: Literal["users"]
    attributes: UserAnswerAttributes
    relationships: UserAnswerRelationships


class UserResponse(Answer):
    data: UserResource


class UsersPage(Answer):
    total_count: int
    total_filtered_count: int


class UsersMeta(Answer):
    page: UsersPage


class UsersResponse(Answer):
    data: list[UserResource]
    included: list[dict[str, Any]]
    meta: UsersMeta


class TeamAnswerAttributes(Answer):
    """Every member is optional: `fields[team]` keeps only the ones asked for."""

    handle: str | None = None
    name: str | None = None
    description: str | None = None
    summary: str | None = None
    avatar: str | None = None
    banner: int | None = None
    visible_modules: list[str] | None = None
    hidden_modules: list[str] | None = None
    created_at: str | None = None
    modified_at: str | None = None
    user_count: int | None = None
    link_count: int | None = None
    is_managed: bool | None = None


class TeamResource(Answer):
    id: str
    type: Literal["team"]
    attributes: TeamAnswerAttributes


class TeamResponse(Answer):
    data: TeamResource


class OffsetLimitPagination(Answer):
    type: Literal["offset_limit"]
    offset: int
    limit: int
    total: int
    first_offset: int
    last_offset: int
    next_offset: int
    prev_offset: int


class PaginationMeta(Answer):
    pagination: OffsetLimitPagination


class PageLinks(Answer):
    self: str
    first: str
    last: str
    prev: str | None
    next: str | None = None


class TeamsResponse(Answer):
    data: list[TeamResource]
    included: list[dict[str, Any]]
    links: PageLinks
    meta: PaginationMeta


class MembershipAnswerAttributes(Answer):
    role: str | None
    provisioned_by: str | None
    provisioned_by_id: str | None


class MembershipAnswerRelationships(Answer):
    team: ToOne
    user: ToOne


class MembershipResource(Answer):
    id: str
    type: Literal["team_memberships"]
    attributes: MembershipAnswerAttributes
    relationships: MembershipAnswerRelationships


class MembershipResponse(Answer):
    data: MembershipResource
    included: list[UserResource] | None = None


class MembershipsResponse(Answer):
    data: list[MembershipResource]
    included: list[UserResource]
    links: PageLinks
    meta: PaginationMeta


class UserMembershipsResponse(Answer):
    data: list[MembershipResource]
    included: list[TeamResource]
