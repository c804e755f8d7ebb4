"""The pending-merge sweep's activity: merges recorded but never started get their workflow, or fail saying why.

A merge is recorded PENDING in the request's transaction and its workflow started right after the commit; a
case-api that stops in between leaves it PENDING with no workflow. The sweep (a caseworker schedule) starts the
workflow of every merge PENDING for longer than a grace period: the start is idempotent (the workflow id is the
merge's), and the workflow's first step decides (RUNNING, or FAILED when the primary is gone). A merge whose
workflow cannot be started is marked FAILED with the reason instead of staying PENDING forever.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from temporalio import activity

from casem.adapters.workflows.contracts import MergeRequest, PendingMergeReport, PendingMergeTenantInput
from casem.app.context import AppContext
from casem.app.merges.service import mark_unstarted, pending_merges
from casem.domain.events import utcnow


class MergeStarter(Protocol):
    async def start_merge(self, request: MergeRequest) -> Any: ...


class PendingMergeActivities:
    def __init__(self, ctx: AppContext, starter: MergeStarter) -> None:
        self.ctx = ctx
        self.starter = starter

    @activity.defn
    async def sweep_pending_merges(self, data: PendingMergeTenantInput) -> PendingMergeReport:
        report = PendingMergeReport(data.tenant)
        async with self.ctx.uow(data.tenant, read_only=True) as uow:
            found = await pending_merges(uow, data.tenant, utcnow() - timedelta(seconds=data.grace_seconds))
        for request in found:
            activity.heartbeat(request.merge_id)
            try:
                await self.starter.start_merge(request)
                report.started.append(request.merge_id)
            except Exception as exc:  # the start itself failed: say so on the merge rather than wait forever
                async with self.ctx.uow(data.tenant) as uow:
                    await mark_unstarted(uow, request.merge_id, f"the merge workflow could not be started: {exc}")
                    await uow.commit()
                report.failed.append(request.merge_id)
        activity.logger.info(
            "pending merges of %s: %d started, %d failed", data.tenant, len(report.started), len(report.failed)
        )
        return report

    def all(self) -> list:  # type: ignore[type-arg]
        return [self.sweep_pending_merges]
