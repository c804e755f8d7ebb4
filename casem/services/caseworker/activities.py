"""The caseworker's activities: every side effect of its workflows (database, blob storage) lives here.

Activities are idempotent: Temporal retries a failed one, and a retried step must neither repeat a
timeline cell (the domain's transitions are no-ops when already applied) nor fail on work already done.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from temporalio import activity

from casem.adapters.blobs import BlobNotFound, BlobStore
from casem.adapters.blobs.port import HEAD_BYTES
from casem.adapters.storage.tables import (
    attachments,
    case_purges,
    cases,
    retention_policies,
    timeline_cells,
    watchers,
)
from casem.adapters.workflows.contracts import (
    PURGE_PER_WORKFLOW,
    AttachmentRef,
    CaseRef,
    PurgeResult,
    RetentionBatchResult,
)
from casem.app.cases.retention import RetentionPolicies, due_at, purge_deadline, purge_due_cases, retention_days_for
from casem.app.cases.service import lock_case
from casem.app.context import AppContext
from casem.domain.attachments import Attachment, AttachmentState, sniff
from casem.domain.cases import Case, Status
from casem.domain.events import utcnow
from casem.services.caseworker.scanners import Scanner

# -- inputs and results (plain dataclasses: Temporal serializes them as JSON) -------------------------


@dataclass
class Verification:
    state: str
    expires_at: str  # ISO 8601: when the retention timer fires
    detail: str | None = None


@dataclass
class ExpireInput:
    ref: AttachmentRef
    as_of: str  # the workflow's clock: the time-skipping test server moves it, not the wall clock


@dataclass
class RemoveInput:
    ref: AttachmentRef
    reason: str


@dataclass
class SweepInput:
    tenant: str
    grace_seconds: int = 3600  # blobs and uploads younger than this may be mid-upload: left alone


@dataclass
class SweepReport:
    orphan_blobs_deleted: list[str] = field(default_factory=list)
    missing_blobs_marked: list[str] = field(default_factory=list)
    unstarted: list[AttachmentRef] = field(default_factory=list)


@dataclass
class RetentionCheck:
    deadline: str | None  # None: the case is not (or no longer) due for purge
    reason: str
    retention_days: int | None = None


@dataclass
class PurgeInput:
    ref: CaseRef
    as_of: str
    workflow_id: str


@dataclass
class RetentionSweepReport:
    tenant: str
    examined: int = 0  # closed, archived cases under a retention policy
    started: list[str] = field(default_factory=list)  # case ids (not yet due) that had no running retention workflow
    due: int = 0  # cases already due: handed to batch purges instead of a workflow each
    purged: int = 0  # of those, purged by this sweep's batches


@dataclass
class RetentionSweepPage:
    """One step of a tenant's sweep: cases after `after` (by id), up to `due_limit` due ones or `max_examined`."""

    tenant: str
    as_of: str  # the sweep's workflow clock: due means due at this instant
    after: str = ""
    due_limit: int = PURGE_PER_WORKFLOW
    max_examined: int = 5000


@dataclass
class RetentionSweepStep:
    examined: int = 0
    started: list[str] = field(default_factory=list)
    due: list[str] = field(default_factory=list)
    next_after: str | None = None  # None: the tenant is done


@dataclass
class PurgeBatchInput:
    tenant: str
    case_ids: list[str]
    as_of: str
    workflow_id: str


class RetentionStarter(Protocol):
    """Starts a case's retention workflow unless one is running (TemporalCaseworker implements it)."""

    async def ensure_retention(self, tenant: str, org_id: str, case_id: str) -> bool: ...


SWEEP_PAGE = 500  # cases read per query; the sweep heartbeats the last id of each page
SWEEP_CONCURRENCY = 16  # Temporal RPCs in flight while the sweep checks a page of cases


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


