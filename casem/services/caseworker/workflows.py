"""The caseworker's workflows: thin and deterministic, every side effect in an activity.

Timers use the workflow clock (`workflow.now()`, `wait_condition(timeout=...)`), which the
time-skipping test server can fast-forward: a 90-day retention is tested in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from casem.adapters.workflows import contracts
    from casem.adapters.workflows.contracts import (
        TASK_QUEUE,
        AttachmentRef,
        AutoCloseSweepInput,
        AutoCloseTenantInput,
        AutoCloseTenantReport,
        CaseRef,
        MergeRequest,
        MergeResult,
        PageOutcome,
        PageRef,
        PendingMergeReport,
        PendingMergeSweepInput,
        PendingMergeTenantInput,
        PurgeResult,
        RetentionBatch,
        RetentionBatchResult,
        RetentionSweepInput,
        StepResult,
        attachment_workflow_id,
        retention_batch_workflow_id,
        retention_workflow_id,
    )
    from casem.app.oncall.escalation import NotificationTask, NotifyResult
    from casem.domain.merges import MergeStatus
    from casem.domain.oncall import TRIGGERED
    from casem.services.caseworker.activities import (
        CaseworkerActivities,
        ExpireInput,
        PurgeBatchInput,
        PurgeInput,
        RemoveInput,
        RetentionSweepPage,
        RetentionSweepReport,
        SweepInput,
        SweepReport,
    )
    from casem.services.caseworker.auto_close import AutoCloseActivities
    from casem.services.caseworker.merges import MergeActivities, MergeFinish, MergeStep
    from casem.services.caseworker.paging import NotifyRequest, PageActivities, StepRequest
    from casem.services.caseworker.pending_merges import PendingMergeActivities

# Storage and databases fail transiently: retry with backoff, for long enough to ride out an outage.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=5)
)
STEP = {"start_to_close_timeout": timedelta(minutes=2), "retry_policy": RETRY}
# Verification reads the whole file (and scanners may read it again): longer, with heartbeats.
VERIFY = {**STEP, "start_to_close_timeout": timedelta(minutes=30), "heartbeat_timeout": timedelta(minutes=2)}
# Steps that heartbeat: a worker that dies mid-step is noticed within seconds and the step retried elsewhere
# (its transaction either committed, and the retry finds it done, or rolled back).
HEARTBEATING = {**STEP, "start_to_close_timeout": timedelta(minutes=10), "heartbeat_timeout": timedelta(seconds=10)}
SWEEP = {**STEP, "start_to_close_timeout": timedelta(hours=1), "heartbeat_timeout": timedelta(seconds=30)}


@workflow.defn(name=contracts.FILE_LIFECYCLE)
class FileLifecycleWorkflow:
    """uploaded -> verified -> available -> (retention) expired -> deleted; rejected files are deleted at once."""

    def __init__(self) -> None:
        self._deleted = False

    @workflow.signal(name=contracts.ATTACHMENT_DELETED)
    def deleted(self) -> None:
        """The user deleted the attachment: nothing left to wait for."""
        self._deleted = True

    @workflow.run
    async def run(self, ref: AttachmentRef) -> str:
        verification = await workflow.execute_activity_method(CaseworkerActivities.verify_attachment, ref, **VERIFY)
        if verification.state == "rejected":
            return await workflow.execute_activity_method(
                CaseworkerActivities.remove_attachment, RemoveInput(ref, verification.detail or "rejected"), **STEP
            )
        if verification.state not in ("verified", "available"):
            return verification.state
        state = await workflow.execute_activity_method(CaseworkerActivities.make_available, ref, **STEP)
        if state != "available":
            return state
        wait = datetime.fromisoformat(verification.expires_at) - workflow.now()
        if wait > timedelta(0):
            try:
                await workflow.wait_condition(lambda: self._deleted, timeout=wait)
                return "deleted"
            except TimeoutError:
                pass
        await workflow.execute_activity_method(
            CaseworkerActivities.expire_attachment, ExpireInput(ref, workflow.now().isoformat()), **STEP
        )
        return await workflow.execute_activity_method(
            CaseworkerActivities.remove_attachment, RemoveInput(ref, "retention expired"), **STEP
        )


@workflow.defn(name=contracts.ATTACHMENT_SWEEP)
class AttachmentSweepWorkflow:
    """Reconcile blobs and rows, and give every upload that never got a lifecycle workflow its own."""

    @workflow.run
    async def run(self, data: SweepInput) -> SweepReport:
        report = await workflow.execute_activity_method(
            CaseworkerActivities.sweep_attachments,
            data,
            start_to_close_timeout=timedelta(minutes=30),
            retry_policy=RETRY,
        )
        for ref in report.unstarted:
            # Already running: its lifecycle is under way.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await workflow.start_child_workflow(
                    FileLifecycleWorkflow.run,
                    ref,
                    id=attachment_workflow_id(ref.attachment_id),
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                )
        return report


@workflow.defn(name=contracts.CASE_RETENTION)
class CaseRetentionWorkflow:
    """Purge a closed, archived case once its retention has passed; unarchiving cancels it.

    Cancel with the `unarchived` signal (or by cancelling the workflow): the purge activity re-checks
    eligibility in its own transaction, so a signal that arrives late still cannot purge a live case.
    """

    def __init__(self) -> None:
        self._unarchived = False

    @workflow.signal(name=contracts.CASE_UNARCHIVED)
    def unarchived(self) -> None:
        self._unarchived = True

    @workflow.run
    async def run(self, ref: CaseRef) -> PurgeResult:
        check = await workflow.execute_activity_method(CaseworkerActivities.retention_deadline, ref, **HEARTBEATING)
        if check.deadline is None:
            return PurgeResult("not-eligible")
        wait = datetime.fromisoformat(check.deadline) - workflow.now()
        if wait > timedelta(0):
            try:
                await workflow.wait_condition(lambda: self._unarchived, timeout=wait)
                return PurgeResult("cancelled")
            except TimeoutError:
                pass
        return await workflow.execute_activity_method(
            CaseworkerActivities.purge_case,
            PurgeInput(ref, workflow.now().isoformat(), workflow.info().workflow_id),
            **HEARTBEATING,
        )


@workflow.defn(name=contracts.RETENTION_PURGE_BATCH)
class RetentionPurgeBatchWorkflow:
    """Purge a set of due cases, `per_activity` of them per activity (one transaction each, multi-row deletes).

    Started by the sweep with an id derived from the set (`retention_batch_workflow_id`); each case is purged
    once whatever runs it again (its audit row is checked in the purging transaction), so a re-run purges nothing.
    """

    @workflow.run
    async def run(self, batch: RetentionBatch) -> RetentionBatchResult:
        total = RetentionBatchResult()
        size = max(1, batch.per_activity)
        for start in range(0, len(batch.case_ids), size):
            part = await workflow.execute_activity_method(
                CaseworkerActivities.purge_cases,
                PurgeBatchInput(
                    batch.tenant, batch.case_ids[start : start + size], batch.as_of, workflow.info().workflow_id
                ),
                **HEARTBEATING,
            )
            total.purged += part.purged
            total.already_purged += part.already_purged
            total.not_eligible += part.not_eligible
            for name, n in part.counts.items():
                total.counts[name] = total.counts.get(name, 0) + n
        return total


@workflow.defn(name=contracts.RETENTION_SWEEP)
class RetentionSweepWorkflow:
    """Run by the retention-sweep schedule: every closed, archived case not yet due gets its retention workflow;
    the cases already due are purged in batches (a child workflow per batch), not one workflow each."""

    @workflow.run
    async def run(self, data: RetentionSweepInput) -> list[RetentionSweepReport]:
        as_of = workflow.now().isoformat()
        reports = []
        for tenant in data.tenants:
            report = RetentionSweepReport(tenant)
            after: str | None = ""
            while after is not None:
                page = RetentionSweepPage(tenant, as_of, after, due_limit=data.purge_per_workflow)
                step = await workflow.execute_activity_method(CaseworkerActivities.sweep_retention, page, **SWEEP)
                report.examined += step.examined
                report.started += step.started
                report.due += len(step.due)
                if step.due:
                    batch = RetentionBatch(tenant, step.due, as_of, per_activity=data.purge_per_activity)
                    report.purged += await self._purge(batch)
                after = step.next_after
            reports.append(report)
        return reports

    async def _purge(self, batch: RetentionBatch) -> int:
        try:
            result = await workflow.execute_child_workflow(
                RetentionPurgeBatchWorkflow.run, batch, id=retention_batch_workflow_id(batch.tenant, batch.case_ids)
            )
        except WorkflowAlreadyStartedError:  # the same batch is running (an earlier sweep): it purges them
            return 0
        return len(result.purged)


@workflow.defn(name=contracts.CASE_MERGE)
class CaseMergeWorkflow:
    """Merge duplicates into a primary, one duplicate (one transaction) at a time, in the order asked.

    Sequential on purpose: every step updates the primary (attributes, watchers), and the timeline
    copies then keep the request's order. The `progress` query answers what is done so far.
    """

    def __init__(self) -> None:
        self._steps: list[StepResult] = []

    @workflow.query
    def progress(self) -> list[StepResult]:
        return self._steps

    @workflow.run
    async def run(self, request: MergeRequest) -> MergeResult:
        plan = await workflow.execute_activity_method(MergeActivities.begin_merge, request, **STEP)
        if plan.status != MergeStatus.RUNNING:
            return MergeResult(request.merge_id, plan.status, [], plan.detail)
        status, detail = MergeStatus.COMPLETED.value, None
        for duplicate_id in request.duplicate_ids:
            try:
                step = await workflow.execute_activity_method(
                    MergeActivities.merge_duplicate, MergeStep(request, duplicate_id), **HEARTBEATING
                )
            except ActivityError as exc:  # only non-retryable errors get here: the primary is gone
                status, detail = MergeStatus.FAILED.value, str(exc.cause or exc)
                break
            self._steps.append(step)
        await workflow.execute_activity_method(
            MergeActivities.finish_merge, MergeFinish(request, status, detail), **STEP
        )
        return MergeResult(request.merge_id, status, self._steps, detail)


# Paging is urgent: a worker that dies mid-step is noticed within seconds, not minutes. The page's database steps
# are short; a notification is one outbound call (its adapters time out after 10 s), so an attempt that has not
# answered in 30 s is given up and retried (with its idempotency key); retries go on for a few minutes, then the
# escalation moves on without that notification rather than hold everyone else back.
PAGE_STEP = {
    "start_to_close_timeout": timedelta(seconds=10),
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10)),
}
NOTIFY = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=12,
    ),
}


@workflow.defn(name=contracts.PAGE_ESCALATION)
class PageEscalationWorkflow:
    """Walk a page's escalation policy: each step reaches its responders (resolved at that moment) and notifies
    each of them by their rules and delays, then waits `escalate_after_seconds` for an acknowledgement before the
    next step; the policy repeats `retries` times, then resolves the page if it says so.

    Signals: acknowledged and resolved stop it; escalate moves on to the next step at once. Every activity re-reads
    the page too, so an acknowledgement whose signal was lost still stops the escalation.
    """

    def __init__(self) -> None:
        self._stopped: str | None = None
        self._escalations = 0
        self._handled = 0
        self._sent: list[str] = []

    @workflow.signal(name=contracts.PAGE_ACKNOWLEDGED)
    def acknowledged(self) -> None:
        self._stopped = self._stopped or "acknowledged"

    @workflow.signal(name=contracts.PAGE_RESOLVED)
    def resolved(self) -> None:
        self._stopped = "resolved"

    @workflow.signal(name=contracts.PAGE_ESCALATE)
    def escalate(self) -> None:
        self._escalations += 1

    @workflow.query
    def sent(self) -> list[str]:
        """The idempotency keys of the notifications this run has sent."""
        return self._sent

    def _interrupted(self) -> bool:
        return self._stopped is not None or self._escalations > self._handled

    async def _wait_until(self, when: datetime) -> bool:
        """Wait for `when`; False when a stop or an escalation interrupts the wait."""
        remaining = when - workflow.now()
        if self._interrupted():
            return False
        if remaining <= timedelta(0):
            return True
        try:
            await workflow.wait_condition(self._interrupted, timeout=remaining)
            return False
        except TimeoutError:
            return True

    async def _notify(self, ref: PageRef, task: NotificationTask) -> NotifyResult | None:
        try:
            return await workflow.execute_activity_method(
                PageActivities.notify_responder, NotifyRequest(ref, task), **NOTIFY
            )
        except ActivityError:  # retries exhausted: recorded as attempted; the escalation goes on
            return None

    @workflow.run
    async def run(self, ref: PageRef) -> PageOutcome:
        plan = await workflow.execute_activity_method(PageActivities.plan_page_escalation, ref, **PAGE_STEP)
        if plan.status != TRIGGERED:
            return PageOutcome(ref.page_id, "not-open")
        reached = 0
        for round_ in range(plan.retries + 1):
            for step in plan.steps:
                if self._stopped:
                    return PageOutcome(ref.page_id, self._stopped, reached, len(self._sent))
                started = workflow.now()
                reach = StepRequest(ref, round_, step.index, started.isoformat())
                found = await workflow.execute_activity_method(PageActivities.reach_page_step, reach, **PAGE_STEP)
                reached += 1
                if found.status != TRIGGERED:
                    return PageOutcome(ref.page_id, found.status, reached, len(self._sent))
                delays = sorted({t.delay_minutes for t in found.notifications})
                for delay in delays:
                    if not await self._wait_until(started + timedelta(minutes=delay)):
                        break
                    due = [t for t in found.notifications if t.delay_minutes == delay]
                    results = await asyncio.gather(*(self._notify(ref, t) for t in due))
                    self._sent += [r.key for r in results if r is not None and r.outcome == "sent"]
                    closed = next((r.page_status for r in results if r is not None and r.outcome == "skipped"), None)
                    if closed is not None:  # acknowledged or resolved without a signal reaching us
                        return PageOutcome(ref.page_id, closed, reached, len(self._sent))
                await self._wait_until(started + timedelta(seconds=step.escalate_after_seconds))
                if self._stopped:
                    return PageOutcome(ref.page_id, self._stopped, reached, len(self._sent))
                if self._escalations > self._handled:
                    self._handled += 1  # one escalate signal moves on by one step
        if plan.resolve_at_end:
            status = await workflow.execute_activity_method(PageActivities.end_page_policy, ref, **PAGE_STEP)
            return PageOutcome(ref.page_id, status, reached, len(self._sent))
        return PageOutcome(ref.page_id, "exhausted", reached, len(self._sent))


@workflow.defn(name=contracts.AUTO_CLOSE_SWEEP)
class AutoCloseSweepWorkflow:
    """Run by the auto-close schedule: each tenant's inactive cases (projects with auto-close on) are closed."""

    @workflow.run
    async def run(self, data: AutoCloseSweepInput) -> list[AutoCloseTenantReport]:
        as_of = workflow.now().isoformat()
        return [
            await workflow.execute_activity_method(
                AutoCloseActivities.close_inactive_cases, AutoCloseTenantInput(tenant, as_of), **SWEEP
            )
            for tenant in data.tenants
        ]


@workflow.defn(name=contracts.PENDING_MERGE_SWEEP)
class PendingMergeSweepWorkflow:
    """Run by the pending-merge schedule: merges left PENDING get their workflow started, or fail."""

    @workflow.run
    async def run(self, data: PendingMergeSweepInput) -> list[PendingMergeReport]:
        return [
            await workflow.execute_activity_method(
                PendingMergeActivities.sweep_pending_merges,
                PendingMergeTenantInput(tenant, data.grace_seconds),
                **SWEEP,
            )
            for tenant in data.tenants
        ]


WORKFLOWS = [
    FileLifecycleWorkflow,
    AttachmentSweepWorkflow,
    CaseRetentionWorkflow,
    RetentionPurgeBatchWorkflow,
    RetentionSweepWorkflow,
    CaseMergeWorkflow,
    PageEscalationWorkflow,
    AutoCloseSweepWorkflow,
    PendingMergeSweepWorkflow,
]

__all__ = ["TASK_QUEUE", "WORKFLOWS", "attachment_workflow_id", "retention_workflow_id"]  # re-exported for the worker
