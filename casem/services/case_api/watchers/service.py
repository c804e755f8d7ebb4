"""Case watchers: users of the case's org who follow it. Watching is idempotent; so is unwatching."""

from __future__ import annotations

import sqlalchemy as sa

from casem.adapters.storage.tables import watchers
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.domain.cases import Case
from casem.domain.events import DomainEvent
from casem.domain.identity import Watcher
from casem.services.case_api.cases.service import check_user, get_case
from casem.services.case_api.jsonapi import require_uuid


def _watcher_event(case: Case, kind: str, actor_id: str, user_id: str) -> DomainEvent:
    """A case event: the unit of work writes its outbox row and its WATCHER_CHANGE cell.

    It is recorded on the Watcher row being added or deleted rather than on the case: the case is not
    modified, and the session only weakly references clean objects, so events on it could be collected
    away before commit. New and deleted objects are held until the flush.
    """
    return DomainEvent(
        type=f"case.watcher_{kind}",
        org_id=case.org_id,
        actor_id=actor_id,
        subject_id=case.id,
        case_id=case.id,
        data={"user_id": user_id, "key": case.key, "project_id": case.project_id},
    )


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
    watcher = Watcher(case_id=case.id, user_id=user_id, org_id=org_id)
    watcher.record(_watcher_event(case, "added", actor_id, user_id))
    uow.add(watcher)
    return True


async def unwatch(uow: UnitOfWork, org_id: str, actor_id: str, case_id: str, user_uuid: str) -> bool:
    """Stop the user watching the case; False (and no event) when they were not watching."""
    case, user_id = await _case_and_user(uow, org_id, case_id, user_uuid)
    existing = await _existing(uow, case.id, user_id)
    if existing is None:
        return False
    existing.record(_watcher_event(case, "removed", actor_id, user_id))
    await uow.session.delete(existing)
    return True


async def list_watchers(uow: UnitOfWork, org_id: str, case_id: str) -> list[Watcher]:
    case = await get_case(uow, org_id, case_id)
    return await uow.scalars(
        sa.select(Watcher)
        .where(watchers.c.case_id == case.id, watchers.c.org_id == org_id)
        .order_by(watchers.c.created_at, watchers.c.user_id)
    )
