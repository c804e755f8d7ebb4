"""Orgs, users, teams and keys: the application services behind `casem admin`, import and /api/v2/users."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import orgs, team_memberships, teams, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.auth import forget_principals
from casem.app.ids import UUID_RE
from casem.app.paging import MAX_PAGE_NUMBER
from casem.domain.errors import Conflict, InvalidInput, NotFound
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
KEY_HASH = re.compile(r"^[0-9a-f]{64}$")


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
    *,
    disabled: bool = False,
    service_account: bool = False,
    actor_id: str | None = None,
) -> User:
    if not isinstance(email, str) or not EMAIL.match(email) or len(email) > 255:
        raise InvalidInput(f"{email!r} is not a valid email address", "/data/attributes/email")
    email = email.lower()  # Datadog stores and answers e-mail addresses lower-cased
    handle = handle or email
    for value, field_name in ((name, "name"), (title, "title")):
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise InvalidInput(
                f"{field_name} must be a string of at most 255 characters", f"/data/attributes/{field_name}"
            )
    existing = await uow.scalar(sa.select(users.c.id).where(users.c.org_id == org_id, users.c.handle == handle))
    if existing:
        raise Conflict(f"a user with handle {handle!r} already exists in this org")
    user = User(
        id=user_id or str(uuid.uuid4()),
        org_id=org_id,
        email=email,
        handle=handle,
        name=name,
        title=title,
        disabled=disabled,
        service_account=service_account,
    )
    user.record_created(actor_id)
    uow.add(user)
    return user


TEAM_HANDLE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,194}$")


async def create_team(
    uow: UnitOfWork,
    org_id: str,
    handle: str,
    name: str,
    description: str | None = None,
    team_id: str | None = None,
    *,
    actor_id: str | None = None,
    **extra: Any,
) -> Team:
    """`extra`: avatar, banner, visible_modules, hidden_modules (Datadog's optional team fields)."""
    if not isinstance(handle, str) or not TEAM_HANDLE.match(handle):
        raise InvalidInput(
            "handle must be 1 to 195 letters, digits, '.', '_' or '-', starting with a letter or digit",
            "/data/attributes/handle",
        )
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput("name must be a non-empty string of at most 200 characters", "/data/attributes/name")
    if description is not None and not isinstance(description, str):
        raise InvalidInput("description must be a string", "/data/attributes/description")
    existing = await uow.scalar(sa.select(teams.c.id).where(teams.c.org_id == org_id, teams.c.handle == handle))
    if existing:
        raise Conflict(f"a team with handle {handle!r} already exists in this org")
    team = Team(
        id=team_id or str(uuid.uuid4()), org_id=org_id, handle=handle, name=name, description=description, **extra
    )
    team.record_created(actor_id)
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
    *,
    key_hash: str | None = None,
    last4: str = "",
) -> IssuedKey:
    """Store a key's hash. `key_hash` (with `last4`) carries a key over from another casem unchanged."""
    if kind not in (API_KEY, APP_KEY):
        raise InvalidInput(f"key kind must be {API_KEY!r} or {APP_KEY!r}")
    if kind == APP_KEY and not user_id:
        raise InvalidInput("an application key acts as a user: give its user id")
    if key_hash is not None:
        if secret is not None:
            raise InvalidInput("give a key's secret or its key_hash, not both")
        if not KEY_HASH.match(key_hash):
            raise InvalidInput("key_hash must be the 64 lower-case hex digits of the key's SHA-256")
    else:
        secret = secret or (new_api_key() if kind == API_KEY else new_app_key())
        key_hash, last4 = hash_key(secret), secret[-4:]
    cred = Credential(
        id=key_id or str(uuid.uuid4()),
        org_id=org_id,
        kind=kind,
        key_hash=key_hash,
        name=name,
        user_id=user_id,
        last4=last4,
    )
    uow.add(cred)
    return IssuedKey(id=cred.id, kind=kind, secret=secret or "")


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


BOOTSTRAP_EMAIL = "admin@casem.local"


async def bootstrap_existing_org(uow: UnitOfWork, org_id: str, email: str = BOOTSTRAP_EMAIL) -> BootstrapCredentials:
    """Keys for an org that came in by import (its own keys' secrets never travel): the org's `email` user,
    created as a service account when it is not there, and a new API + application key pair acting as it."""
    if not await org_exists(uow, org_id):
        raise NotFound("org", org_id)
    user = await uow.scalar(sa.select(User).where(users.c.org_id == org_id, users.c.email == email.lower()))
    if user is None:
        user = await create_user(uow, org_id, email, name="casem admin", service_account=True)
        await uow.session.flush()
    api = issue_key(uow, org_id, API_KEY, "bootstrap")
    app = issue_key(uow, org_id, APP_KEY, "bootstrap", user_id=user.id)
    return BootstrapCredentials(org_id, user.id, api.secret, app.secret)


