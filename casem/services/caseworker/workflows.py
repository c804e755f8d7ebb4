"""The caseworker's workflows: thin and deterministic, every side effect in an activity.

Timers use the workflow clock (`workflow.now()`, `wait_condition(timeout=...)`), which the
time-skipping test server can fast-forward: a 90-day retention is tested in seconds.
"""

from __future__ import annotations

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
        PendingMergeReport,
        PendingMergeSweepInput,
        PendingMergeTenantInput,
        PurgeResult,
        RetentionSweepInput,
        StepResult,
        attachment_workflow_id,
        retention_workflow_id,
    )
    from casem.domain.merges import MergeStatus
    from casem.services.caseworker.activities import (
        CaseworkerActivities,
        ExpireInput,
        PurgeInput,
        RemoveInput,
        RetentionSweepReport,
        SweepInput,
        SweepReport,
    )
    from casem.services.caseworker.auto_close import AutoCloseActivities
    from casem.services.caseworker.merges import MergeActivities, MergeFinish, MergeStep
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


@workflow.defn(name=contracts.RETENTION_SWEEP)
class RetentionSweepWorkflow:
    """Run by the retention-sweep schedule: every closed, archived case gets its retention workflow."""

    @workflow.run
    async def run(self, data: RetentionSweepInput) -> list[RetentionSweepReport]:
        return [
            await workflow.execute_activity_method(CaseworkerActivities.sweep_retention, tenant, **SWEEP)
            for tenant in data.tenants
        ]


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
    RetentionSweepWorkflow,
    CaseMergeWorkflow,
    AutoCloseSweepWorkflow,
    PendingMergeSweepWorkflow,
]

__all__ = ["TASK_QUEUE", "WORKFLOWS", "attachment_workflow_id", "retention_workflow_id"]  # re-exported for the worker
