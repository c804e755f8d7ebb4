"""Personal access tokens: create, read, list, rename and revoke (Datadog's /api/v2/personal_access_tokens).

A token acts as the user who created it, in DD-APPLICATION-KEY beside the org's API key, until it expires or is
revoked (`casem.app.auth`). It is stored as a credential of kind `pat`: only the SHA-256 of the whole token is
kept, so its secret appears once, in the answer to its creation; its public portion (a prefix) names it after.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import credentials
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.auth import forget_principals
from casem.app.identity.keys import NAME_MAX, owner_in_org
from casem.app.identity.service import Page, like_pattern
from casem.app.ids import UUID_RE
from casem.domain.errors import Conflict, InvalidInput, NotFound
from casem.domain.events import utcnow
from casem.domain.identity import PAT, Credential, hash_key, new_personal_access_token

RESOURCE = "personal access token"
MIN_LIFETIME = timedelta(hours=24)  # Datadog: an expiry at least 24 hours ahead
MAX_TOKENS_PER_USER = 100
SORTS = ("name", "created_at", "expires_at", "last_used_at", "leaked")


@dataclass(frozen=True)
class CreatedToken:
    token: Credential
    secret: str  # the whole token, shown once: only its hash is stored


def _name(value: Any, pointer: str = "/data/attributes/name") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX:
        raise InvalidInput(f"name must be a non-empty string of at most {NAME_MAX} characters", pointer)
    return value


def _scopes(value: Any) -> list[str]:
    # casem has no permission model to restrict a token to: a scoped token would silently grant everything its
    # user can do, so (as for application keys) only an unscoped token is accepted.
    if value is None or value == []:
        return []
    raise InvalidInput(
        "scoped personal access tokens are not supported: casem has no permissions to restrict a token to; "
        "send scopes as an empty list",
        "/data/attributes/scopes",
    )


def _expiry(value: Any, now: datetime) -> datetime:
    pointer = "/data/attributes/expires_at"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput("expires_at must be an ISO 8601 date and time", pointer) from None
    if not isinstance(value, datetime):
        raise InvalidInput("expires_at must be an ISO 8601 date and time", pointer)
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    if moment < now + MIN_LIFETIME:
        raise InvalidInput("expires_at must be at least 24 hours in the future", pointer)
    return moment.astimezone(UTC)


async def create_token(
    uow: UnitOfWork,
    org_id: str,
    owner_id: str,
    name: Any,
    expires_at: Any,
    scopes: Any = None,
    *,
    actor_id: str | None,
) -> CreatedToken:
    """A new token acting as `owner_id` (an enabled user of the org) until `expires_at`."""
    name = _name(name)
    granted = _scopes(scopes)
    expiry = _expiry(expires_at, utcnow())
    owner_id = (await owner_in_org(uow, org_id, owner_id)).id
    live = await uow.scalar(
        sa.select(sa.func.count())
        .select_from(credentials)
        .where(
            credentials.c.org_id == org_id,
            credentials.c.kind == PAT,
            credentials.c.user_id == owner_id,
            credentials.c.revoked_at.is_(None),
        )
    )
    if int(live or 0) >= MAX_TOKENS_PER_USER:
        raise Conflict(f"user {owner_id} already has {MAX_TOKENS_PER_USER} personal access tokens: revoke one first")
    public, secret = new_personal_access_token()
    token = Credential(
        id=str(uuid.uuid4()),
        org_id=org_id,
        kind=PAT,
        key_hash=hash_key(secret),
        name=name,
        user_id=owner_id,
        last4=secret[-4:],
        expires_at=expiry,
        scopes=granted,
        public_portion=public,
    )
    uow.add(token)
    token.record_created(actor_id)
    return CreatedToken(token, secret)


async def get_token(uow: UnitOfWork, org_id: str, token_id: str) -> Credential:
    """One unrevoked token of the org (expired ones included: they are listed until revoked). Another org's id,
    another kind of key's id, a revoked token: 404."""
    if not UUID_RE.match(token_id):
        raise NotFound(RESOURCE, token_id)
    token = await uow.session.get(Credential, token_id.lower())
    if token is None or token.org_id != org_id or token.kind != PAT or token.revoked_at is not None:
        raise NotFound(RESOURCE, token_id)
    return token


@dataclass(frozen=True)
class TokenFilters:
    text: str | None = None  # in the name (case-insensitive) or the public portion
    owned_by: tuple[str, ...] = ()  # owners' user ids
    leaked: bool | None = None  # casem detects no leaks: true matches nothing, false filters nothing


def _order(sort: str | None) -> list[Any]:
    field = sort or "name"
    descending = field.startswith("-")
    field = field.removeprefix("-")
    if field not in SORTS:
        options = ", ".join(f"{f}, -{f}" for f in SORTS)
        raise InvalidInput(f"sort by {field!r} is not supported; use one of {options}")
    if field == "leaked":  # no token is known to have leaked: all tie, the name decides
        field = "name"
    column = credentials.c[field]
    ordered = column.desc() if descending else column.asc()
    return [ordered.nulls_last() if field in ("expires_at", "last_used_at") else ordered, credentials.c.id]


async def list_tokens(
    uow: UnitOfWork, org_id: str, page: Page, *, sort: str | None = None, filters: TokenFilters = TokenFilters()
) -> tuple[list[Credential], int]:
    """One page of the org's unrevoked tokens and how many match."""
    conditions: list[Any] = [
        credentials.c.org_id == org_id,
        credentials.c.kind == PAT,
        credentials.c.revoked_at.is_(None),
    ]
    if filters.text:
        conditions.append(
            sa.or_(
                sa.func.lower(credentials.c.name).like(like_pattern(filters.text), escape="\\"),
                sa.func.lower(credentials.c.public_portion).like(like_pattern(filters.text), escape="\\"),
            )
        )
    if filters.owned_by:
        conditions.append(credentials.c.user_id.in_([owner.lower() for owner in filters.owned_by]))
    if filters.leaked:
        conditions.append(sa.false())
    order = _order(sort)
    total = await uow.scalar(sa.select(sa.func.count()).select_from(credentials).where(*conditions))
    statement = sa.select(Credential).where(*conditions).order_by(*order).limit(page.size)
    found = await uow.scalars(statement.offset(page.number * page.size))
    return found, int(total or 0)


async def update_token(
    uow: UnitOfWork, org_id: str, token_id: str, *, actor_id: str | None, changes: dict[str, Any]
) -> Credential:
    """Rename a token (PATCH: only what was sent); scopes are accepted only empty, as at creation."""
    token = await get_token(uow, org_id, token_id)
    wanted: dict[str, Any] = {}
    if "name" in changes:
        wanted["name"] = _name(changes["name"])
    if "scopes" in changes:
        wanted["scopes"] = _scopes(changes["scopes"])
    token.update(actor_id, **wanted)
    return token


async def revoke_token(uow: UnitOfWork, org_id: str, token_id: str, *, actor_id: str | None) -> Credential:
    """From the commit on, the token authenticates nothing (this process forgets the pairs it remembered)."""
    token = await get_token(uow, org_id, token_id)
    token.revoke(actor_id)
    uow.after_commit(forget_principals)
    return token
