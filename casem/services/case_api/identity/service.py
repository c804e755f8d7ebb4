"""Orgs, users, teams and keys: the application services behind `casem admin`, import and /api/v2/users."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import orgs, teams, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.errors import Conflict, InvalidInput
from casem.domain.identity import (
    API_KEY,
    APP_KEY,
    Credential,
    Org,
    Team,
    User,
    hash_key,
    new_api_key,
    new_app_key,
)

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class IssuedKey:
    id: str
    kind: str
    secret: str  # shown once: only its hash is stored


async def create_org(uow: UnitOfWork, name: str, org_id: str | None = None) -> Org:
    if not name.strip():
        raise InvalidInput("org name must be non-empty")
    org = Org(id=org_id or str(uuid.uuid4()), name=name)
    uow.add(org)
    return org


async def create_user(
    uow: UnitOfWork,
    org_id: str,
    email: str,
    name: str | None = None,
    title: str | None = None,
    user_id: str | None = None,
    handle: str | None = None,
) -> User:
    if not isinstance(email, str) or not EMAIL.match(email) or len(email) > 255:
        raise InvalidInput(f"{email!r} is not a valid email address", "/data/attributes/email")
    handle = handle or email
    existing = await uow.scalar(sa.select(users.c.id).where(users.c.org_id == org_id, users.c.handle == handle))
    if existing:
        raise Conflict(f"a user with handle {handle!r} already exists in this org")
    user = User(id=user_id or str(uuid.uuid4()), org_id=org_id, email=email, handle=handle, name=name, title=title)
    uow.add(user)
    return user


async def create_team(
    uow: UnitOfWork,
    org_id: str,
    handle: str,
    name: str,
    description: str | None = None,
    team_id: str | None = None,
    **extra: Any,
) -> Team:
    existing = await uow.scalar(sa.select(teams.c.id).where(teams.c.org_id == org_id, teams.c.handle == handle))
    if existing:
        raise Conflict(f"a team with handle {handle!r} already exists in this org")
    team = Team(
        id=team_id or str(uuid.uuid4()), org_id=org_id, handle=handle, name=name, description=description, **extra
    )
    uow.add(team)
    return team


def issue_key(
    uow: UnitOfWork,
    org_id: str,
    kind: str,
    name: str,
    user_id: str | None = None,
    secret: str | None = None,
    key_id: str | None = None,
) -> IssuedKey:
    if kind not in (API_KEY, APP_KEY):
        raise InvalidInput(f"key kind must be {API_KEY!r} or {APP_KEY!r}")
    if kind == APP_KEY and not user_id:
        raise InvalidInput("an application key acts as a user: give its user id")
    secret = secret or (new_api_key() if kind == API_KEY else new_app_key())
    cred = Credential(
        id=key_id or str(uuid.uuid4()),
        org_id=org_id,
        kind=kind,
        key_hash=hash_key(secret),
        name=name,
        user_id=user_id,
        last4=secret[-4:],
    )
    uow.add(cred)
    return IssuedKey(id=cred.id, kind=kind, secret=secret)


async def org_exists(uow: UnitOfWork, org_id: str) -> bool:
    return bool(await uow.scalar(sa.select(orgs.c.id).where(orgs.c.id == org_id)))


@dataclass(frozen=True)
class BootstrapCredentials:
    org_id: str
    user_id: str
    api_key: str
    app_key: str


async def bootstrap_org(uow: UnitOfWork, org_name: str, email: str) -> BootstrapCredentials:
    """A new org with an admin user and one API + application key pair (used by `casem up` and tests)."""
    org = await create_org(uow, org_name)
    user = await create_user(uow, org.id, email, name="Admin")
    await uow.session.flush()
    api = issue_key(uow, org.id, API_KEY, "bootstrap")
    app = issue_key(uow, org.id, APP_KEY, "bootstrap", user_id=user.id)
    return BootstrapCredentials(org.id, user.id, api.secret, app.secret)
