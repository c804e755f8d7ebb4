"""Case watchers: users of the case's org who follow it. Watching is idempotent; so is unwatching."""

from __future__ import annotations

import sqlalchemy as sa

from casem.adapters.storage.tables import watchers
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases.service import check_user, get_case
from casem.app.ids import require_uuid
from casem.domain.cases import Case
from casem.domain.identity import Watcher


async def _case_and_user(uow: UnitOfWork, org_id: str, case_id: str, user_uuid: str) -> tuple[Case, str]:
    user_id = require_uuid(user_uuid, "user_uuid")
    case = await get_case(uow, org_id, case_id)
    # Another org's user is indistinguishable from an unknown one: 404.
    return case, await check_user(uow, org_id, user_id, "user_uuid")


async def _existing(uow: UnitOfWork, case_id: str, user_id: str) -> Watcher | None:
    return await uow.scalar(sa.select(Watcher).where(watchers.c.case_id == case_id, watchers.c.user_id == user_id))


async def watch(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, user_uuid: str) -> bool:
    """Make the user watch the case; False (and no event) when they already do."""
    case, user_id = await _case_and_user(uow, org_id, case_id, user_uuid)
    if await _existing(uow, case.id, user_id) is not None:
        return False
    uow.add(Watcher.add(case, user_id, actor_id))
    return True


async def unwatch(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, user_uuid: str) -> bool:
    """Stop the user watching the case; False (and no event) when they were not watching."""
    case, user_id = await _case_and_user(uow, org_id, case_id, user_uuid)
    existing = await _existing(uow, case.id, user_id)
    if existing is None:
        return False
    existing.remove(case, actor_id)
    await uow.session.delete(existing)
    return True


async def list_watchers(uow: UnitOfWork, org_id: str, case_id: str) -> list[Watcher]:
    case = await get_case(uow, org_id, case_id)
    return await uow.scalars(
        sa.select(Watcher)
        .where(watchers.c.case_id == case.id, watchers.c.org_id == org_id)
        .order_by(watchers.c.created_at, watchers.c.user_id)
    )
