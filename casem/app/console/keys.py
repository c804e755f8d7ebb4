"""API and application keys as the console's settings page manages them: list, issue, revoke."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from casem.adapters.storage.tables import credentials
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.auth import forget_principals
from casem.app.identity.service import IssuedKey, issue_key
from casem.app.ids import require_uuid
from casem.domain.errors import InvalidInput, NotFound
from casem.domain.events import utcnow
from casem.domain.identity import API_KEY, APP_KEY


@dataclass(frozen=True)
class KeyRow:
    id: str
    kind: str
    name: str
    last4: str
    user_id: str | None
    created_at: datetime
    revoked_at: datetime | None


async def list_keys(uow: UnitOfWork, org_id: str) -> list[KeyRow]:
    rows = await uow.execute(
        sa.select(credentials)
        .where(credentials.c.org_id == org_id)
        .order_by(credentials.c.revoked_at.is_not(None), credentials.c.created_at.desc())
    )
    return [KeyRow(r.id, r.kind, r.name, r.last4, r.user_id, r.created_at, r.revoked_at) for r in rows]


def new_key(uow: UnitOfWork, org_id: str, user_id: str, kind: str, name: str) -> IssuedKey:
    """An API key of the org, or an application key acting as `user_id` (the person asking)."""
    if kind not in (API_KEY, APP_KEY):
        raise InvalidInput("choose an API key or an application key", "/kind")
    name = name.strip()
    if not name or len(name) > 255:
        raise InvalidInput("give the key a name (at most 255 characters)", "/name")
    return issue_key(uow, org_id, kind, name, user_id=user_id if kind == APP_KEY else None)


async def revoke_key(uow: UnitOfWork, org_id: str, key_id: str) -> None:
    ident = require_uuid(key_id, "key id")
    result = await uow.execute(
        sa.update(credentials)
        .where(credentials.c.id == ident, credentials.c.org_id == org_id, credentials.c.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if not result.rowcount:
        raise NotFound("key", key_id)
    uow.after_commit(forget_principals)  # this process's remembered key pairs (casem.app.auth)