# -- reads behind /api/v2/users and /api/v2/team ----------------------------------------------
PAGE_SIZE_MAX = 100
USER_SORTS = {"name": users.c.name, "email": users.c.email, "handle": users.c.handle}
USER_SORTS |= {"created_at": users.c.created_at, "modified_at": users.c.modified_at, "status": users.c.disabled}
USER_STATUSES = {"active": False, "disabled": True}  # no invitations here: nobody is ever "Pending"


@dataclass(frozen=True)
class Page:
    number: int  # 0-based, as Datadog's page[number]
    size: int


def page_of(number: int | None, size: int | None, default_size: int = 10) -> Page:
    number = 0 if number is None else number
    size = default_size if size is None else size
    if not 0 <= number <= MAX_PAGE_NUMBER:
        raise InvalidInput(f"page[number] must be between 0 and {MAX_PAGE_NUMBER}")
    if not 1 <= size <= PAGE_SIZE_MAX:
        raise InvalidInput(f"page[size] must be between 1 and {PAGE_SIZE_MAX}")
    return Page(number, size)


# A name, handle, email or description filter longer than any stored value cannot match; and SQLite refuses a LIKE
# pattern over 50,000 bytes with an error, which would otherwise surface as a 500.
TEXT_FILTER_MAX = 1000


def like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere (case-insensitive, its wildcards escaped)."""
    if len(text) > TEXT_FILTER_MAX:
        raise InvalidInput(
            f"the text filter is {len(text):,} characters long; at most {TEXT_FILTER_MAX:,} are searched"
        )
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def get_user(uow: UnitOfWork, org_id: str, user_id: str) -> User:
    if not UUID_RE.match(user_id):
        raise NotFound("user", user_id)  # Datadog answers 404, not 400, for an id that cannot exist
    return await uow.get(User, org_id, user_id.lower(), resource="user")


async def list_users(
    uow: UnitOfWork,
    org_id: str,
    page: Page,
    *,
    sort: str | None = None,
    sort_dir: str | None = None,
    text: str | None = None,
    statuses: str | None = None,
) -> tuple[list[User], int, int]:
    """One page of the org's users, with the org's total and the filtered total."""
    in_org = users.c.org_id == org_id
    conditions: list[Any] = [in_org]
    if text:
        pattern = like_pattern(text)
        conditions.append(
            sa.or_(
                *(sa.func.lower(c).like(pattern, escape="\\") for c in (users.c.email, users.c.handle, users.c.name))
            )
        )
    if statuses:
        wanted = [s.strip().lower() for s in statuses.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in USER_STATUSES and s != "pending"]
        if unknown:
            raise InvalidInput(f"filter[status] {unknown[0]!r} is not one of Active, Pending, Disabled")
        conditions.append(users.c.disabled.in_([USER_STATUSES[s] for s in wanted if s in USER_STATUSES]))
    descending = sort_dir == "desc"
    if sort_dir not in (None, "asc", "desc"):
        raise InvalidInput("sort_dir must be asc or desc")
    field = sort or "name"
    if field.startswith("-"):
        field, descending = field[1:], True
    column = USER_SORTS.get(field)
    if column is None:
        raise InvalidInput(f"sort by {field!r} is not supported; use one of {', '.join(USER_SORTS)}")
    order = [column.desc() if descending else column.asc(), users.c.id]
    total = await uow.scalar(sa.select(sa.func.count()).select_from(users).where(in_org))
    filtered = await uow.scalar(sa.select(sa.func.count()).select_from(users).where(*conditions))
    found = await uow.scalars(
        sa.select(User).where(*conditions).order_by(*order).limit(page.size).offset(page.number * page.size)
    )
    return found, int(total or 0), int(filtered or 0)


async def get_team(uow: UnitOfWork, org_id: str, team_id: str) -> Team:
    if not UUID_RE.match(team_id):
        raise NotFound("team", team_id)
    return await uow.get(Team, org_id, team_id.lower(), resource="team")


TEAM_SORTS = {"name", "-name", "user_count", "-user_count"}


async def list_teams(
    uow: UnitOfWork,
    org_id: str,
    page: Page,
    *,
    sort: str | None = None,
    keyword: str | None = None,
    only: list[str] | None = None,
) -> tuple[list[Team], int]:
    """One page of the org's teams (`only`: of these ids) and the total matching. user_count sorts by name."""
    if sort is not None and sort not in TEAM_SORTS:
        raise InvalidInput(f"sort must be one of {', '.join(sorted(TEAM_SORTS))}")
    conditions: list[Any] = [teams.c.org_id == org_id]
    if only is not None:
        conditions.append(teams.c.id.in_(only))
    if keyword:
        pattern = like_pattern(keyword)
        columns = (teams.c.name, teams.c.handle, teams.c.description)
        conditions.append(sa.or_(*(sa.func.lower(c).like(pattern, escape="\\") for c in columns)))
    descending = sort == "-name"
    order = [teams.c.name.desc() if descending else teams.c.name.asc(), teams.c.id]
    total = await uow.scalar(sa.select(sa.func.count()).select_from(teams).where(*conditions))
    found = await uow.scalars(
        sa.select(Team).where(*conditions).order_by(*order).limit(page.size).offset(page.number * page.size)
    )
    return found, int(total or 0)


