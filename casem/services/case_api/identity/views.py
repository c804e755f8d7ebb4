"""HTTP views for /api/v2/users and /api/v2/team: the subset of Datadog's UsersApi and TeamsApi casem serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from casem.app.identity import service
from casem.domain.errors import InvalidInput
from casem.domain.identity import Team, User
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.identity.schemas import (
    MembershipCreateRequest,
    MembershipResponse,
    MembershipsResponse,
    MembershipUpdateRequest,
    TeamCreateRequest,
    TeamResponse,
    TeamsResponse,
    TeamUpdateRequest,
    UserCreateRequest,
    UserMembershipsResponse,
    UserResponse,
    UsersResponse,
)
from casem.services.case_api.jsonapi import iso, parse_body
from casem.services.case_api.openapi import contract

router = APIRouter(tags=["users and teams"])

AVATAR_MAX = 255
MODULES_MAX = 100


def serialize_user(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "type": "users",
        "attributes": {
            "uuid": u.id,
            "email": u.email,
            "handle": u.handle,
            "name": u.name,
            "title": u.title,
            "disabled": u.disabled,
            "service_account": u.service_account,
            "status": "Disabled" if u.disabled else "Active",
            "verified": True,
            "mfa_enabled": False,
            "created_at": iso(u.created_at),
            # Datadog's model does not allow a null modified_at: an unmodified user reports its creation.
            "modified_at": iso(u.modified_at or u.created_at),
            "last_login_time": None,
        },
        "relationships": {"org": {"data": {"id": u.org_id, "type": "orgs"}}, "roles": {"data": []}},
    }


def serialize_team(t: Team, fields: list[str] | None = None, user_count: int = 0) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "handle": t.handle,
        "name": t.name,
        "description": t.description,
        "summary": t.description,
        "avatar": t.avatar,
        "banner": t.banner,
        "visible_modules": t.visible_modules,
        "hidden_modules": t.hidden_modules,
        "created_at": iso(t.created_at),
        "modified_at": iso(t.modified_at or t.created_at),
        "user_count": user_count,
        "link_count": 0,
        "is_managed": False,
    }
    if fields:
        attributes = {k: v for k, v in attributes.items() if k in fields}
    return {"id": t.id, "type": "team", "attributes": attributes}


@router.post("/api/v2/users", status_code=201)
@contract(body=UserCreateRequest, returns=UserResponse, errors={409})
async def create_user(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, UserCreateRequest)).data.attributes
    async with who.uow() as uow:
        user = await service.create_user(
            uow, who.org_id, attrs.email, name=attrs.name, title=attrs.title, actor_id=who.user_id
        )
        await uow.commit()
    return {"data": serialize_user(user)}


@router.get("/api/v2/users/{user_id}")
@contract(returns=UserResponse)
async def get_user(user_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        user = await service.get_user(uow, who.org_id, user_id)
    return {"data": serialize_user(user)}


@router.get("/api/v2/users")
@contract(returns=UsersResponse)
async def list_users(
    who: Caller = Depends(caller),
    page_size: int | None = Query(None, alias="page[size]"),
    page_number: int | None = Query(None, alias="page[number]"),
    sort: str | None = None,
    sort_dir: str | None = None,
    filter: str | None = None,
    filter_status: str | None = Query(None, alias="filter[status]"),
) -> dict[str, Any]:
    page = service.page_of(page_number, page_size)
    async with who.uow(read_only=True) as uow:
        found, total, filtered = await service.list_users(
            uow, who.org_id, page, sort=sort, sort_dir=sort_dir, text=filter, statuses=filter_status
        )
    return {
        "data": [serialize_user(u) for u in found],
        "included": [],
        "meta": {"page": {"total_count": total, "total_filtered_count": filtered}},
    }


def _team_extras(attrs: Any) -> dict[str, Any]:
    extras: dict[str, Any] = {}
    if attrs.avatar is not None:
        if not isinstance(attrs.avatar, str) or len(attrs.avatar) > AVATAR_MAX:
            raise InvalidInput(f"avatar must be a string of at most {AVATAR_MAX} characters", "/data/attributes/avatar")
        extras["avatar"] = attrs.avatar
    if attrs.banner is not None:
        if isinstance(attrs.banner, bool) or not isinstance(attrs.banner, int) or attrs.banner < 0:
            raise InvalidInput("banner must be a non-negative integer", "/data/attributes/banner")
        extras["banner"] = attrs.banner
    for name in ("visible_modules", "hidden_modules"):
        modules = getattr(attrs, name)
        if modules is not None:
            if len(modules) > MODULES_MAX:
                raise InvalidInput(f"{name} takes at most {MODULES_MAX} entries", f"/data/attributes/{name}")
            extras[name] = list(modules)
    return extras


@router.post("/api/v2/team", status_code=201)
@contract(body=TeamCreateRequest, returns=TeamResponse, errors={409})
async def create_team(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = (await parse_body(request, TeamCreateRequest)).data
    rels = body.relationships
    members = rels.users.data if rels and rels.users and rels.users.data else []
    attrs = body.attributes
    async with who.uow() as uow:
        team = await service.create_team(
            uow,
            who.org_id,
            attrs.handle,
            attrs.name,
            attrs.description,
            actor_id=who.user_id,
            **_team_extras(attrs),
        )
        await uow.session.flush()
        for i, member in enumerate(members):
            await service.add_member(
                uow, who.org_id, team.id, member.id, None, who.user_id, pointer=f"/data/relationships/users/data/{i}/id"
            )
        await uow.commit()
    return {"data": serialize_team(team, user_count=len(members))}


@router.get("/api/v2/team/{team_id}")
@contract(returns=TeamResponse)
async def get_team(team_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        team = await service.get_team(uow, who.org_id, team_id)
        counts = await service.member_counts(uow, [team.id])
    return {"data": serialize_team(team, user_count=counts.get(team.id, 0))}


@router.get("/api/v2/team")
@contract(returns=TeamsResponse)
async def list_teams(
    request: Request,
    who: Caller = Depends(caller),
    page_number: int | None = Query(None, alias="page[number]"),
    page_size: int | None = Query(None, alias="page[size]"),
    sort: str | None = None,
    filter_keyword: str | None = Query(None, alias="filter[keyword]"),
    filter_me: bool | None = Query(None, alias="filter[me]"),
    fields_team: str | None = Query(None, alias="fields[team]"),
) -> dict[str, Any]:
    page = service.page_of(page_number, page_size)
    async with who.uow(read_only=True) as uow:
        mine = await service.teams_of(uow, who.org_id, who.user_id) if filter_me else None
        found, total = await service.list_teams(uow, who.org_id, page, sort=sort, keyword=filter_keyword, only=mine)
        counts = await service.member_counts(uow, [t.id for t in found])
    fields = [f.strip() for f in fields_team.split(",") if f.strip()] if fields_team else None
    offset = page.number * page.size
    last_offset = max(total - 1, 0) // page.size * page.size
    base = str(request.url.remove_query_params(["page[number]", "page[size]"]))
    sep = "&" if "?" in base else "?"

    def link(number: int) -> str:
        return f"{base}{sep}page[number]={number}&page[size]={page.size}"

    has_next = offset + page.size < total
    links = {
        "self": str(request.url),
        "first": link(0),
        "last": link(last_offset // page.size),
        "prev": link(page.number - 1) if page.number > 0 else None,
    }
    if has_next:  # Datadog's model allows no null `next`: it is left out on the last page
        links["next"] = link(page.number + 1)
    return {
        "data": [serialize_team(t, fields, counts.get(t.id, 0)) for t in found],
        "included": [],
        "links": links,
        "meta": {
            "pagination": {
                "type": "offset_limit",
                "offset": offset,
                "limit": page.size,
                "total": total,
                "first_offset": 0,
                "last_offset": last_offset,
                "next_offset": offset + page.size if has_next else offset,
                "prev_offset": max(offset - page.size, 0),
            }
        },
    }


# -- disabling users, changing and deleting teams, memberships (what On-Call needs of the Users and Teams APIs) --


@router.delete("/api/v2/users/{user_id}", status_code=204)
async def disable_user(user_id: str, who: Caller = Depends(caller)) -> Response:
    """Datadog's disable_user: the user stays, disabled (their keys stop working, nobody pages them)."""
    async with who.uow() as uow:
        await service.disable_user(uow, who.org_id, user_id, who.user_id)
        await uow.commit()
    return Response(status_code=204)


