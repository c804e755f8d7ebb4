"""The activities of PageEscalationWorkflow: thin wrappers over the escalation use cases (casem/app/oncall).

Each is idempotent: the plan only reads; a step's responders are resolved once and recorded; a notification is
claimed by its idempotency key and never sent again once recorded as sent. A permanent delivery failure is recorded
and reported (the workflow goes on to the next person); a transient one is retried by Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from casem.adapters.workflows.contracts import PageRef
from casem.app.context import AppContext
from casem.app.oncall import escalation
from casem.app.oncall.delivery import DeliveryError, Notifier
from casem.app.oncall.escalation import EscalationPlan, NotificationTask, NotifyResult, StepPlan


@dataclass
class StepRequest:
    ref: PageRef
    round: int
    index: int
    at: str  # the workflow's clock (ISO 8601): the time-skipping test server moves it, not the wall clock


@dataclass
class NotifyRequest:
    ref: PageRef
    task: NotificationTask


class PageActivities:
    def __init__(self, ctx: AppContext, notifier: Notifier) -> None:
        self.ctx = ctx
        self.notifier = notifier

    @activity.defn
    async def plan_page_escalation(self, ref: PageRef) -> EscalationPlan:
        return await escalation.plan_escalation(self.ctx, ref.tenant, ref.page_id)

    @activity.defn
    async def reach_page_step(self, request: StepRequest) -> StepPlan:
        at = datetime.fromisoformat(request.at)
        return await escalation.reach_step(
            self.ctx, request.ref.tenant, request.ref.page_id, request.round, request.index, at
        )

    @activity.defn
    async def notify_responder(self, request: NotifyRequest) -> NotifyResult:
        try:
            return await escalation.notify(
                self.ctx, self.notifier, request.ref.tenant, request.ref.page_id, request.task
            )
        except DeliveryError as exc:  # transient (permanent ones come back as a "failed" result): retry later
            raise ApplicationError(exc.detail, type="DeliveryFailed") from exc

    @activity.defn
    async def end_page_policy(self, ref: PageRef) -> str:
        return await escalation.end_of_policy(self.ctx, ref.tenant, ref.page_id)

    def all(self) -> list:  # type: ignore[type-arg]
        return [self.plan_page_escalation, self.reach_page_step, self.notify_responder, self.end_page_policy]
