"""SLA tracking, for the sla-tracking flavor and the project settings API: per-priority targets for time
to acknowledge (first response by a person) and to close.

Targets are a project's settings (PUT /api/v2/casem/projects/{project_id}/sla). The flavor keeps one
`sla_clocks` row per case: started at creation, deadlines from the project's targets for the case's
priority (recomputed when the priority, the project or the targets change), stopped by a person's first
response and by closing. A breach is checked on every relevant event (as of the event's time, before the
event counts) and by `tick(now)` with an explicit clock; each kind is claimed once (`*_breached_at`, a
conditional update) and writes `case.sla_breached` (a timeline cell) and a `notification.requested` for
the assignee in the same transaction. Changes by automation rules do not count as a response.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from casem.adapters.storage.tables import automation_rules, cases, sla_clocks
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.automation.settings import project_settings
from casem.app.context import AppContext
from casem.app.events import Event
from casem.domain.automation import (
    ACKNOWLEDGE,
    ACKNOWLEDGING_EVENTS,
    BREACH_KINDS,
    SLA_BREACHED,
    record_sla_breach,
    sla_deadlines,
)
from casem.domain.cases import Case, Status
from casem.domain.errors import NotFound

BREACHED = SLA_BREACHED
TRACKED_EVENTS = frozenset(
    {"case.created", "case.priority_changed", "case.moved", "case.deleted"} | ACKNOWLEDGING_EVENTS
)
TICK_BATCH = 500
MET = {ACKNOWLEDGE: "acknowledged_at", "close": "closed_at"}


def _utc(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


async def _clock(uow: UnitOfWork, case_id: str) -> sa.Row | None:
    return (await uow.execute(sa.select(sla_clocks).where(sla_clocks.c.case_id == case_id))).first()


async def set_deadlines(uow: UnitOfWork, clock: sa.Row, priority: str, project_id: str) -> None:
    settings = await project_settings(uow, clock.org_id, project_id)
    deadlines = sla_deadlines(settings.sla, priority, clock.started_at)
    await uow.execute(
        sa.update(sla_clocks)
        .where(sla_clocks.c.case_id == clock.case_id)
        .values(
            priority=priority,
            project_id=project_id,
            acknowledge_due_at=deadlines[ACKNOWLEDGE],
            close_due_at=deadlines["close"],
        )
    )


async def retarget_project(uow: UnitOfWork, org_id: str, project_id: str) -> int:
    """After a project's targets change: every clock of the project gets the new deadlines."""
    clocks = (
        await uow.execute(
            sa.select(sla_clocks).where(sla_clocks.c.org_id == org_id, sla_clocks.c.project_id == project_id)
        )
    ).all()
    for clock in clocks:
        await set_deadlines(uow, clock, clock.priority, project_id)
    return len(clocks)


def _overdue(clock: sa.Row, kind: str, now: datetime) -> bool:
    due, met = getattr(clock, f"{kind}_due_at"), getattr(clock, MET[kind])
    if due is None or getattr(clock, f"{kind}_breached_at") is not None:
        return False
    if met is None and clock.closed_at is not None:
        return False  # closed (and so no longer waiting for anything) without this target being missed
    return met > due if met is not None else now >= due


async def check_breaches(uow: UnitOfWork, clock: sa.Row, now: datetime) -> list[str]:
    """Record each kind this clock has breached by `now` and not yet reported; returns the kinds."""
    reported = []
    for kind in BREACH_KINDS:
        if not _overdue(clock, kind, now):
            continue
        breached = f"{kind}_breached_at"
        claimed = await uow.execute(
            sa.update(sla_clocks)
            .where(sla_clocks.c.case_id == clock.case_id, getattr(sla_clocks.c, breached).is_(None))
            .values({breached: now})
        )
        if claimed.rowcount != 1:
            continue  # reported by a concurrent tick
        try:
            case = await uow.get(Case, clock.org_id, clock.case_id, resource="case", lock=True)
        except NotFound:
            continue
        due: datetime = getattr(clock, f"{kind}_due_at")
        record_sla_breach(case, kind=kind, priority=clock.priority, due=due, started=clock.started_at, now=now)
        reported.append(kind)
    return reported