@router.patch("/api/v2/team/{team_id}")
@contract(body=TeamUpdateRequest, returns=TeamResponse, errors={409})
async def update_team(team_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = (await parse_body(request, TeamUpdateRequest)).data
    attrs = body.attributes
    changes: dict[str, Any] = {"handle": attrs.handle, "name": attrs.name}
    if attrs.description is not None:
        if not isinstance(attrs.description, str):
            raise InvalidInput("description must be a string", "/data/attributes/description")
        changes["description"] = attrs.description
    changes.update(_team_extras(attrs))
    async with who.uow() as uow:
        team = await service.update_team(uow, who.org_id, team_id, who.user_id, **changes)
        counts = await service.member_counts(uow, [team.id])
        await uow.commit()
    return {"data": serialize_team(team, user_count=counts.get(team.id, 0))}


@router.delete("/api/v2/team/{team_id}", status_code=204)
async def delete_team(team_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.delete_team(uow, who.org_id, team_id, who.user_id)
        await uow.commit()
    return Response(status_code=204)


def serialize_membership(m: service.Membership) -> dict[str, Any]:
    return {
        "id": m.id,
        "type": "team_memberships",
        "attributes": {"role": m.role, "provisioned_by": None, "provisioned_by_id": None},
        "relationships": {
            "team": {"data": {"id": m.team_id, "type": "team"}},
            "user": {"data": {"id": m.user_id, "type": "users"}},
        },
    }


@router.post("/api/v2/team/{team_id}/memberships")
@contract(body=MembershipCreateRequest, returns=MembershipResponse, errors={409})
async def add_team_member(team_id: str, request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = (await parse_body(request, MembershipCreateRequest)).data
    user = body.relationships.user.data if body.relationships and body.relationships.user else None
    role = body.attributes.role if body.attributes else None
    async with who.uow() as uow:
        membership = await service.add_member(uow, who.org_id, team_id, user.id if user else None, role, who.user_id)
        member = await service.get_user(uow, who.org_id, membership.user_id)
        await uow.commit()
    return {"data": serialize_membership(membership), "included": [serialize_user(member)]}


@router.get("/api/v2/team/{team_id}/memberships")
@contract(returns=MembershipsResponse)
async def list_team_members(
    team_id: str,
    request: Request,
    who: Caller = Depends(caller),
    page_size: int | None = Query(None, alias="page[size]"),
    page_number: int | None = Query(None, alias="page[number]"),
    sort: str | None = None,
    filter_keyword: str | None = Query(None, alias="filter[keyword]"),
) -> dict[str, Any]:
    page = service.page_of(page_number, page_size)
    async with who.uow(read_only=True) as uow:
        found, total = await service.team_members(uow, who.org_id, team_id, page, sort=sort, keyword=filter_keyword)
    return {
        "data": [serialize_membership(m) for m, _ in found],
        "included": [serialize_user(u) for _, u in found],
        "links": _links(request, page, total),
        "meta": {"pagination": _pagination(page, total)},
    }


@router.patch("/api/v2/team/{team_id}/memberships/{user_id}")
@contract(body=MembershipUpdateRequest, returns=MembershipResponse)
async def update_team_member(
    team_id: str, user_id: str, request: Request, who: Caller = Depends(caller)
) -> dict[str, Any]:
    body = (await parse_body(request, MembershipUpdateRequest)).data
    role = body.attributes.role if body.attributes else None
    async with who.uow() as uow:
        membership = await service.update_member(uow, who.org_id, team_id, user_id, role, who.user_id)
        await uow.commit()
    return {"data": serialize_membership(membership)}


@router.delete("/api/v2/team/{team_id}/memberships/{user_id}", status_code=204)
async def remove_team_member(team_id: str, user_id: str, who: Caller = Depends(caller)) -> Response:
    async with who.uow() as uow:
        await service.remove_member(uow, who.org_id, team_id, user_id, who.user_id)
        await uow.commit()
    return Response(status_code=204)


@router.get("/api/v2/users/{user_uuid}/memberships")
@contract(returns=UserMembershipsResponse)
async def list_user_memberships(user_uuid: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        found = await service.user_memberships(uow, who.org_id, user_uuid)
        counts = await service.member_counts(uow, [t.id for _, t in found])
    return {
        "data": [serialize_membership(m) for m, _ in found],
        "included": [serialize_team(t, user_count=counts.get(t.id, 0)) for _, t in found],
    }


def _links(request: Request, page: service.Page, total: int) -> dict[str, Any]:
    base = str(request.url.remove_query_params(["page[number]", "page[size]"]))
    sep = "&" if "?" in base else "?"
    last = max(total - 1, 0) // page.size

    def link(number: int) -> str:
        return f"{base}{sep}page[number]={number}&page[size]={page.size}"

    links: dict[str, Any] = {
        "self": str(request.url),
        "first": link(0),
        "last": link(last),
        "prev": link(page.number - 1) if page.number > 0 else None,
    }
    if page.number < last:
        links["next"] = link(page.number + 1)
    return links


def _pagination(page: service.Page, total: int) -> dict[str, Any]:
    offset = page.number * page.size
    last_offset = max(total - 1, 0) // page.size * page.size
    has_next = offset + page.size < total
    return {
        "type": "offset_limit",
        "offset": offset,
        "limit": page.size,
        "total": total,
        "first_offset": 0,
        "last_offset": last_offset,
        "next_offset": offset + page.size if has_next else offset,
        "prev_offset": max(offset - page.size, 0),
    }
