"""The auto-close sweep's activity: one tenant's inactive cases closed (casem/app/automation/auto_close.py)."""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from casem.adapters.workflows.contracts import AutoCloseTenantInput, AutoCloseTenantReport
from casem.app.automation.auto_close import close_inactive_cases
from casem.app.context import AppContext


class AutoCloseActivities:
    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    @activity.defn
    async def close_inactive_cases(self, data: AutoCloseTenantInput) -> AutoCloseTenantReport:
        activity.heartbeat()
        as_of = datetime.fromisoformat(data.as_of)
        report = await close_inactive_cases(self.ctx, data.tenant, as_of, progress=activity.heartbeat)
        activity.logger.info(
            "auto-close of %s: %d projects with auto-close, %d inactive cases, %d closed, %d spared",
            data.tenant,
            report.projects,
            report.candidates,
            report.closed,
            report.spared,
        )
        return AutoCloseTenantReport(report.tenant, report.projects, report.candidates, report.closed, report.spared)

    def all(self) -> list:  # type: ignore[type-arg]
        return [self.close_inactive_cases]
