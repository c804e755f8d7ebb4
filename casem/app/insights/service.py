"""Case insights: add (or re-point) and remove the outside resources attached to a case."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import case_insights
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.cases.service import get_case
from casem.domain.cases import Case
from casem.domain.insights import CaseInsight, validate_insights


async def list_insights(uow: UnitOfWork, case_id: str) -> list[CaseInsight]:
    return await uow.scalars(
        sa.select(CaseInsight)
        .where(case_insights.c.case_id == case_id)
        .order_by(case_insights.c.created_at, case_insights.c.type, case_insights.c.resource_id)
    )


async def add_insights(uow: UnitOfWork, org_id: str, actor_id: str | None, case_id: str, items: list[Any]) -> Case:
    """Attach each insight; one already attached keeps its place and takes the ref sent."""
    wanted = validate_insights(items)
    case = await get_case(uow, org_id, case_id)
    existing = {(i.type, i.resource_id): i for i in await list_insights(uow, case.id)}
    for item in wanted:
        found = existing.get((item.type, item.resource_id))
        if found is not None:
            found.point_to(item.ref, actor_id)
            continue
        uow.add(
            CaseInsight.add(
                actor_id=actor_id,
                case_id=case.id,
                org_id=org_id,
                type=item.type,
                resource_id=item.resource_id,
                ref=item.ref,
            )
        )
    return case


async def remove_insights(uow: UnitOfWork, org_id: str, actor_id: str | None, case_id: str, items: list[Any]) -> Case:
    """Detach each insight named by type and resource id; one not attached is skipped (idempotent)."""
    wanted = validate_insights(items)
    case = await get_case(uow, org_id, case_id)
    existing = {(i.type, i.resource_id): i for i in await list_insights(uow, case.id)}
    for item in wanted:
        found = existing.get((item.type, item.resource_id))
        if found is not None:
            found.remove(actor_id)
            await uow.session.delete(found)
    return case
