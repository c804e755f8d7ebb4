"""Storing the on-call aggregates in the on-call tenant's tables (plain statements, no ORM mapping).

Every save hands the aggregate to the unit of work (`uow.track`), so the events it recorded go to the tenant's
outbox in the same transaction as the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import (
    oncall_channels,
    oncall_notification_rules,
    oncall_overrides,
    oncall_pages,
    oncall_policies,
    oncall_routing_rules,
    oncall_schedules,
)
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.ids import UUID_RE
from casem.domain.errors import NotFound
from casem.domain.events import utcnow
from casem.domain.oncall import (
    EscalationPolicy,
    EscalationStep,
    NotificationChannel,
    OnCallNotificationRule,
    Page,
    RoutingRule,
    TeamRouting,
)
from casem.domain.oncall_schedules import Layer, Override, Schedule


def _check_id(ident: str, resource: str, pointer: str | None = None) -> str:
    if not isinstance(ident, str) or not UUID_RE.match(ident):
        raise NotFound(resource, str(ident), pointer)  # an id that cannot exist is not found, as Datadog answers
    return ident.lower()


# -- schedules -----------------------------------------------------------------------------------------------


def _schedule(row: Any, overrides: Sequence[Override] = ()) -> Schedule:
    return Schedule(
        id=row.id,
        org_id=row.org_id,
        name=row.name,
        time_zone=row.time_zone,
        layers=[Layer.from_record(r) for r in row.layers],
        team_ids=list(row.team_ids),
        tags=list(row.tags),
        overrides=list(overrides),
        created_by_id=row.created_by_id,
        created_at=row.created_at,
        modified_at=row.modified_at,
    )


def _override(row: Any) -> Override:
    return Override(row.id, row.user_id, row.start_at, row.end_at, row.created_at)


async def load_overrides(uow: UnitOfWork, schedule_id: str) -> list[Override]:
    rows = await uow.execute(
        sa.select(oncall_overrides)
        .where(oncall_overrides.c.schedule_id == schedule_id)
        .order_by(oncall_overrides.c.created_at, oncall_overrides.c.id)
    )
    return [_override(row) for row in rows]


async def load_schedule(
    uow: UnitOfWork, org_id: str, schedule_id: str, *, pointer: str | None = None, overrides: bool = True
) -> Schedule:
    ident = _check_id(schedule_id, "schedule", pointer)
    row = (
        await uow.execute(
            sa.select(oncall_schedules).where(oncall_schedules.c.id == ident, oncall_schedules.c.org_id == org_id)
        )
    ).first()
    if row is None:
        raise NotFound("schedule", schedule_id, pointer)
    schedule = _schedule(row, await load_overrides(uow, ident) if overrides else ())
    uow.track(schedule)
    return schedule


async def load_schedules(uow: UnitOfWork, org_id: str, ids: Sequence[str] | None = None) -> list[Schedule]:
    query = sa.select(oncall_schedules).where(oncall_schedules.c.org_id == org_id)
    if ids is not None:
        query = query.where(oncall_schedules.c.id.in_([i.lower() for i in ids]))
    rows = (await uow.execute(query.order_by(oncall_schedules.c.name, oncall_schedules.c.id))).all()
    return [_schedule(row) for row in rows]


def _schedule_values(schedule: Schedule) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "time_zone": schedule.time_zone,
        "layers": [layer.to_record() for layer in schedule.layers],
        "team_ids": list(schedule.team_ids),
        "tags": list(schedule.tags),
        "modified_at": schedule.modified_at,
    }


async def insert_schedule(uow: UnitOfWork, schedule: Schedule) -> None:
    await uow.execute(
        sa.insert(oncall_schedules).values(
            id=schedule.id,
            org_id=schedule.org_id,
            created_by_id=schedule.created_by_id,
            created_at=schedule.created_at,
            **_schedule_values(schedule),
        )
    )
    uow.track(schedule)


async def update_schedule(uow: UnitOfWork, schedule: Schedule) -> None:
    await uow.execute(
        sa.update(oncall_schedules).where(oncall_schedules.c.id == schedule.id).values(**_schedule_values(schedule))
    )
    uow.track(schedule)


async def delete_schedule(uow: UnitOfWork, schedule: Schedule) -> None:
    await uow.execute(sa.delete(oncall_overrides).where(oncall_overrides.c.schedule_id == schedule.id))
    await uow.execute(sa.delete(oncall_schedules).where(oncall_schedules.c.id == schedule.id))
    uow.track(schedule)


async def insert_override(uow: UnitOfWork, schedule: Schedule, override: Override, actor_id: str | None) -> None:
    await uow.execute(
        sa.insert(oncall_overrides).values(
            id=override.id,
            org_id=schedule.org_id,
            schedule_id=schedule.id,
            user_id=override.user_id,
            start_at=override.start,
            end_at=override.end,
            created_by_id=actor_id,
            created_at=override.created_at,
        )
    )
    uow.track(schedule)


async def delete_override(uow: UnitOfWork, schedule: Schedule, override_id: str) -> None:
    await uow.execute(
        sa.delete(oncall_overrides).where(
            oncall_overrides.c.id == override_id, oncall_overrides.c.schedule_id == schedule.id
        )
    )
    uow.track(schedule)


# -- escalation policies -------------------------------------------------------------------------------------


def _policy(row: Any) -> EscalationPolicy:
    return EscalationPolicy(
        id=row.id,
        org_id=row.org_id,
        name=row.name,
        steps=[EscalationStep.from_record(s) for s in row.steps],
        retries=row.retries,
        resolve_page_on_policy_end=row.resolve_page_on_policy_end,
        team_ids=list(row.team_ids),
        created_by_id=row.created_by_id,
        created_at=row.created_at,
        modified_at=row.modified_at,
    )


async def load_policy(uow: UnitOfWork, org_id: str, policy_id: str, *, pointer: str | None = None) -> EscalationPolicy:
    ident = _check_id(policy_id, "escalation policy", pointer)
    row = (
        await uow.execute(
            sa.select(oncall_policies).where(oncall_policies.c.id == ident, oncall_policies.c.org_id == org_id)
        )
    ).first()
    if row is None:
        raise NotFound("escalation policy", policy_id, pointer)
    policy = _policy(row)
    uow.track(policy)
    return policy


async def load_policies(uow: UnitOfWork, org_id: str) -> list[EscalationPolicy]:
    rows = await uow.execute(
        sa.select(oncall_policies)
        .where(oncall_policies.c.org_id == org_id)
        .order_by(oncall_policies.c.created_at, oncall_policies.c.id)
    )
    return [_policy(row) for row in rows]


def _policy_values(policy: EscalationPolicy) -> dict[str, Any]:
    return {
        "name": policy.name,
        "retries": policy.retries,
        "resolve_page_on_policy_end": policy.resolve_page_on_policy_end,
        "steps": [s.to_record() for s in policy.steps],
        "team_ids": list(policy.team_ids),
        "modified_at": policy.modified_at,
    }


async def insert_policy(uow: UnitOfWork, policy: EscalationPolicy) -> None:
    await uow.execute(
        sa.insert(oncall_policies).values(
            id=policy.id,
            org_id=policy.org_id,
            created_by_id=policy.created_by_id,
            created_at=policy.created_at,
            **_policy_values(policy),
        )
    )
    uow.track(policy)


async def update_policy(uow: UnitOfWork, policy: EscalationPolicy) -> None:
    await uow.execute(
        sa.update(oncall_policies).where(oncall_policies.c.id == policy.id).values(**_policy_values(policy))
    )
    uow.track(policy)


async def delete_policy(uow: UnitOfWork, policy: EscalationPolicy) -> None:
    await uow.execute(sa.delete(oncall_policies).where(oncall_policies.c.id == policy.id))
    uow.track(policy)


# -- routing rules -------------------------------------------------------------------------------------------


async def load_routing(uow: UnitOfWork, org_id: str, team_id: str) -> TeamRouting:
    """The team's rules (none yet: an empty list)."""
    row = (
        await uow.execute(
            sa.select(oncall_routing_rules).where(
                oncall_routing_rules.c.team_id == team_id, oncall_routing_rules.c.org_id == org_id
            )
        )
    ).first()
    routing = TeamRouting(org_id=org_id, team_id=team_id)
    if row is not None:
        routing.rules = [RoutingRule.from_record(r) for r in row.rules]
        routing.modified_by_id, routing.modified_at = row.modified_by_id, row.modified_at
    uow.track(routing)
    return routing


