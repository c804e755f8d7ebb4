"""Authentication: DD-API-KEY (the org) + DD-APPLICATION-KEY (the user acting), as Datadog does."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from casem.adapters.storage.tables import credentials, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.identity import API_KEY, APP_KEY, hash_key


@dataclass(frozen=True)
class Principal:
    org_id: str
    user_id: str


class AuthenticationFailed(Exception):
    pass


async def authenticate(uow: UnitOfWork, api_key: str | None, app_key: str | None) -> Principal:
    """Both keys must be valid, unrevoked, of the same org and each in its own header (an application
    key sent as DD-API-KEY, or an API key as DD-APPLICATION-KEY, is refused); the app key's user must be
    enabled."""
    if not api_key or not app_key:
        raise AuthenticationFailed("missing DD-API-KEY or DD-APPLICATION-KEY")
    rows = (
        await uow.execute(
            sa.select(credentials.c.kind, credentials.c.key_hash, credentials.c.org_id, credentials.c.user_id).where(
                credentials.c.key_hash.in_([hash_key(api_key), hash_key(app_key)]),
                credentials.c.revoked_at.is_(None),
            )
        )
    ).all()
    by_hash = {row.key_hash: row for row in rows}
    api, app = by_hash.get(hash_key(api_key)), by_hash.get(hash_key(app_key))
    if api is None or app is None or api.kind != API_KEY or app.kind != APP_KEY:
        raise AuthenticationFailed("invalid keys")
    if api.org_id != app.org_id or app.user_id is None:
        raise AuthenticationFailed("invalid keys")
    disabled = await uow.scalar(
        sa.select(users.c.disabled).where(users.c.id == app.user_id, users.c.org_id == app.org_id)
    )
    if disabled is None or disabled:
        raise AuthenticationFailed("user disabled")
    return Principal(org_id=api.org_id, user_id=app.user_id)


@dataclass(frozen=True)
class OrgKey:
    """An org identified by its API key alone (Datadog's validate endpoints): no user acts."""

    org_id: str
    key_id: str


async def authenticate_api_key(uow: UnitOfWork, api_key: str | None) -> OrgKey:
    """A live API key in DD-API-KEY: an application key there is refused, as in `authenticate`."""
    if not api_key:
        raise AuthenticationFailed("missing DD-API-KEY")
    row = (
        await uow.execute(
            sa.select(credentials.c.id, credentials.c.kind, credentials.c.org_id).where(
                credentials.c.key_hash == hash_key(api_key), credentials.c.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None or row.kind != API_KEY:
        raise AuthenticationFailed("invalid key")
    return OrgKey(org_id=row.org_id, key_id=row.id)
