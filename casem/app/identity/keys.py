"""API and application keys: create, read, list, update and revoke.

Shared by the Key Management API (/api/v2/api_keys, /api/v2/application_keys, /api/v2/current_user/...)
and `casem admin`. Secrets are shown once, at creation; only their SHA-256 is stored, so no read ever
returns one. A revoked key stays in the table (the audit trail names it) and is gone for every reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import credentials, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.auth import forget_principals
from casem.app.identity.service import Page, issue_key, like_pattern
from casem.app.ids import UUID_RE
from casem.domain.errors import Conflict, InvalidInput, NotFound
from casem.domain.identity import API_KEY, APP_KEY, Credential, User

NAME_MAX = 255
CATEGORY_MAX = 64
# Reported in the listings' meta as Datadog does, and enforced at creation.
MAX_API_KEYS_PER_ORG = 100
MAX_APP_KEYS_PER_USER = 100

API_KEY_SORTS = ("name", "created_at", "modified_at", "last4")
APP_KEY_SORTS = ("name", "created_at", "last4")


def resource_name(kind: str) -> str:
    return "API key" if kind == API_KEY else "application key"


@dataclass(frozen=True)
class CreatedKey:
    key: Credential
    secret: str  # shown once: only its hash is stored


def _name(value: Any, pointer: str = "/data/attributes/name") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > NAME_MAX:
        raise InvalidInput(f"name must be a non-empty string of at most {NAME_MAX} characters", pointer)
    return value


def _category(value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or len(value) > CATEGORY_MAX):
        raise InvalidInput(
            f"category must be a string of at most {CATEGORY_MAX} characters", "/data/attributes/category"
        )
    return value


def _scopes(value: Any) -> None:
    # casem has no permission model yet: a scoped key would silently grant everything its user can do.
    if value is not None and value != []:
        raise InvalidInput(
            "scoped application keys are not supported: casem has no permissions to restrict a key to; "
            "leave scopes out (or null)",
            "/data/attributes/scopes",
        )


async def owner_in_org(uow: UnitOfWork, org_id: str, user_id: str) -> User:
    """The user an application key will act as: it must exist, be enabled and belong to the key's org."""
    user = await uow.session.get(User, user_id.lower()) if UUID_RE.match(user_id) else None
    if user is None:
        raise NotFound("user", user_id)
    if user.org_id != org_id:
        raise InvalidInput(
            f"user {user_id} belongs to another org, not to org {org_id}: an application key acts as a user "
            "of its own org (list them with `casem admin list-users ORG_ID`)"
        )
    if user.disabled:
        raise InvalidInput(f"user {user_id} is disabled: a key of theirs would authenticate nothing")
    return user


async def _live_count(uow: UnitOfWork, org_id: str, kind: str, user_id: str | None = None) -> int:
    conditions = [credentials.c.org_id == org_id, credentials.c.kind == kind, credentials.c.revoked_at.is_(None)]
    if user_id is not None:
        conditions.append(credentials.c.user_id == user_id)
    return int(await uow.scalar(sa.select(sa.func.count()).select_from(credentials).where(*conditions)) or 0)


async def create_key(
    uow: UnitOfWork,
    org_id: str,
    kind: str,
    name: Any,
    *,
    owner_id: str | None = None,
    actor_id: str | None = None,
    category: Any = None,
    remote_config_read_enabled: Any = None,
    scopes: Any = None,
) -> CreatedKey:
    """A new key of the org. An application key acts as `owner_id`, a user of the same org."""
    name = _name(name)
    if kind == API_KEY:
        if owner_id is not None:
            raise InvalidInput("an API key belongs to the org, not to a user: give no user for it")
        if remote_config_read_enabled is not None and not isinstance(remote_config_read_enabled, bool):
            raise InvalidInput(
                "remote_config_read_enabled must be true or false", "/data/attributes/remote_config_read_enabled"
            )
        category = _category(category)
        if await _live_count(uow, org_id, API_KEY) >= MAX_API_KEYS_PER_ORG:
            raise Conflict(f"the org already has {MAX_API_KEYS_PER_ORG} API keys: revoke one before creating another")
    elif kind == APP_KEY:
        if owner_id is None:
            raise InvalidInput("an application key acts as a user: give its user id")
        _scopes(scopes)
        owner_id = (await owner_in_org(uow, org_id, owner_id)).id
        if await _live_count(uow, org_id, APP_KEY, owner_id) >= MAX_APP_KEYS_PER_USER:
            raise Conflict(f"user {owner_id} already has {MAX_APP_KEYS_PER_USER} application keys: revoke one first")
    else:
        raise InvalidInput(f"key kind must be {API_KEY!r} or {APP_KEY!r}, not {kind!r}")
    issued = issue_key(uow, org_id, kind, name, user_id=owner_id)
    await uow.session.flush()
    key = await uow.session.get(Credential, issued.id)
    assert key is not None
    if kind == API_KEY:
        key.category = category
        key.remote_config_read_enabled = bool(remote_config_read_enabled)
    key.record_created(actor_id)
    return CreatedKey(key, issued.secret)


async def get_key(
    uow: UnitOfWork, org_id: str, key_id: str, kind: str | None = None, *, owner_id: str | None = None
) -> Credential:
    """One live key of the org (of `owner_id` when given). Another org's, another kind's, a revoked one: 404."""
    what = resource_name(kind) if kind else "key"
    if not UUID_RE.match(key_id):
        raise NotFound(what, key_id)
    key = await uow.session.get(Credential, key_id.lower())
    if (
        key is None
        or key.org_id != org_id
        or key.revoked_at is not None
        or (kind is not None and key.kind != kind)
        or (owner_id is not None and key.user_id != owner_id)
    ):
        raise NotFound(what, key_id)
    return key


