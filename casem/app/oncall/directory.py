"""Users and teams as on-call sees them.

Users, teams and team memberships live in the case-management tenant (authentication reads them there, and the
Users and Teams APIs serve them from there). The on-call tenant refers to them by id: ids are UUIDs made once and
never reused, so the same id names the same person in both tenants, and nothing is copied that could drift. A
foreign key cannot reach across two databases, so on-call use cases check every id they are given here, on
write, and skip what no longer resolves on read (a deleted team, a disabled user is never paged).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from casem.adapters.storage.tables import notification_endpoints, orgs, team_memberships, teams, users
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.ids import UUID_RE
from casem.domain.errors import NotFound
from casem.domain.identity import Team, User


class Directory:
    """Read-only lookups in the case-management tenant, scoped to one org."""

    def __init__(self, uow: UnitOfWork, org_id: str) -> None:
        self.uow = uow
        self.org_id = org_id

    async def org_name(self) -> str:
        return str(await self.uow.scalar(sa.select(orgs.c.name).where(orgs.c.id == self.org_id)) or self.org_id)

    async def users(self, ids: Iterable[str]) -> dict[str, User]:
        wanted = {i.lower() for i in ids if UUID_RE.match(i)}
        if not wanted:
            return {}
        found = await self.uow.scalars(sa.select(User).where(users.c.id.in_(wanted), users.c.org_id == self.org_id))
        return {u.id: u for u in found}

    async def teams(self, ids: Iterable[str]) -> dict[str, Team]:
        wanted = {i.lower() for i in ids if UUID_RE.match(i)}
        if not wanted:
            return {}
        found = await self.uow.scalars(sa.select(Team).where(teams.c.id.in_(wanted), teams.c.org_id == self.org_id))
        return {t.id: t for t in found}

    async def require_users(self, references: Sequence[tuple[str, str]]) -> None:
        """Every (user id, pointer) names a user of the org: else a 404 naming the id and the field."""
        found = await self.users(ident for ident, _ in references)
        for ident, pointer in references:
            if ident.lower() not in found:
                raise NotFound("user", ident, pointer)

    async def require_teams(self, references: Sequence[tuple[str, str]]) -> None:
        found = await self.teams(ident for ident, _ in references)
        for ident, pointer in references:
            if ident.lower() not in found:
                raise NotFound("team", ident, pointer)

    async def team(self, team_id: str, pointer: str | None = None) -> Team:
        found = (await self.teams([team_id])).get(team_id.lower())
        if found is None:
            raise NotFound("team", team_id, pointer)
        return found

    async def team_by_handle(self, handle: str, pointer: str | None = None) -> Team:
        found = await self.uow.scalar(sa.select(Team).where(teams.c.org_id == self.org_id, teams.c.handle == handle))
        if found is None:
            raise NotFound("team", handle, pointer)
        return found

    async def user(self, user_id: str, pointer: str | None = None) -> User:
        found = (await self.users([user_id])).get(user_id.lower())
        if found is None:
            raise NotFound("user", user_id, pointer)
        return found

    async def members(self, team_id: str) -> list[str]:
        """The team's members, in the order they joined."""
        rows = await self.uow.execute(
            sa.select(team_memberships.c.user_id)
            .where(team_memberships.c.team_id == team_id, team_memberships.c.org_id == self.org_id)
            .order_by(team_memberships.c.created_at, team_memberships.c.user_id)
        )
        return [row.user_id for row in rows]

    async def teams_connector(self, name: str) -> str | None:
        """The URL of the org's Microsoft Teams connector of that name (a notification endpoint)."""
        url = await self.uow.scalar(
            sa.select(notification_endpoints.c.url).where(
                notification_endpoints.c.org_id == self.org_id,
                notification_endpoints.c.kind == "MS_TEAMS_CHANNEL",
                notification_endpoints.c.name == name,
            )
        )
        return str(url) if url else None
