"""What the console's case page shows, read in one unit of work: the case and everything around it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import case_entity_links, case_merge_progress, case_merges, cases
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.attachments.service import list_attachments
from casem.app.case_links.service import list_links
from casem.app.case_types.service import list_case_types
from casem.app.cases.service import attribute_configs, get_case
from casem.app.console.case_list import names_of
from casem.app.identity.service import list_users, page_of
from casem.app.projects.service import get_project
from casem.app.timeline.service import list_timeline
from casem.app.watchers.service import list_watchers
from casem.domain.attachments import Attachment
from casem.domain.case_links import CaseLink
from casem.domain.case_types import CaseType, CustomAttributeConfig
from casem.domain.cases import Case
from casem.domain.identity import User, Watcher
from casem.domain.projects import Project
from casem.domain.timeline import TimelineCell

TIMELINE_PAGE = 200


@dataclass
class MergeProgress:
    id: str
    status: str
    duplicates: list[str]  # keys
    done: int
    detail: str | None


@dataclass
class CasePage:
    case: Case
    project: Project
    case_type: CaseType | None
    timeline: list[TimelineCell]
    authors: dict[str, User]
    watchers: list[Watcher]
    attachments: list[Attachment]
    links: list[CaseLink]
    attribute_configs: dict[str, CustomAttributeConfig]
    people: list[User]
    names: dict[str, str]
    merges: list[MergeProgress] = field(default_factory=list)
    merged_into: str | None = None  # key of the primary this case was merged into
    case_keys: dict[str, str] = field(default_factory=dict)  # case id → key, for links and merges

    def name(self, user_id: str | None) -> str:
        if not user_id:
            return "casem"
        return self.names.get(user_id) or "someone"


async def merges_of(uow: UnitOfWork, org_id: str, case_id: str) -> list[Any]:
    rows = (
        await uow.execute(
            sa.select(case_merges)
            .where(case_merges.c.org_id == org_id, case_merges.c.primary_case_id == case_id)
            .order_by(case_merges.c.created_at.desc())
            .limit(10)
        )
    ).all()
    done: dict[str, int] = {}
    if rows:
        counted = await uow.execute(
            sa.select(case_merge_progress.c.merge_id, sa.func.count())
            .where(case_merge_progress.c.merge_id.in_([r.id for r in rows]))
            .group_by(case_merge_progress.c.merge_id)
        )
        done = {merge_id: int(n) for merge_id, n in counted}
    return [(row, done.get(row.id, 0)) for row in rows]


async def keys_of(uow: UnitOfWork, org_id: str, case_ids: set[str]) -> dict[str, str]:
    if not case_ids:
        return {}
    rows = await uow.execute(
        sa.select(cases.c.id, cases.c.key).where(cases.c.org_id == org_id, cases.c.id.in_(case_ids))
    )
    return {r.id: r.key for r in rows}


async def load_case_page(uow: UnitOfWork, org_id: str, case_ref: str) -> CasePage:
    case = await get_case(uow, org_id, case_ref)
    project = await get_project(uow, org_id, case.project_id)
    types = {t.id: t for t in await list_case_types(uow, org_id)}
    timeline = await list_timeline(uow, org_id, case.id, page_size=TIMELINE_PAGE, ascending=True)
    watchers = await list_watchers(uow, org_id, case.id)
    files = await list_attachments(uow, org_id, case.id)
    links = await list_links(uow, org_id, "CASE", case.id, None)
    configs = await attribute_configs(uow, org_id, case.type_id)
    people, _total, _filtered = await list_users(uow, org_id, page_of(0, 100))
    merge_rows = await merges_of(uow, org_id, case.id)
    # A merge leaves a DUPLICATES link from this case (the duplicate) to the primary, carrying its merge id.
    links_c = case_entity_links.c
    merged_into = await uow.scalar(
        sa.select(cases.c.key)
        .join(case_entity_links, links_c.child_entity_id == cases.c.id)
        .where(
            links_c.org_id == org_id,
            links_c.parent_entity_type == "CASE",
            links_c.parent_entity_id == case.id,
            links_c.merge_id.is_not(None),
        )
    )
    related = {case.id}
    for link in links:
        related.update({link.parent_entity_id, link.child_entity_id})
    for row, _done in merge_rows:
        related.update(row.duplicate_ids)
    case_keys = await keys_of(uow, org_id, {i for i in related if len(i) == 36})
    merges = [
        MergeProgress(row.id, row.status, [case_keys.get(d, d) for d in row.duplicate_ids], done, row.detail)
        for row, done in merge_rows
    ]
    user_ids = {c.author_id for c in timeline.cells if c.author_id}
    user_ids |= {w.user_id for w in watchers} | {case.assignee_id or "", case.created_by_id or ""}
    user_ids |= {a.uploaded_by_id or "" for a in files}
    names = await names_of(uow, org_id, {u for u in user_ids if u})
    return CasePage(
        case=case,
        project=project,
        case_type=types.get(case.type_id),
        timeline=timeline.cells,
        authors=timeline.authors,
        watchers=watchers,
        attachments=files,
        links=links,
        attribute_configs=configs,
        people=people,
        names=names,
        merges=merges,
        merged_into=merged_into,
        case_keys=case_keys,
    )