def parse_time(value: str | None, parameter: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{parameter} must be an ISO 8601 date or time, e.g. 2024-05-01T00:00:00+00:00; got {value[:40]!r}"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class KeyFilters:
    text: str | None = None  # in the name (case-insensitive), or the last four characters
    created_start: str | None = None
    created_end: str | None = None
    modified_start: str | None = None
    modified_end: str | None = None
    category: str | None = None
    remote_config_read_enabled: bool | None = None
    owned_by: str | None = None  # application keys: the owner's id, or part of their email, handle or name


def _order(sort: str | None, allowed: tuple[str, ...]) -> list[Any]:
    field = sort or "name"
    descending = field.startswith("-")
    field = field.lstrip("-")
    if field not in allowed:
        options = ", ".join(f"{f}, -{f}" for f in allowed)
        raise InvalidInput(f"sort by {field!r} is not supported; use one of {options}")
    column = {
        "name": credentials.c.name,
        "created_at": credentials.c.created_at,
        "modified_at": sa.func.coalesce(credentials.c.modified_at, credentials.c.created_at),
        "last4": credentials.c.last4,
    }[field]
    return [column.desc() if descending else column.asc(), credentials.c.id]


async def list_keys(
    uow: UnitOfWork,
    org_id: str,
    kind: str,
    page: Page | None,
    *,
    sort: str | None = None,
    filters: KeyFilters = KeyFilters(),
    owner_id: str | None = None,
) -> tuple[list[Credential], int]:
    """One page of the org's live keys of one kind (all of them when `page` is None), and how many match."""
    conditions: list[Any] = [
        credentials.c.org_id == org_id,
        credentials.c.kind == kind,
        credentials.c.revoked_at.is_(None),
    ]
    if owner_id is not None:
        conditions.append(credentials.c.user_id == owner_id)
    if filters.text:
        conditions.append(
            sa.or_(
                sa.func.lower(credentials.c.name).like(like_pattern(filters.text), escape="\\"),
                credentials.c.last4 == filters.text,
            )
        )
    modified = sa.func.coalesce(credentials.c.modified_at, credentials.c.created_at)
    for value, parameter, column, after in (
        (filters.created_start, "filter[created_at][start]", credentials.c.created_at, True),
        (filters.created_end, "filter[created_at][end]", credentials.c.created_at, False),
        (filters.modified_start, "filter[modified_at][start]", modified, True),
        (filters.modified_end, "filter[modified_at][end]", modified, False),
    ):
        moment = parse_time(value, parameter)
        if moment is not None:
            conditions.append(column >= moment if after else column <= moment)
    if filters.category is not None:
        conditions.append(credentials.c.category == filters.category)
    if filters.remote_config_read_enabled is not None:
        conditions.append(credentials.c.remote_config_read_enabled == filters.remote_config_read_enabled)
    if filters.owned_by:
        owners = sa.select(users.c.id).where(
            users.c.org_id == org_id,
            sa.or_(
                users.c.id == filters.owned_by.lower(),
                *(
                    sa.func.lower(c).like(like_pattern(filters.owned_by), escape="\\")
                    for c in (users.c.email, users.c.handle, users.c.name)
                ),
            ),
        )
        conditions.append(credentials.c.user_id.in_(owners))
    order = _order(sort, API_KEY_SORTS if kind == API_KEY else APP_KEY_SORTS)
    total = await uow.scalar(sa.select(sa.func.count()).select_from(credentials).where(*conditions))
    statement = sa.select(Credential).where(*conditions).order_by(*order)
    if page is not None:
        statement = statement.limit(page.size).offset(page.number * page.size)
    return await uow.scalars(statement), int(total or 0)


async def update_key(
    uow: UnitOfWork,
    org_id: str,
    key_id: str,
    kind: str,
    *,
    actor_id: str | None,
    owner_id: str | None = None,
    changes: dict[str, Any],
) -> Credential:
    """Rename a key, or re-set an API key's category and remote-config flag (PATCH: only what was sent)."""
    key = await get_key(uow, org_id, key_id, kind, owner_id=owner_id)
    wanted: dict[str, Any] = {}
    if "name" in changes:
        wanted["name"] = _name(changes["name"])
    if kind == API_KEY:
        if "category" in changes:
            wanted["category"] = _category(changes["category"])
        if "remote_config_read_enabled" in changes:
            flag = changes["remote_config_read_enabled"]
            if not isinstance(flag, bool):
                raise InvalidInput(
                    "remote_config_read_enabled must be true or false", "/data/attributes/remote_config_read_enabled"
                )
            wanted["remote_config_read_enabled"] = flag
    elif "scopes" in changes:
        _scopes(changes["scopes"])
    key.update(actor_id, **wanted)
    return key


async def revoke_key(
    uow: UnitOfWork,
    org_id: str,
    key_id: str,
    kind: str | None = None,
    *,
    actor_id: str | None,
    owner_id: str | None = None,
) -> Credential:
    """Revoke a live key: it authenticates nothing from the next request on."""
    key = await get_key(uow, org_id, key_id, kind, owner_id=owner_id)
    key.revoke(actor_id)
    uow.after_commit(forget_principals)  # this process's remembered key pairs (casem.app.auth)
    return key


async def users_by_id(uow: UnitOfWork, org_id: str, ids: set[str]) -> list[User]:
    """The org's users among `ids` (for `include=`), in a stable order."""
    if not ids:
        return []
    return await uow.scalars(sa.select(User).where(users.c.org_id == org_id, users.c.id.in_(ids)).order_by(users.c.id))