async def load_all_routing(uow: UnitOfWork, org_id: str) -> list[TeamRouting]:
    rows = await uow.execute(sa.select(oncall_routing_rules).where(oncall_routing_rules.c.org_id == org_id))
    return [
        TeamRouting(org_id, row.team_id, [RoutingRule.from_record(r) for r in row.rules], row.modified_by_id)
        for row in rows
    ]


async def save_routing(uow: UnitOfWork, routing: TeamRouting) -> None:
    values = {
        "rules": [r.to_record() for r in routing.rules],
        "modified_by_id": routing.modified_by_id,
        "modified_at": routing.modified_at or utcnow(),
    }
    updated = await uow.execute(
        sa.update(oncall_routing_rules).where(oncall_routing_rules.c.team_id == routing.team_id).values(**values)
    )
    if not updated.rowcount:
        await uow.execute(
            sa.insert(oncall_routing_rules).values(team_id=routing.team_id, org_id=routing.org_id, **values)
        )
    uow.track(routing)


# -- notification channels and rules -------------------------------------------------------------------------


def _channel(row: Any) -> NotificationChannel:
    return NotificationChannel(
        id=row.id,
        org_id=row.org_id,
        user_id=row.user_id,
        kind=row.kind,
        config=dict(row.config),
        secret=row.secret,
        active=row.active,
        created_at=row.created_at,
    )


