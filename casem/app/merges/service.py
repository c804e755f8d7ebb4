"""Merge requests: validated and recorded here; the caseworker's CaseMergeWorkflow carries them out."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import case_entity_links, case_merge_progress, case_merges, cases
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.adapters.workflows.contracts import MergeRequest
from casem.app.cases.service import get_case
from casem.app.ids import require_uuid
from casem.domain.errors import Conflict, NotFound
from casem.domain.events import utcnow
from casem.domain.merges import MergeStatus, merge_workflow_id, validate_duplicates

DUPLICATES = "/data/relationships/duplicates/data"


@dataclass
class MergeView:
    row: Any
    progress: list[Any] = field(default_factory=list)


async def insert_merge(uow: UnitOfWork, request: MergeRequest, status: MergeStatus = MergeStatus.PENDING) -> None:
    await uow.execute(
        sa.insert(case_merges).values(
            id=request.merge_id,
            org_id=request.org_id,
            primary_case_id=request.primary_case_id,
            duplicate_ids=list(request.duplicate_ids),
            status=status.value,
            source=request.source,
            workflow_id=merge_workflow_id(request.merge_id),
            requested_by_id=request.requested_by_id,
            created_at=utcnow(),
        )
    )


async def _merged_into(uow: UnitOfWork, case_ids: list[str]) -> dict[str, str]:
    """case id → the key of the primary it was merged into, for those of `case_ids` that were."""
    links = case_entity_links.c
    rows = await uow.execute(
        sa.select(links.parent_entity_id, cases.c.key)
        .join(cases, cases.c.id == links.child_entity_id, isouter=True)
        .where(links.parent_entity_type == "CASE", links.parent_entity_id.in_(case_ids), links.merge_id.is_not(None))
    )
    return {row.parent_entity_id: row.key or "a purged case" for row in rows}


async def request_merge(
    uow: UnitOfWork, tenant: str, org_id: str, actor_id: str, case_id: str, duplicate_refs: list[str]
) -> MergeRequest:
    """Check the cases (another org's are not found) and record the merge, PENDING, in the caller's unit of work."""
    primary = await get_case(uow, org_id, case_id)
    duplicates = [await get_case(uow, org_id, ref) for ref in duplicate_refs]
    ids = validate_duplicates(primary.id, [d.id for d in duplicates], DUPLICATES)
    merged = await _merged_into(uow, [primary.id, *ids])
    if primary.id in merged:
        raise Conflict(f"{primary.key} was merged into {merged[primary.id]}: merge into that case instead")
    taken = [f"{d.key} (into {merged[d.id]})" for d in duplicates if d.id in merged]
    if taken:
        raise Conflict(f"already merged: {', '.join(taken)}")
    request = MergeRequest(tenant, org_id, str(uuid.uuid4()), primary.id, ids, actor_id, "api")
    await insert_merge(uow, request)
    return request


async def pending_merges(uow: UnitOfWork, tenant: str, older_than: datetime) -> list[MergeRequest]:
    """Merges still PENDING since before `older_than`: accepted, but their workflow never began (the process
    that recorded them stopped before starting it)."""
    rows = await uow.execute(
        sa.select(case_merges)
        .where(case_merges.c.status == MergeStatus.PENDING.value, case_merges.c.created_at < older_than)
        .order_by(case_merges.c.created_at)
    )
    return [
        MergeRequest(
            tenant,
            row.org_id,
            row.id,
            row.primary_case_id,
            list(row.duplicate_ids),
            row.requested_by_id,
            row.source,
        )
        for row in rows
    ]


async def mark_unstarted(uow: UnitOfWork, merge_id: str, detail: str) -> None:
    await uow.execute(
        sa.update(case_merges)
        .where(case_merges.c.id == merge_id, case_merges.c.status == MergeStatus.PENDING.value)
        .values(status=MergeStatus.FAILED.value, detail=detail)
    )


async def get_merge(uow: UnitOfWork, org_id: str, merge_id: str) -> MergeView:
    ident = require_uuid(merge_id, "merge_id")
    row = (
        await uow.execute(sa.select(case_merges).where(case_merges.c.id == ident, case_merges.c.org_id == org_id))
    ).first()
    if row is None:
        raise NotFound("merge", merge_id)
    progress = (
        await uow.execute(
            sa.select(case_merge_progress)
            .where(case_merge_progress.c.merge_id == ident)
            .order_by(case_merge_progress.c.done_at)
        )
    ).all()
    return MergeView(row, list(progress))