class CaseworkerActivities:
    def __init__(
        self,
        ctx: AppContext,
        blobs: BlobStore,
        scanners: Sequence[Scanner] = (),
        retention: RetentionStarter | None = None,
    ) -> None:
        self.ctx = ctx
        self.blobs = blobs
        self.scanners = list(scanners)
        self.retention = retention

    # -- file lifecycle -----------------------------------------------------------------------------
    @activity.defn
    async def verify_attachment(self, ref: AttachmentRef) -> Verification:
        async with self.ctx.uow(ref.tenant, read_only=True) as uow:
            found = await uow.session.get(Attachment, ref.attachment_id)
        if found is None:
            return Verification(AttachmentState.DELETED.value, utcnow().isoformat(), "attachment row is gone")
        if found.state != AttachmentState.UPLOADED:  # a retry after the step committed
            return Verification(found.state, found.expires_at.isoformat(), found.detail)
        reason = await self._check(found)
        async with self.ctx.uow(ref.tenant) as uow:
            await lock_case(uow, ref.case_id)
            attachment = await uow.session.get(Attachment, ref.attachment_id)
            assert attachment is not None
            if reason is None:
                attachment.verify()
            else:
                attachment.reject(reason)
            await uow.commit()
        return Verification(attachment.state, attachment.expires_at.isoformat(), attachment.detail)

    async def _check(self, attachment: Attachment) -> str | None:
        digest = hashlib.sha256()
        size = 0
        head = b""
        try:
            async for chunk in self.blobs.read(attachment.blob_key):
                activity.heartbeat()
                digest.update(chunk)
                size += len(chunk)
                if len(head) < HEAD_BYTES:
                    head += chunk[: HEAD_BYTES - len(head)]
        except BlobNotFound:
            return "the stored file is missing"
        if size != attachment.size or digest.hexdigest() != attachment.sha256:
            return "checksum mismatch: the stored file differs from the upload"
        reason = sniff(head, attachment.content_type, size)
        if reason:
            return reason
        for scanner in self.scanners:
            reason = await scanner.scan(
                attachment.filename, attachment.content_type, self.blobs.read(attachment.blob_key)
            )
            if reason:
                return f"{scanner.name}: {reason}"
        return None

    @activity.defn
    async def make_available(self, ref: AttachmentRef) -> str:
        async with self.ctx.uow(ref.tenant) as uow:
            await lock_case(uow, ref.case_id)
            attachment = await uow.session.get(Attachment, ref.attachment_id)
            if attachment is None:
                return AttachmentState.DELETED.value
            attachment.make_available()
            await uow.commit()
            return attachment.state

    @activity.defn
    async def expire_attachment(self, data: ExpireInput) -> str:
        async with self.ctx.uow(data.ref.tenant) as uow:
            await lock_case(uow, data.ref.case_id)
            attachment = await uow.session.get(Attachment, data.ref.attachment_id)
            if attachment is None:
                return AttachmentState.DELETED.value
            attachment.expire(_parse(data.as_of))
            await uow.commit()
            return attachment.state

    @activity.defn
    async def remove_attachment(self, data: RemoveInput) -> str:
        """Delete the blob, then mark the row deleted: a crash in between is retried, both steps being idempotent."""
        async with self.ctx.uow(data.ref.tenant, read_only=True) as uow:
            attachment = await uow.session.get(Attachment, data.ref.attachment_id)
        if attachment is None:
            return AttachmentState.DELETED.value
        await self.blobs.delete(attachment.blob_key)
        async with self.ctx.uow(data.ref.tenant) as uow:
            await lock_case(uow, data.ref.case_id)
            attachment = await uow.session.get(Attachment, data.ref.attachment_id)
            assert attachment is not None
            attachment.delete(None, data.reason)
            await uow.commit()
            return attachment.state

    @activity.defn
    async def sweep_attachments(self, data: SweepInput) -> SweepReport:
        """Reconcile storage and database: unreferenced blobs go, rows whose blob vanished are closed."""
        report = SweepReport()
        cutoff = utcnow() - timedelta(seconds=data.grace_seconds)
        stored = {b.key: b for b in await self.blobs.list()}
        async with self.ctx.uow(data.tenant, read_only=True) as uow:
            rows = (
                await uow.execute(
                    sa.select(
                        attachments.c.id,
                        attachments.c.org_id,
                        attachments.c.case_id,
                        attachments.c.blob_key,
                        attachments.c.state,
                        attachments.c.created_at,
                    )
                )
            ).all()
        by_key = {row.blob_key: row for row in rows}
        for key, blob in stored.items():
            row = by_key.get(key)
            referenced = row is not None and row.state != AttachmentState.DELETED
            if not referenced and blob.modified_at < cutoff:
                await self.blobs.delete(key)
                report.orphan_blobs_deleted.append(key)
        live = {AttachmentState.UPLOADED, AttachmentState.VERIFIED, AttachmentState.AVAILABLE}
        for row in rows:
            if row.state not in live:
                continue
            ref = AttachmentRef(data.tenant, row.org_id, row.case_id, row.id)
            if row.blob_key not in stored:
                if row.created_at < cutoff:
                    await self.remove_attachment(RemoveInput(ref, "the stored file is missing"))
                    report.missing_blobs_marked.append(row.id)
            elif row.state == AttachmentState.UPLOADED and row.created_at < cutoff:
                report.unstarted.append(ref)
        activity.logger.info(
            "sweep: %d orphan blobs deleted, %d missing blobs marked, %d uploads without a workflow",
            len(report.orphan_blobs_deleted),
            len(report.missing_blobs_marked),
            len(report.unstarted),
        )
        return report

    # -- case retention -----------------------------------------------------------------------------
    @activity.defn
    async def retention_deadline(self, ref: CaseRef) -> RetentionCheck:
        activity.heartbeat()  # see purge_case: a dead worker's attempt is retried within the heartbeat timeout
        async with self.ctx.uow(ref.tenant, read_only=True) as uow:
            case = await uow.session.get(Case, ref.case_id)
            if case is None or case.org_id != ref.org_id:
                return RetentionCheck(None, "case not found")
            days = await retention_days_for(uow, case.org_id, case.project_id)
        deadline, reason = purge_deadline(case, days)
        return RetentionCheck(deadline.isoformat() if deadline else None, reason, days)

    @activity.defn
    async def purge_case(self, data: PurgeInput) -> PurgeResult:
        ref = data.ref
        prefix = f"{ref.org_id}/{ref.case_id}/"
        activity.heartbeat()  # a worker killed mid-purge is noticed at the heartbeat timeout, not after minutes
        async with self.ctx.uow(ref.tenant) as uow:
            done = await uow.scalar(sa.select(case_purges.c.id).where(case_purges.c.case_id == ref.case_id))
            if done is not None:
                # A retry after the commit: only the blobs may remain.
                await self._delete_blobs(prefix)
                return PurgeResult("already-purged")
            case = await uow.session.get(Case, ref.case_id, with_for_update=True)
            if case is None or case.org_id != ref.org_id:
                return PurgeResult("not-eligible")
            # Re-checked inside the purging transaction: an unarchive that raced the timer wins.
            days = await retention_days_for(uow, case.org_id, case.project_id)
            deadline, _reason = purge_deadline(case, days)
            if deadline is None or deadline > _parse(data.as_of):
                return PurgeResult("not-eligible")
            counts = {}
            for name, table in (("attachments", attachments), ("watchers", watchers), ("timeline", timeline_cells)):
                result = await uow.execute(sa.delete(table).where(table.c.case_id == case.id))
                counts[name] = result.rowcount
            await uow.execute(
                sa.insert(case_purges).values(
                    id=str(uuid.uuid4()),
                    org_id=case.org_id,
                    case_id=case.id,
                    case_key=case.key,
                    project_id=case.project_id,
                    closed_at=case.closed_at,
                    archived_at=case.archived_at,
                    retention_days=days,
                    counts=counts,
                    workflow_id=data.workflow_id,
                    purged_at=utcnow(),
                )
            )
            case.record_purged(days, counts)
            await uow.session.delete(case)
            await uow.commit()
        counts["blobs"] = await self._delete_blobs(prefix)
        return PurgeResult("purged", counts)

    @activity.defn
    async def purge_cases(self, data: PurgeBatchInput) -> RetentionBatchResult:
        """Purge the due cases of a batch in one transaction (multi-row deletes), then their blobs. Idempotent:
        a retry finds the committed ones in `case_purges` and only finishes their blobs."""
        activity.heartbeat()
        async with self.ctx.uow(data.tenant) as uow:
            batch = await purge_due_cases(uow, data.case_ids, _parse(data.as_of), data.workflow_id)
            if batch.purged:
                await uow.commit()
        totals: dict[str, int] = {}
        for counts in batch.purged.values():
            for name, n in counts.items():
                totals[name] = totals.get(name, 0) + n
        totals["blobs"] = 0
        for prefix in batch.blob_prefixes:
            activity.heartbeat()
            totals["blobs"] += await self._delete_blobs(prefix)
        return RetentionBatchResult(list(batch.purged), batch.already_purged, batch.not_eligible, totals)

    @activity.defn
    async def sweep_retention(self, data: RetentionSweepPage) -> RetentionSweepStep:
        """One step of the retention sweep: every closed, archived case under a policy after `data.after`, up to
        `due_limit` due ones. A case not yet due gets its retention workflow unless it has one running (so
        retention does not depend on every `case.archived` event having reached retention-scheduling); a due
        case is returned for a batch purge instead of costing a workflow of its own."""
        if self.retention is None:
            raise RuntimeError("the retention sweep needs the caseworker's Temporal client")
        step = RetentionSweepStep()
        as_of = _parse(data.as_of)
        rp = retention_policies.c
        has_policy = (
            sa.exists()
            .where(rp.org_id == cases.c.org_id, sa.or_(rp.project_id == cases.c.project_id, rp.project_id.is_(None)))
            .correlate(cases)
        )
        limit = asyncio.Semaphore(SWEEP_CONCURRENCY)

        async def ensure(org_id: str, case_id: str) -> None:
            assert self.retention is not None
            async with limit:
                if await self.retention.ensure_retention(data.tenant, org_id, case_id):
                    step.started.append(case_id)

        after = data.after
        while step.examined < data.max_examined and len(step.due) < data.due_limit:
            async with self.ctx.uow(data.tenant, read_only=True) as uow:
                page = (
                    await uow.execute(
                        sa.select(
                            cases.c.id, cases.c.org_id, cases.c.project_id, cases.c.closed_at, cases.c.archived_at
                        )
                        .where(
                            cases.c.status == Status.CLOSED.value,
                            cases.c.closed_at.is_not(None),
                            cases.c.archived_at.is_not(None),
                            cases.c.id > after,
                            has_policy,
                        )
                        .order_by(cases.c.id)
                        .limit(min(SWEEP_PAGE, data.due_limit - len(step.due)))
                    )
                ).all()
                policies = await RetentionPolicies.load(uow, {row.org_id for row in page})
            if not page:
                return step  # next_after None: the tenant is done
            waiting = []
            for row in page:
                days = policies.days(row.org_id, row.project_id)
                if days is not None and due_at(row.closed_at, row.archived_at, days) <= as_of:
                    step.due.append(row.id)
                else:
                    waiting.append(row)
            await asyncio.gather(*(ensure(row.org_id, row.id) for row in waiting))
            step.examined += len(page)
            after = page[-1].id
            activity.heartbeat(after)
        step.next_after = after
        return step

    async def _delete_blobs(self, prefix: str) -> int:
        removed = 0
        for blob in await self.blobs.list(prefix):
            removed += await self.blobs.delete(blob.key)
        return removed

    def all(self) -> list:  # type: ignore[type-arg]
        return [
            self.verify_attachment,
            self.make_available,
            self.expire_attachment,
            self.remove_attachment,
            self.sweep_attachments,
            self.retention_deadline,
            self.purge_case,
            self.purge_cases,
            self.sweep_retention,
        ]
