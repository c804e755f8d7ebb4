"""The merge activities: every database effect of CaseMergeWorkflow.

Exactly once: each duplicate is merged in ONE transaction that also writes its `case_merge_progress`
row (primary key merge id + duplicate id). A retried activity (the worker died after the commit but
before reporting it) finds the row and only reports what was done; a crash before the commit rolls
everything back. So however often a step runs, each cell is copied once and each duplicate closed once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from temporalio import activity
from temporalio.exceptions import ApplicationError

from casem.adapters.storage.tables import case_entity_links, case_merge_progress, case_merges, timeline_cells, watchers
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.adapters.workflows.contracts import MergeRequest, StepResult
from casem.app.context import AppContext
from casem.app.merges.service import insert_merge
from casem.domain.case_links import CaseLink
from casem.domain.cases import Case, Status
from casem.domain.events import utcnow
from casem.domain.identity import Watcher
from casem.domain.merges import (
    MergeStatus,
    Outcome,
    copied_content,
    new_watchers,
    resolved_reason,
    union_attributes,
)

CELL_BATCH = 500  # cells inserted per statement; the activity heartbeats between batches
PRIMARY_GONE = "PrimaryGone"  # the non-retryable error type: the workflow stops and records FAILED


@dataclass
class MergePlan:
    status: str  # RUNNING: go ahead; COMPLETED / FAILED: nothing (more) to do
    primary_key: str | None = None
    detail: str | None = None


@dataclass
class MergeStep:
    request: MergeRequest
    duplicate_id: str


@dataclass
class MergeFinish:
    request: MergeRequest
    status: str
    detail: str | None = None


async def _link_of(uow: UnitOfWork, case_id: str) -> Any:
    """The link a merge left on `case_id` (it was merged into `linked_case_id`), if any."""
    links = case_entity_links.c
    return (
        await uow.execute(
            sa.select(links.child_entity_id.label("linked_case_id"), links.merge_id).where(
                links.parent_entity_type == "CASE", links.parent_entity_id == case_id, links.merge_id.is_not(None)
            )
        )
    ).first()


async def _link_merged(uow: UnitOfWork, primary: Case, duplicate_id: str, merge_id: str) -> None:
    """The duplicate DUPLICATES the primary, with the merge's id; a DUPLICATES link someone already stated
    between them becomes the merge's (one row per link between two cases)."""
    links = case_entity_links.c
    stated = await uow.scalar(
        sa.select(CaseLink).where(
            links.org_id == primary.org_id,
            links.parent_entity_type == "CASE",
            links.parent_entity_id == duplicate_id,
            links.child_entity_type == "CASE",
            links.child_entity_id == primary.id,
            links.relationship == "DUPLICATES",
        )
    )
    if stated is not None:
        stated.merge_id = merge_id
        return
    uow.add(
        CaseLink.merged(
            id=str(uuid.uuid4()),
            org_id=primary.org_id,
            duplicate_id=duplicate_id,
            primary_id=primary.id,
            merge_id=merge_id,
        )
    )