# -- disabling users, changing and deleting teams, team memberships ---------------------------------------------


async def disable_user(uow: UnitOfWork, org_id: str, user_id: str, actor_id: str | None) -> User:
    user = await get_user(uow, org_id, user_id)
    user.disable(actor_id)
    uow.after_commit(forget_principals)  # their application keys, remembered by this process (casem.app.auth)
    return user


async def update_team(uow: UnitOfWork, org_id: str, team_id: str, actor_id: str | None, **changes: Any) -> Team:
    """PATCH /api/v2/team/{id}: handle and name are required by Datadog's model, the rest optional."""
    team = await get_team(uow, org_id, team_id)
    handle, name = changes.get("handle", team.handle), changes.get("name", team.name)
    if not isinstance(handle, str) or not TEAM_HANDLE.match(handle):
        raise InvalidInput(
            "handle must be 1 to 195 letters, digits, '.', '_' or '-', starting with a letter or digit",
            "/data/attributes/handle",
        )
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput("name must be a non-empty string of at most 200 characters", "/data/attributes/name")
    if handle != team.handle:
        taken = await uow.scalar(
            sa.select(teams.c.id).where(teams.c.org_id == org_id, teams.c.handle == handle, teams.c.id != team.id)
        )
        if taken:
            raise Conflict(f"a team with handle {handle!r} already exists in this org")
    team.update(actor_id, **{**changes, "handle": handle, "name": name})
    return team


async def delete_team(uow: UnitOfWork, org_id: str, team_id: str, actor_id: str | None) -> None:
    team = await get_team(uow, org_id, team_id)
    team.record_deleted(actor_id)
    await uow.execute(sa.delete(team_memberships).where(team_memberships.c.team_id == team.id))
    await uow.session.delete(team)


@dataclass(frozen=True)
class Membership:
    team_id: str
    user_id: str
    role: str | None
    created_at: Any

    @property
    def id(self) -> str:
        """Datadog's membership id is opaque: casem's is the team and the user it joins."""
        return f"{self.team_id}:{self.user_id}"


MEMBER_ROLES = ("admin",)
MEMBERSHIP_SORTS = {
    "name": users.c.name,
    "handle": users.c.handle,
    "email": users.c.email,
    "manager_name": users.c.name,  # casem keeps no managers: ordered by name
}


def _role(value: Any, pointer: str = "/data/attributes/role") -> str | None:
    if value is not None and value not in MEMBER_ROLES:
        raise InvalidInput(f"invalid value {value!r}: role is admin or null", pointer)
    return value


async def _membership(uow: UnitOfWork, team_id: str, user_id: str) -> Membership | None:
    row = (
        await uow.execute(
            sa.select(team_memberships).where(
                team_memberships.c.team_id == team_id, team_memberships.c.user_id == user_id
            )
        )
    ).first()
    return Membership(row.team_id, row.user_id, row.role, row.created_at) if row else None


