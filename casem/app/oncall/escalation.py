"""The use cases of a page's escalation, as the caseworker's activities call them: what the policy is, who a step
reaches (once, recorded), and each notification (claimed by its idempotency key, sent, its outcome recorded).

Every use case re-reads the page first: an acknowledged or resolved page is never escalated or notified further,
whether or not its workflow has heard the signal yet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import sqlalchemy as sa

from casem.adapters.secrets import secret_box_from_env
from casem.adapters.storage.tables import oncall_notifications, oncall_page_steps, oncall_round_robin
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.context import AppContext
from casem.app.oncall import records
from casem.app.oncall.delivery import DeliveryError, Notifier, Outgoing
from casem.app.oncall.directory import Directory
from casem.app.oncall.pages import resolve_page
from casem.app.oncall.policies import step_responders
from casem.domain.errors import NotFound
from casem.domain.events import utcnow
from casem.domain.oncall import (
    EMAIL,
    PUSH,
    ROUND_ROBIN,
    TRIGGERED,
    Page,
    plan_notifications,
)
from casem.domain.oncall import notification_key as key_of
from casem.topology.tenants import CASE_MANAGEMENT

SENDING, SENT, FAILED = "sending", "sent", "failed"


@dataclass
class StepInfo:
    index: int
    step_id: str | None
    escalate_after_seconds: int


@dataclass
class EscalationPlan:
    status: str  # the page's status: only a triggered page escalates
    steps: list[StepInfo] = field(default_factory=list)
    retries: int = 0
    resolve_at_end: bool = False


@dataclass
class NotificationTask:
    key: str
    user_id: str
    medium: str
    delay_minutes: int
    round: int
    step_index: int
    rule_id: str | None = None
    channel_id: str | None = None


@dataclass
class StepPlan:
    status: str
    user_ids: list[str] = field(default_factory=list)
    notifications: list[NotificationTask] = field(default_factory=list)
    replayed: bool = False  # the step had been reached before (a retried activity): read back, not recomputed


@dataclass
class NotifyResult:
    key: str
    outcome: str  # sent | already-sent | skipped (the page is no longer open) | failed
    provider_ref: str | None = None
    reconciled: bool = False  # an earlier attempt had gone out: found, not resent
    page_status: str = TRIGGERED


async def plan_escalation(ctx: AppContext, tenant: str, page_id: str) -> EscalationPlan:
    async with ctx.uow(tenant, read_only=True) as uow:
        page = await records.load_page(uow, None, page_id)
        if page.status != TRIGGERED:
            return EscalationPlan(page.status)
        if page.policy_id is None:
            if page.team_id is not None:  # the team's matching routing rule only posts messages: nobody to page
                return EscalationPlan(page.status)
            return EscalationPlan(page.status, [StepInfo(0, None, 0)])  # a user or a schedule: one step
        try:
            policy = await records.load_policy(uow, page.org_id, page.policy_id)
        except NotFound:
            return EscalationPlan(page.status)  # deleted since the page was routed: nobody left to page
        return EscalationPlan(
            page.status,
            [StepInfo(i, s.id, s.escalate_after_seconds) for i, s in enumerate(policy.steps)],
            policy.retries,
            policy.resolve_page_on_policy_end,
        )


async def _round_robin(uow: UnitOfWork, policy_id: str, step_id: str, count: int) -> int:
    row = (
        await uow.execute(
            sa.select(oncall_round_robin.c.next_index)
            .where(oncall_round_robin.c.policy_id == policy_id, oncall_round_robin.c.step_id == step_id)
            .with_for_update()
        )
    ).first()
    index = row.next_index if row is not None else 0
    if row is None:
        await uow.execute(sa.insert(oncall_round_robin).values(policy_id=policy_id, step_id=step_id, next_index=1))
    else:
        await uow.execute(
            sa.update(oncall_round_robin)
            .where(oncall_round_robin.c.policy_id == policy_id, oncall_round_robin.c.step_id == step_id)
            .values(next_index=index + 1)
        )
    return index % count


async def _targets(
    uow: UnitOfWork, directory: Directory, page: Page, index: int, at: datetime
) -> tuple[str | None, list[str]]:
    if page.policy_id is None:
        if page.target_type == "user_id":
            people = await directory.users([page.target_id])
            person = people.get(page.target_id)
            return None, [person.id] if person is not None and not person.disabled else []
        schedule = await records.load_schedule(uow, page.org_id, page.target_id)
        user = schedule.on_call_at(at)
        return None, await _enabled(directory, [user] if user else [])
    policy = await records.load_policy(uow, page.org_id, page.policy_id)
    step = policy.steps[index]
    users = await step_responders(uow, directory, page.org_id, step, at)
    if step.assignment == ROUND_ROBIN and len(users) > 1:
        users = [users[await _round_robin(uow, policy.id, step.id, len(users))]]
    return step.id, users


async def _enabled(directory: Directory, ids: list[str]) -> list[str]:
    people = await directory.users(ids)
    return [u for u in ids if u in people and not people[u].disabled]


async def reach_step(ctx: AppContext, tenant: str, page_id: str, round_: int, index: int, at: datetime) -> StepPlan:
    """Who the step reaches at `at` (resolved once: a retry reads the recorded answer back), and how each of them
    is notified."""
    async with ctx.uow(tenant) as uow, ctx.uow(CASE_MANAGEMENT, read_only=True) as people:
        page = await records.load_page(uow, None, page_id, lock=True)
        if page.status != TRIGGERED:
            return StepPlan(page.status)
        directory = Directory(people, page.org_id)
        row = (
            await uow.execute(
                sa.select(oncall_page_steps.c.user_ids).where(
                    oncall_page_steps.c.page_id == page.id,
                    oncall_page_steps.c.round == round_,
                    oncall_page_steps.c.step_index == index,
                )
            )
        ).first()
        replayed = row is not None
        if row is not None:
            user_ids = list(row.user_ids)
        else:
            step_id, user_ids = await _targets(uow, directory, page, index, at)
            await uow.execute(
                sa.insert(oncall_page_steps).values(
                    page_id=page.id,
                    round=round_,
                    step_index=index,
                    org_id=page.org_id,
                    user_ids=user_ids,
                    resolved_at=utcnow(),
                )
            )
            page.record_step(round_, index, step_id, user_ids)
            await uow.commit()
        rules = await records.load_rules(uow, page.org_id, user_ids)
        channels = {c.id: c for c in await records.load_channels(uow, page.org_id, user_ids)}
    tasks = []
    for user_id in user_ids:
        mine = [r for r in rules if r.user_id == user_id]
        for planned in plan_notifications(user_id, page.urgency, mine, channels):
            tasks.append(
                NotificationTask(
                    key=key_of(page.id, round_, index, planned),
                    user_id=user_id,
                    medium=planned.medium,
                    delay_minutes=planned.delay_minutes,
                    round=round_,
                    step_index=index,
                    rule_id=planned.rule_id,
                    channel_id=planned.channel_id,
                )
            )
    return StepPlan(TRIGGERED, user_ids, tasks, replayed)


def _message(page: Page, round_: int) -> tuple[str, str]:
    again = f" (reminder {round_})" if round_ else ""
    subject = f"[casem page, {page.urgency} urgency] {page.key}: {page.title}{again}"
    text = f"casem page {page.key}: {page.title}. Urgency {page.urgency}.{again}"
    if page.description:
        text += f"\n\n{page.description}"
    return subject, text


async def _outgoing(uow: UnitOfWork, directory: Directory, page: Page, task: NotificationTask) -> Outgoing | None:
    """What to send and where; None when the destination is gone (the channel was deleted, the user disabled)."""
    subject, text = _message(page, task.round)
    person = (await directory.users([task.user_id])).get(task.user_id)
    if person is None or person.disabled:
        return None
    if task.channel_id is None:  # no rule for this urgency: the account's email address
        return Outgoing(task.key, EMAIL, person.email, subject, text)
    try:
        channel = await records.load_channel(uow, page.org_id, task.user_id, task.channel_id)
    except NotFound:
        return None
    if channel.kind == EMAIL:
        return Outgoing(task.key, EMAIL, channel.config["address"], subject, text)
    if channel.kind == PUSH:
        payload = {
            "page_id": page.id,
            "page_key": page.key,
            "title": page.title,
            "urgency": page.urgency,
            "user_id": task.user_id,
            "application_name": channel.config["application_name"],
            "device_name": channel.config["device_name"],
            "idempotency_key": task.key,
        }
        secret = secret_box_from_env().open(channel.secret) if channel.secret else ""
        return Outgoing(task.key, PUSH, channel.config["url"], subject, text, secret, payload)
    return Outgoing(task.key, task.medium, channel.config["number"], subject, text)


def _masked(outgoing: Outgoing | None) -> str:
    """Where it went, as stored on the record (a webhook URL without its query, where secrets tend to hide)."""
    if outgoing is None:
        return "(gone)"
    if outgoing.medium == PUSH:
        return outgoing.destination.split("?")[0][:255]
    return outgoing.destination[:255]


async def notify(
    ctx: AppContext, notifier: Notifier, tenant: str, page_id: str, task: NotificationTask
) -> NotifyResult:
    """One notification, once: claimed by its key (a sent key is never sent again), sent, and its outcome recorded
    on the notification and on the page's timeline. An attempt whose outcome was lost (the worker died after
    sending) is first looked up at the provider, and otherwise resent with the same key."""
    async with ctx.uow(tenant) as uow, ctx.uow(CASE_MANAGEMENT, read_only=True) as people:
        page = await records.load_page(uow, None, page_id)
        if page.status != TRIGGERED:
            return NotifyResult(task.key, "skipped", page_status=page.status)
        row = (
            await uow.execute(sa.select(oncall_notifications).where(oncall_notifications.c.idempotency_key == task.key))
        ).first()
        if row is not None and row.status in (SENT, FAILED):
            return NotifyResult(task.key, "already-sent" if row.status == SENT else FAILED, row.provider_ref)
        outgoing = await _outgoing(uow, Directory(people, page.org_id), page, task)
        lost_attempt = row.attempted_at if row is not None else None
        now = datetime.now(UTC)
        if row is None:
            await uow.execute(
                sa.insert(oncall_notifications).values(
                    id=str(uuid.uuid4()),
                    org_id=page.org_id,
                    page_id=page.id,
                    idempotency_key=task.key,
                    user_id=task.user_id,
                    channel_id=task.channel_id,
                    medium=task.medium,
                    destination=_masked(outgoing),
                    round=task.round,
                    step_index=task.step_index,
                    status=SENDING,
                    attempts=1,
                    created_at=now,
                    attempted_at=now,
                )
            )
        else:
            await uow.execute(
                sa.update(oncall_notifications)
                .where(oncall_notifications.c.idempotency_key == task.key)
                .values(attempts=row.attempts + 1, attempted_at=now)
            )
        if outgoing is None:
            return await _finish(uow, page, task, FAILED, None, "the destination no longer exists", outgoing)
        await uow.commit()
    reconciled = False
    provider_ref = None
    if lost_attempt is not None:
        provider_ref = await notifier.already_sent(outgoing, lost_attempt)
        reconciled = provider_ref is not None
    if provider_ref is None:
        try:
            provider_ref = await notifier.send(outgoing)
        except DeliveryError as exc:
            if exc.transient:
                await _note(ctx, tenant, task.key, exc.detail)
                raise
            async with ctx.uow(tenant) as uow:
                page = await records.load_page(uow, None, page_id)
                return await _finish(uow, page, task, FAILED, None, exc.detail, outgoing)
    async with ctx.uow(tenant) as uow:
        page = await records.load_page(uow, None, page_id)
        result = await _finish(uow, page, task, SENT, provider_ref, None, outgoing)
    result.reconciled = reconciled
    return result


async def _note(ctx: AppContext, tenant: str, key: str, detail: str) -> None:
    async with ctx.uow(tenant) as uow:
        await uow.execute(
            sa.update(oncall_notifications).where(oncall_notifications.c.idempotency_key == key).values(detail=detail)
        )
        await uow.commit()


async def _finish(
    uow: UnitOfWork,
    page: Page,
    task: NotificationTask,
    status: str,
    provider_ref: str | None,
    detail: str | None,
    outgoing: Outgoing | None,
) -> NotifyResult:
    values: dict[str, object] = {"status": status, "provider_ref": provider_ref, "detail": detail}
    if status == SENT:
        values["sent_at"] = utcnow()
    await uow.execute(
        sa.update(oncall_notifications).where(oncall_notifications.c.idempotency_key == task.key).values(**values)
    )
    page.record_notified(user_id=task.user_id, medium=task.medium, outcome=status, key=task.key, detail=detail)
    await uow.commit()
    return NotifyResult(task.key, status, provider_ref)


async def end_of_policy(ctx: AppContext, tenant: str, page_id: str) -> str:
    """The policy ran out and it resolves its pages then: resolve (nothing if someone acknowledged or resolved)."""
    async with ctx.uow(tenant) as uow:
        page, changed = await resolve_page(uow, None, None, page_id, reason="policy end")
        if changed:
            await uow.commit()
    return page.status