class MergeActivities:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @activity.defn
    async def begin_merge(self, request: MergeRequest) -> MergePlan:
        """Mark the merge RUNNING (creating its row when the workflow was started without one, as the
        duplicate-detection flavor does), or FAILED when the primary cannot take duplicates."""
        async with self.ctx.uow(request.tenant) as uow:
            row = (await uow.execute(sa.select(case_merges).where(case_merges.c.id == request.merge_id))).first()
            if row is None:
                await insert_merge(uow, request)
            elif row.status in (MergeStatus.COMPLETED, MergeStatus.FAILED):
                return MergePlan(row.status, detail=row.detail)
            primary = await uow.session.get(Case, request.primary_case_id)
            detail = None
            if primary is None or primary.org_id != request.org_id:
                detail = "the primary case no longer exists"
            elif (link := await _link_of(uow, primary.id)) is not None:
                detail = f"the primary case was itself merged into {link.linked_case_id}"
            status = MergeStatus.FAILED if detail else MergeStatus.RUNNING
            values: dict[str, Any] = {"status": status.value, "detail": detail}
            if row is None or row.started_at is None:
                values["started_at"] = utcnow()
            if detail:
                values["completed_at"] = utcnow()
            await uow.execute(sa.update(case_merges).where(case_merges.c.id == request.merge_id).values(**values))
            await uow.commit()
        return MergePlan(status.value, primary.key if primary is not None and not detail else None, detail)

    @activity.defn
    async def merge_duplicate(self, step: MergeStep) -> StepResult:
        request, dup_id = step.request, step.duplicate_id
        activity.heartbeat(dup_id)
        async with self.ctx.uow(request.tenant) as uow:
            done = (
                await uow.execute(
                    sa.select(case_merge_progress).where(
                        case_merge_progress.c.merge_id == request.merge_id,
                        case_merge_progress.c.duplicate_id == dup_id,
                    )
                )
            ).first()
            if done is not None:
                return StepResult(dup_id, done.outcome, done.cells_copied, done.watchers_added, replayed=True)
            # Locked (PostgreSQL) so two merges into one primary union its attributes one after the other.
            primary = await uow.session.get(Case, request.primary_case_id, with_for_update=True)
            if primary is None or primary.org_id != request.org_id:
                raise ApplicationError("the primary case no longer exists", type=PRIMARY_GONE, non_retryable=True)
            duplicate = await uow.session.get(Case, dup_id, with_for_update=True)
            if duplicate is None or duplicate.org_id != request.org_id:
                result = StepResult(dup_id, Outcome.MISSING.value)
            elif await _link_of(uow, dup_id) is not None:
                result = StepResult(dup_id, Outcome.ALREADY_MERGED.value)
            else:
                result = await self._merge(uow, request, primary, duplicate)
            await uow.execute(
                sa.insert(case_merge_progress).values(
                    merge_id=request.merge_id,
                    duplicate_id=dup_id,
                    org_id=request.org_id,
                    outcome=result.outcome,
                    cells_copied=result.cells_copied,
                    watchers_added=result.watchers_added,
                    done_at=utcnow(),
                )
            )
            await uow.commit()
        return result

    async def _merge(self, uow: UnitOfWork, request: MergeRequest, primary: Case, duplicate: Case) -> StepResult:
        actor = request.requested_by_id
        cells = (
            await uow.execute(
                sa.select(timeline_cells)
                .where(timeline_cells.c.case_id == duplicate.id, timeline_cells.c.deleted_at.is_(None))
                .order_by(timeline_cells.c.created_at, timeline_cells.c.id)
            )
        ).all()
        copies = [
            {
                "id": str(uuid.uuid4()),
                "org_id": primary.org_id,
                "case_id": primary.id,
                "type": cell.type,
                "content": copied_content(
                    cell.content,
                    merge_id=request.merge_id,
                    case_id=duplicate.id,
                    case_key=duplicate.key,
                    cell_id=cell.id,
                    author_id=cell.author_id,
                    created_at=cell.created_at,
                ),
                # Original author and time: the primary's timeline reads as if it had happened there.
                "author_id": cell.author_id,
                "created_at": cell.created_at,
                "modified_at": cell.modified_at,
            }
            for cell in cells
        ]
        for start in range(0, len(copies), CELL_BATCH):
            await uow.session.execute(sa.insert(timeline_cells), copies[start : start + CELL_BATCH])
            activity.heartbeat(duplicate.id, start)

        have = (await uow.execute(sa.select(watchers.c.user_id).where(watchers.c.case_id == primary.id))).scalars()
        theirs = (await uow.execute(sa.select(watchers.c.user_id).where(watchers.c.case_id == duplicate.id))).scalars()
        added = new_watchers(have, theirs)
        for user_id in added:
            uow.add(Watcher.add(primary, user_id, actor))
        primary.set_attributes(union_attributes(primary.attributes, duplicate.attributes), actor)

        await _link_merged(uow, primary, duplicate.id, request.merge_id)
        duplicate.transition(Status.CLOSED.value, actor)
        duplicate.set_resolved_reason(resolved_reason(primary.key), actor)
        duplicate.record_merged_into(primary, request.merge_id, len(copies), added, actor)
        return StepResult(duplicate.id, Outcome.MERGED.value, len(copies), len(added))

    @activity.defn
    async def finish_merge(self, finish: MergeFinish) -> None:
        """Record the end state; a merge already finished keeps its first end (a retry changes nothing)."""
        async with self.ctx.uow(finish.request.tenant) as uow:
            await uow.execute(
                sa.update(case_merges)
                .where(
                    case_merges.c.id == finish.request.merge_id,
                    case_merges.c.status.notin_([MergeStatus.COMPLETED.value, MergeStatus.FAILED.value]),
                )
                .values(status=finish.status, detail=finish.detail, completed_at=utcnow())
            )
            await uow.commit()

    def all(self) -> list:  # type: ignore[type-arg]
        return [self.begin_merge, self.merge_duplicate, self.finish_merge]
