"""What the on-call views share: the on-call tenant's unit of work beside the directory of people, `include=`
parsing, request envelopes, and the JSON:API shapes of users and teams as On-Call answers them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.oncall.directory import Directory
from casem.domain.errors import InvalidInput, TenantUnavailable
from casem.domain.identity import Team, User
from casem.services.case_api.http import Caller, caller
from casem.services.case_api.jsonapi import iso
from casem.services.case_api.schemas import Strict
from casem.topology.config import current_datacenter
from casem.topology.tenants import CASE_MANAGEMENT, ON_CALL


async def on_call_tenant(who: Caller = Depends(caller)) -> None:
    """Router dependency: where the on-call tenant is not deployed, every on-call route is a 503 before its body is
    read (after authentication: an unauthenticated caller learns nothing)."""
    if ON_CALL not in who.context.databases:
        raise TenantUnavailable(ON_CALL, current_datacenter())


@asynccontextmanager
async def on_call(who: Caller, *, read_only: bool = False) -> AsyncIterator[tuple[UnitOfWork, Directory]]:
    """The on-call tenant's unit of work (503 where the tenant is not deployed) and the org's people."""
    async with who.uow(ON_CALL, read_only=read_only) as uow, who.uow(CASE_MANAGEMENT, read_only=True) as people:
        yield uow, Directory(people, who.org_id)


def parse_include(value: str | None, allowed: Iterable[str]) -> set[str]:
    """`include=a,b.c`: a path includes its parents (b.c includes b); an unknown path is a 400."""
    if not value:
        return set()
    allowed = list(allowed)
    found: set[str] = set()
    for item in (v.strip() for v in value.split(",")):
        if not item:
            continue
        if item not in allowed:
            raise InvalidInput(f"include {item!r} is not one of {', '.join(allowed)}")
        parts = item.split(".")
        found.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return found


class TeamsData(Strict):
    id: str
    type: str


class TeamsRelationship(Strict):
    data: list[TeamsData] | None = None


class TeamsRelationships(Strict):
    teams: TeamsRelationship | None = None


def team_ids_of(relationships: TeamsRelationships | None) -> list[str] | None:
    """The team ids of `relationships.teams.data` (None: the request named no teams)."""
    if relationships is None or relationships.teams is None or relationships.teams.data is None:
        return None
    for i, item in enumerate(relationships.teams.data):
        if item.type != "teams":
            raise InvalidInput("a team reference has type teams", f"/data/relationships/teams/data/{i}/type")
    return [item.id for item in relationships.teams.data]


def team_reference(team: Team) -> dict[str, Any]:
    attributes = {"handle": team.handle, "name": team.name, "description": team.description, "avatar": team.avatar}
    return {"id": team.id, "type": "teams", "attributes": {k: v for k, v in attributes.items() if v is not None}}


def user_status(user: User) -> str:
    return "deactivated" if user.disabled else "active"


def user_reference(user: User) -> dict[str, Any]:
    """ScheduleUser / EscalationPolicyUser: id, email, name and status."""
    attributes = {"email": user.email, "name": user.name, "status": user_status(user)}
    return {"id": user.id, "type": "users", "attributes": {k: v for k, v in attributes.items() if v is not None}}


def full_user(user: User) -> dict[str, Any]:
    """Datadog's `User` resource (as /api/v2/users answers it)."""
    return {
        "id": user.id,
        "type": "users",
        "attributes": {
            "uuid": user.id,
            "email": user.email,
            "handle": user.handle,
            "name": user.name,
            "title": user.title,
            "disabled": user.disabled,
            "service_account": user.service_account,
            "status": "Disabled" if user.disabled else "Active",
            "verified": True,
            "mfa_enabled": False,
            "created_at": iso(user.created_at),
            "modified_at": iso(user.modified_at or user.created_at),
            "last_login_time": None,
        },
        "relationships": {"org": {"data": {"id": user.org_id, "type": "orgs"}}, "roles": {"data": []}},
    }


def restrictions_json(restrictions: Iterable[Any]) -> list[dict[str, str]]:
    return [r.to_json() for r in restrictions]


def unique(resources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON:API's `included` holds each resource once (by type and id), in the order first met."""
    seen: set[tuple[str, str]] = set()
    found = []
    for resource in resources:
        identity = (resource["type"], resource["id"])
        if identity not in seen:
            seen.add(identity)
            found.append(resource)
    return found