async def tick(context: AppContext, now: datetime, tenants: Sequence[str] | None = None) -> int:
    """Report every breach that has happened by `now`; returns how many were reported."""
    now, reported = _utc(now), 0
    c = sla_clocks.c
    overdue = sa.or_(
        sa.and_(
            c.acknowledge_due_at <= now,
            c.acknowledge_breached_at.is_(None),
            c.acknowledged_at.is_(None),
            c.closed_at.is_(None),
        ),
        sa.and_(c.close_due_at <= now, c.close_breached_at.is_(None), c.closed_at.is_(None)),
    )
    for tenant in tenants or list(context.databases):
        while True:
            async with context.uow(tenant) as uow:
                query = sa.select(sla_clocks).where(overdue).order_by(c.case_id).limit(TICK_BATCH)
                if uow.db.dialect == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                clocks = (await uow.execute(query)).all()
                for clock in clocks:
                    reported += len(await check_breaches(uow, clock, now))
                await uow.commit()
            if len(clocks) < TICK_BATCH:
                break
    return reported


async def _is_person(uow: UnitOfWork, actor_id: str | None) -> bool:
    if actor_id is None:
        return False
    return not await uow.scalar(
        sa.select(sa.func.count()).select_from(automation_rules).where(automation_rules.c.id == actor_id)
    )


async def track(uow: UnitOfWork, event: Event) -> None:
    """Keep the case's SLA clock in step with one of its events (TRACKED_EVENTS)."""
    if event.case_id is None:
        return
    if event.type == "case.deleted":
        await uow.execute(sa.delete(sla_clocks).where(sla_clocks.c.case_id == event.case_id))
        return
    clock = await _clock(uow, event.case_id)
    if event.type == "case.created":
        if clock is None:
            await _start(uow, event)
        return
    if clock is None:
        return  # the case predates SLA tracking, or was deleted since
    # Breaches that happened before this event are reported as of its time, before it can stop a clock.
    await check_breaches(uow, clock, event.time)
    values: dict[str, Any] = {}
    if event.type in ACKNOWLEDGING_EVENTS and clock.acknowledged_at is None and await _is_person(uow, event.actor_id):
        values["acknowledged_at"] = event.time
    if event.type == "case.status_changed":
        closed = event.changed("status")["new"] == Status.CLOSED
        values["closed_at"] = event.time if closed else None
    if values:
        await uow.execute(sa.update(sla_clocks).where(sla_clocks.c.case_id == clock.case_id).values(**values))
    if event.type == "case.priority_changed":
        await set_deadlines(uow, clock, event.changed("priority")["new"], clock.project_id)
    if event.type == "case.moved":
        await set_deadlines(uow, clock, clock.priority, event.changed("project_id")["new"])


async def _start(uow: UnitOfWork, event: Event) -> None:
    assert event.case_id is not None
    exists = await uow.scalar(sa.select(sa.func.count()).select_from(cases).where(cases.c.id == event.case_id))
    if not exists:
        return  # deleted before this flavor saw it
    started = event.time
    settings = await project_settings(uow, event.org_id, event.data["project_id"])
    deadlines = sla_deadlines(settings.sla, event.data["priority"], started)
    await uow.execute(
        sa.insert(sla_clocks).values(
            case_id=event.case_id,
            org_id=event.org_id,
            project_id=event.data["project_id"],
            priority=event.data["priority"],
            started_at=started,
            closed_at=started if event.data["status"] == Status.CLOSED else None,
            acknowledge_due_at=deadlines[ACKNOWLEDGE],
            close_due_at=deadlines["close"],
        )
    )
