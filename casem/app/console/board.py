"""A project's board: its cases in one column per status, the most recently changed first."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from casem.adapters.storage.tables import cases
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.console.case_list import names_of
from casem.app.projects.service import get_project, list_projects
from casem.domain.cases import Case, Status
from casem.domain.projects import Project

CARDS_PER_COLUMN = 100


@dataclass(frozen=True)
class Column:
    status: Status
    cards: list[Case]
    total: int


@dataclass(frozen=True)
class Board:
    project: Project | None
    projects: list[Project]
    columns: list[Column]
    names: dict[str, str]


async def load_board(uow: UnitOfWork, org_id: str, project_ref: str | None) -> Board:
    projects = await list_projects(uow, org_id)
    project: Project | None = None
    if project_ref:
        by_key = {p.key: p for p in projects}
        project = by_key.get(project_ref.upper()) or await get_project(uow, org_id, project_ref)
    elif projects:
        project = projects[0]
    if project is None:
        return Board(None, projects, [], {})
    columns = []
    in_project = sa.and_(cases.c.org_id == org_id, cases.c.project_id == project.id, cases.c.archived_at.is_(None))
    for status in Status:
        where = sa.and_(in_project, cases.c.status == status.value)
        total = int(await uow.scalar(sa.select(sa.func.count()).select_from(cases).where(where)) or 0)
        cards = await uow.scalars(
            sa.select(Case)
            .where(where)
            .order_by(sa.func.coalesce(cases.c.modified_at, cases.c.created_at).desc(), cases.c.id)
            .limit(CARDS_PER_COLUMN)
        )
        columns.append(Column(status, cards, total))
    names = await names_of(uow, org_id, {c.assignee_id for col in columns for c in col.cards if c.assignee_id})
    return Board(project, projects, columns, names)
