"""Project paging rules (casem's own): which cases of a project page which on-call team. The rule lives in the
on-call tenant beside the team's routing; the project it names lives in case-management.

PUT/GET/DELETE /api/v2/casem/projects/{project_id}/paging
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import oncall_project_paging
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.oncall.directory import Directory
from casem.app.projects.service import get_project
from casem.domain.errors import NotFound
from casem.domain.events import utcnow
from casem.domain.oncall import PagingRule, parse_paging_rule


def _rule(row: Any) -> PagingRule:
    return PagingRule(row.project_id, row.org_id, row.team_id, row.query, row.urgency, row.enabled)


async def paging_rule_for(uow: UnitOfWork, org_id: str, project_id: str) -> PagingRule | None:
    row = (
        await uow.execute(
            sa.select(oncall_project_paging).where(
                oncall_project_paging.c.project_id == project_id, oncall_project_paging.c.org_id == org_id
            )
        )
    ).first()
    return _rule(row) if row is not None else None


async def put_paging_rule(
    uow: UnitOfWork,
    people: UnitOfWork,
    directory: Directory,
    org_id: str,
    actor_id: str | None,
    project_id: str,
    attrs: dict[str, Any],
) -> PagingRule:
    """`people`: the case-management unit of work, where the project is."""
    project = await get_project(people, org_id, project_id)
    rule = parse_paging_rule(attrs, project.id, org_id)
    await directory.team(rule.team_id, "/data/attributes/team_id")
    values = {
        "team_id": rule.team_id,
        "query": rule.query,
        "urgency": rule.urgency,
        "enabled": rule.enabled,
        "modified_by_id": actor_id,
        "modified_at": utcnow(),
    }
    updated = await uow.execute(
        sa.update(oncall_project_paging).where(oncall_project_paging.c.project_id == project.id).values(**values)
    )
    if not updated.rowcount:
        await uow.execute(sa.insert(oncall_project_paging).values(project_id=project.id, org_id=org_id, **values))
    return rule


async def get_paging_rule(uow: UnitOfWork, people: UnitOfWork, org_id: str, project_id: str) -> PagingRule:
    project = await get_project(people, org_id, project_id)
    rule = await paging_rule_for(uow, org_id, project.id)
    if rule is None:
        raise NotFound("paging rule of project", project.id)
    return rule


async def delete_paging_rule(uow: UnitOfWork, people: UnitOfWork, org_id: str, project_id: str) -> None:
    rule = await get_paging_rule(uow, people, org_id, project_id)
    await uow.execute(sa.delete(oncall_project_paging).where(oncall_project_paging.c.project_id == rule.project_id))
