"""HTTP views for /api/v2/users and /api/v2/team: the subset of Datadog's UsersApi and TeamsApi casem serves."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from casem.app.identity import service
from casem.domain.errors import InvalidInput
from casem.domain.identity import Team, User
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.identity.schemas import TeamCreateRequest, UserCreateRequest
from casem.services.case_api.jsonapi import iso, parse_body

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


def serialize_team(t: Team, fields: list[str] | None = None) -> dict[str, Any]:
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
        "user_count": 0,  # memberships are not modelled yet
        "link_count": 0,
        "is_managed": False,
    }
    if fields:
        attributes = {k: v for k, v in attributes.items() if k in fields}
    return {"id": t.id, "type": "team", "attributes": attributes}


@router.post("/api/v2/users", status_code=201)
async def create_user(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    attrs = (await parse_body(request, UserCreateRequest)).data.attributes
    async with who.uow() as uow:
        user = await service.create_user(
            uow, who.org_id, attrs.email, name=attrs.name, title=attrs.title, actor_id=who.user_id
        )
        await uow.commit()
    return {"data": serialize_user(user)}


@router.get("/api/v2/users/{user_id}")
async def get_user(user_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        user = await service.get_user(uow, who.org_id, user_id)
    return {"data": serialize_user(user)}


@router.get("/api/v2/users")
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
async def create_team(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    body = (await parse_body(request, TeamCreateRequest)).data
    rels = body.relationships
    if rels and rels.users and rels.users.data:
        # Memberships are not modelled yet; refusing beats creating the team without the members asked for.
        raise InvalidInput("adding users when creating a team is not supported", "/data/relationships/users/data")
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
        await uow.commit()
    return {"data": serialize_team(team)}


@router.get("/api/v2/team/{team_id}")
async def get_team(team_id: str, who: Caller = Depends(caller)) -> dict[str, Any]:
    async with who.uow(read_only=True) as uow:
        team = await service.get_team(uow, who.org_id, team_id)
    return {"data": serialize_team(team)}


@router.get("/api/v2/team")
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
        if filter_me:
            found, total = [], 0  # the caller belongs to no team while memberships are not modelled
        else:
            found, total = await service.list_teams(uow, who.org_id, page, sort=sort, keyword=filter_keyword)
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
        "data": [serialize_team(t, fields) for t in found],
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