async def add_member(
    uow: UnitOfWork,
    org_id: str,
    team_id: str,
    user_id: Any,
    role: Any,
    actor_id: str | None,
    *,
    pointer: str = "/data/relationships/user/data/id",
) -> Membership:
    team = await get_team(uow, org_id, team_id)
    if not isinstance(user_id, str) or not user_id:
        raise InvalidInput("the member is named by relationships.user.data.id", pointer)
    if not UUID_RE.match(user_id):
        raise NotFound("user", user_id, pointer)
    user = await uow.scalar(sa.select(User).where(users.c.id == user_id.lower(), users.c.org_id == org_id))
    if user is None:
        raise NotFound("user", user_id, pointer)
    if await _membership(uow, team.id, user.id) is not None:
        raise Conflict(f"user {user.id} is already a member of team {team.handle}")
    membership = Membership(team.id, user.id, _role(role), datetime.now(UTC))
    await uow.execute(
        sa.insert(team_memberships).values(
            team_id=team.id, user_id=user.id, org_id=org_id, role=membership.role, created_at=membership.created_at
        )
    )
    team.record_member("added", user.id, membership.role, actor_id)
    return membership


async def update_member(
    uow: UnitOfWork, org_id: str, team_id: str, user_id: str, role: Any, actor_id: str | None
) -> Membership:
    team = await get_team(uow, org_id, team_id)
    found = await _membership(uow, team.id, user_id.lower())
    if found is None:
        raise NotFound("team membership", user_id)
    role = _role(role)
    await uow.execute(
        sa.update(team_memberships)
        .where(team_memberships.c.team_id == team.id, team_memberships.c.user_id == found.user_id)
        .values(role=role)
    )
    team.record_member("changed", found.user_id, role, actor_id)
    return Membership(found.team_id, found.user_id, role, found.created_at)


async def remove_member(uow: UnitOfWork, org_id: str, team_id: str, user_id: str, actor_id: str | None) -> None:
    team = await get_team(uow, org_id, team_id)
    found = await _membership(uow, team.id, user_id.lower())
    if found is None:
        raise NotFound("team membership", user_id)
    await uow.execute(
        sa.delete(team_memberships).where(
            team_memberships.c.team_id == team.id, team_memberships.c.user_id == found.user_id
        )
    )
    team.record_member("removed", found.user_id, found.role, actor_id)


async def team_members(
    uow: UnitOfWork, org_id: str, team_id: str, page: Page, *, sort: str | None = None, keyword: str | None = None
) -> tuple[list[tuple[Membership, User]], int]:
    team = await get_team(uow, org_id, team_id)
    field = (sort or "name").lstrip("-")
    column = MEMBERSHIP_SORTS.get(field)
    if column is None:
        raise InvalidInput(f"sort by {sort!r} is not supported; use one of {', '.join(MEMBERSHIP_SORTS)}")
    conditions: list[Any] = [team_memberships.c.team_id == team.id, users.c.id == team_memberships.c.user_id]
    if keyword:
        pattern = like_pattern(keyword)
        conditions.append(
            sa.or_(
                *(sa.func.lower(c).like(pattern, escape="\\") for c in (users.c.email, users.c.handle, users.c.name))
            )
        )
    order = column.desc() if (sort or "").startswith("-") else column.asc()
    total = await uow.scalar(sa.select(sa.func.count()).select_from(team_memberships.join(users)).where(*conditions))
    rows = (
        await uow.execute(
            sa.select(team_memberships, User)
            .join(User, users.c.id == team_memberships.c.user_id)
            .where(*conditions)
            .order_by(order, users.c.id)
            .limit(page.size)
            .offset(page.number * page.size)
        )
    ).all()
    return [(Membership(r.team_id, r.user_id, r.role, r.created_at), r.User) for r in rows], int(total or 0)


async def user_memberships(uow: UnitOfWork, org_id: str, user_id: str) -> list[tuple[Membership, Team]]:
    user = await get_user(uow, org_id, user_id)
    rows = (
        await uow.execute(
            sa.select(team_memberships, Team)
            .join(Team, teams.c.id == team_memberships.c.team_id)
            .where(team_memberships.c.user_id == user.id, teams.c.org_id == org_id)
            .order_by(teams.c.name, teams.c.id)
        )
    ).all()
    return [(Membership(r.team_id, r.user_id, r.role, r.created_at), r.Team) for r in rows]


async def member_counts(uow: UnitOfWork, team_ids: list[str]) -> dict[str, int]:
    if not team_ids:
        return {}
    rows = await uow.execute(
        sa.select(team_memberships.c.team_id, sa.func.count())
        .where(team_memberships.c.team_id.in_(team_ids))
        .group_by(team_memberships.c.team_id)
    )
    return {team_id: n for team_id, n in rows.all()}


async def teams_of(uow: UnitOfWork, org_id: str, user_id: str) -> list[str]:
    rows = await uow.execute(
        sa.select(team_memberships.c.team_id).where(
            team_memberships.c.user_id == user_id, team_memberships.c.org_id == org_id
        )
    )
    return [row.team_id for row in rows]
