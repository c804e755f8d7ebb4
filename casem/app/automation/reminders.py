"""Due-date reminders, for the due-date-reminders flavor and the project settings API: reminders before
(the project's lead times) and at a case's due date.

The flavor keeps `case_reminders` in step with each case: on every event that can change whether or when a
case is due (created, due date changed, closed or reopened, archived, moved, deleted) it replaces the case's
pending reminders with those of its current due date. `tick(now)` fires the reminders whose moment has come:
it claims each (`fired_at`, a conditional update) and records `case.due_date_reminder` (a timeline cell,
and an inbox entry for watchers) and a `notification.requested` for the assignee, all in one transaction:
exactly once per reminder, however many schedulers run. `run_scheduler` calls `tick` on a real clock.

A case is due at 00:00 UTC of its due date (casem/domain/automation.py `due_instant`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from casem.adapters.storage.tables import case_reminders, cases
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.automation.settings import project_settings
from casem.app.context import AppContext
from casem.domain.automation import DUE_DATE_REMINDER, due_instant, record_due_date_reminder
from casem.domain.cases import Case, Status
from casem.domain.errors import NotFound

REMINDER = DUE_DATE_REMINDER
SCHEDULING_EVENTS = frozenset(
    {
        "case.created",
        "case.due_date_changed",
        "case.status_changed",
        "case.archived",
        "case.unarchived",
        "case.moved",
        "case.deleted",
    }
)
TICK_BATCH = 500


def _utc(now: datetime) -> datetime:
    return now if now.tzinfo else now.replace(tzinfo=UTC)


async def schedule(
    uow: UnitOfWork, org_id: str, case_id: str, due: date | None, lead_seconds: Iterable[int], now: datetime
) -> int:
    """Replace the case's pending reminders with those of `due` still ahead of `now`; returns how many."""
    await uow.execute(
        sa.delete(case_reminders).where(case_reminders.c.case_id == case_id, case_reminders.c.fired_at.is_(None))
    )
    if due is None:
        return 0
    fired = set(
        await uow.scalars(
            sa.select(case_reminders.c.lead_seconds).where(
                case_reminders.c.case_id == case_id, case_reminders.c.due_date == due
            )
        )
    )
    due_at, now = due_instant(due), _utc(now)
    scheduled = 0
    for lead in lead_seconds:
        fire_at = due_at - timedelta(seconds=lead)
        # A reminder already sent for this due date is not sent again; one whose moment passed is pointless,
        # except "due today", still worth saying on the day itself.
        if lead in fired or (fire_at < now and not (lead == 0 and due >= now.date())):
            continue
        await uow.execute(
            sa.insert(case_reminders).values(
                id=str(uuid.uuid4()),
                org_id=org_id,
                case_id=case_id,
                due_date=due,
                lead_seconds=lead,
                fire_at=fire_at,
                created_at=now,
            )
        )
        scheduled += 1
    return scheduled


async def reschedule_case(uow: UnitOfWork, org_id: str, case_id: str, now: datetime) -> int:
    """Reminders for the case as it is now: none once it is closed, archived or deleted."""
    row = (
        await uow.execute(
            sa.select(cases.c.project_id, cases.c.due_date, cases.c.status, cases.c.archived_at).where(
                cases.c.id == case_id, cases.c.org_id == org_id
            )
        )
    ).first()
    if row is None or row.status == Status.CLOSED or row.archived_at is not None:
        return await schedule(uow, org_id, case_id, None, (), now)
    settings = await project_settings(uow, org_id, row.project_id)
    return await schedule(uow, org_id, case_id, row.due_date, settings.lead_seconds, now)


async def reschedule_project(uow: UnitOfWork, org_id: str, project_id: str, now: datetime) -> int:
    """After a project's lead times change: every open case with a due date gets the new reminders."""
    ids = await uow.scalars(
        sa.select(cases.c.id).where(
            cases.c.org_id == org_id, cases.c.project_id == project_id, cases.c.due_date.is_not(None)
        )
    )
    return sum([await reschedule_case(uow, org_id, case_id, now) for case_id in ids])


async def _fire(uow: UnitOfWork, reminder: sa.Row, now: datetime) -> bool:
    claimed = await uow.execute(
        sa.update(case_reminders)
        .where(case_reminders.c.id == reminder.id, case_reminders.c.fired_at.is_(None))
        .values(fired_at=now)
    )
    if claimed.rowcount != 1:
        return False  # another scheduler fired it
    try:
        case = await uow.get(Case, reminder.org_id, reminder.case_id, resource="case", lock=True)
    except NotFound:
        return False
    if case.status == Status.CLOSED or case.archived or case.due_date != reminder.due_date:
        return False  # stale: the flavor has not caught up with a change yet; consumed without a word
    record_due_date_reminder(case, lead_seconds=reminder.lead_seconds, reminder_id=reminder.id, now=now)
    return True


async def tick(context: AppContext, now: datetime, tenants: Sequence[str] | None = None) -> int:
    """Fire every reminder due at `now` (an explicit clock, so tests and replays control time)."""
    now, fired = _utc(now), 0
    for tenant in tenants or list(context.databases):
        while True:
            async with context.uow(tenant) as uow:
                query = (
                    sa.select(case_reminders)
                    .where(case_reminders.c.fired_at.is_(None), case_reminders.c.fire_at <= now)
                    .order_by(case_reminders.c.fire_at, case_reminders.c.id)
                    .limit(TICK_BATCH)
                )
                if uow.db.dialect == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                due = (await uow.execute(query)).all()
                for reminder in due:
                    fired += await _fire(uow, reminder, now)
                await uow.commit()
            if len(due) < TICK_BATCH:
                break
    return fired