async def load_channels(uow: UnitOfWork, org_id: str, user_ids: Sequence[str]) -> list[NotificationChannel]:
    if not user_ids:
        return []
    rows = await uow.execute(
        sa.select(oncall_channels)
        .where(oncall_channels.c.org_id == org_id, oncall_channels.c.user_id.in_(list(user_ids)))
        .order_by(oncall_channels.c.created_at, oncall_channels.c.id)
    )
    return [_channel(row) for row in rows]


async def load_channel(
    uow: UnitOfWork, org_id: str, user_id: str, channel_id: str, *, pointer: str | None = None
) -> NotificationChannel:
    ident = _check_id(channel_id, "notification channel", pointer)
    row = (
        await uow.execute(
            sa.select(oncall_channels).where(
                oncall_channels.c.id == ident, oncall_channels.c.org_id == org_id, oncall_channels.c.user_id == user_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("notification channel", channel_id, pointer)
    channel = _channel(row)
    uow.track(channel)
    return channel


async def insert_channel(uow: UnitOfWork, channel: NotificationChannel) -> None:
    await uow.execute(
        sa.insert(oncall_channels).values(
            id=channel.id,
            org_id=channel.org_id,
            user_id=channel.user_id,
            kind=channel.kind,
            config=channel.config,
            secret=channel.secret,
            active=channel.active,
            created_at=channel.created_at,
        )
    )
    uow.track(channel)


async def delete_channel(uow: UnitOfWork, channel: NotificationChannel) -> None:
    await uow.execute(sa.delete(oncall_notification_rules).where(oncall_notification_rules.c.channel_id == channel.id))
    await uow.execute(sa.delete(oncall_channels).where(oncall_channels.c.id == channel.id))
    uow.track(channel)


def _rule(row: Any) -> OnCallNotificationRule:
    return OnCallNotificationRule(
        id=row.id,
        org_id=row.org_id,
        user_id=row.user_id,
        channel_id=row.channel_id,
        category=row.category,
        method=row.method,
        delay_minutes=row.delay_minutes,
        created_at=row.created_at,
        modified_at=row.modified_at,
    )


async def load_rules(uow: UnitOfWork, org_id: str, user_ids: Sequence[str]) -> list[OnCallNotificationRule]:
    if not user_ids:
        return []
    rows = await uow.execute(
        sa.select(oncall_notification_rules)
        .where(oncall_notification_rules.c.org_id == org_id, oncall_notification_rules.c.user_id.in_(list(user_ids)))
        .order_by(oncall_notification_rules.c.created_at, oncall_notification_rules.c.id)
    )
    return [_rule(row) for row in rows]


async def load_rule(uow: UnitOfWork, org_id: str, user_id: str, rule_id: str) -> OnCallNotificationRule:
    ident = _check_id(rule_id, "notification rule")
    row = (
        await uow.execute(
            sa.select(oncall_notification_rules).where(
                oncall_notification_rules.c.id == ident,
                oncall_notification_rules.c.org_id == org_id,
                oncall_notification_rules.c.user_id == user_id,
            )
        )
    ).first()
    if row is None:
        raise NotFound("notification rule", rule_id)
    rule = _rule(row)
    uow.track(rule)
    return rule


def _rule_values(rule: OnCallNotificationRule) -> dict[str, Any]:
    return {
        "channel_id": rule.channel_id,
        "category": rule.category,
        "method": rule.method,
        "delay_minutes": rule.delay_minutes,
        "modified_at": rule.modified_at,
    }


async def insert_rule(uow: UnitOfWork, rule: OnCallNotificationRule) -> None:
    await uow.execute(
        sa.insert(oncall_notification_rules).values(
            id=rule.id, org_id=rule.org_id, user_id=rule.user_id, created_at=rule.created_at, **_rule_values(rule)
        )
    )
    uow.track(rule)


async def update_rule(uow: UnitOfWork, rule: OnCallNotificationRule) -> None:
    await uow.execute(
        sa.update(oncall_notification_rules)
        .where(oncall_notification_rules.c.id == rule.id)
        .values(**_rule_values(rule))
    )
    uow.track(rule)


async def delete_rule(uow: UnitOfWork, rule: OnCallNotificationRule) -> None:
    await uow.execute(sa.delete(oncall_notification_rules).where(oncall_notification_rules.c.id == rule.id))
    uow.track(rule)


# -- pages ---------------------------------------------------------------------------------------------------

PAGE_FIELDS = (
    "key",
    "title",
    "description",
    "urgency",
    "tags",
    "target_type",
    "target_id",
    "team_id",
    "policy_id",
    "routing_rule_id",
    "status",
    "created_by_id",
    "created_at",
    "acknowledged_at",
    "acknowledged_by_id",
    "resolved_at",
    "resolved_by_id",
    "escalations",
    "source_tenant",
    "source_case_id",
    "source_case_key",
)


def _page(row: Any) -> Page:
    return Page(id=row.id, org_id=row.org_id, **{name: getattr(row, name) for name in PAGE_FIELDS})


async def load_page(
    uow: UnitOfWork, org_id: str | None, page_id: str, *, lock: bool = False, pointer: str | None = None
) -> Page:
    """A page of the org (org_id None: of whichever org, for the caseworker that names the page by id)."""
    ident = _check_id(page_id, "page", pointer)
    query = sa.select(oncall_pages).where(oncall_pages.c.id == ident)
    if org_id is not None:
        query = query.where(oncall_pages.c.org_id == org_id)
    if lock:
        query = query.with_for_update()
    row = (await uow.execute(query)).first()
    if row is None:
        raise NotFound("page", page_id, pointer)
    page = _page(row)
    uow.track(page)
    return page


async def find_page(uow: UnitOfWork, page_id: str) -> Page | None:
    row = (await uow.execute(sa.select(oncall_pages).where(oncall_pages.c.id == page_id))).first()
    return _page(row) if row is not None else None


async def insert_page(uow: UnitOfWork, page: Page) -> None:
    await uow.execute(
        sa.insert(oncall_pages).values(
            id=page.id, org_id=page.org_id, **{name: getattr(page, name) for name in PAGE_FIELDS}
        )
    )
    uow.track(page)


async def update_page(uow: UnitOfWork, page: Page) -> None:
    await uow.execute(
        sa.update(oncall_pages)
        .where(oncall_pages.c.id == page.id)
        .values(**{name: getattr(page, name) for name in PAGE_FIELDS if name not in ("key", "created_at")})
    )
    uow.track(page)
