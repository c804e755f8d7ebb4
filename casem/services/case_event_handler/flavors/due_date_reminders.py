"""due-date-reminders: keeps each case's pending reminders in step with its due date, and fires them on time.

The rules live in casem/app/automation/reminders.py; this flavor calls them for every event that can
change whether or when a case is due, and runs their scheduler beside its consumer.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.automation import reminders
from casem.app.automation.scheduler import run_scheduler
from casem.app.context import AppContext
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor


@flavor
class DueDateReminders:
    name: ClassVar[str] = "due-date-reminders"
    handles: ClassVar[frozenset[str]] = reminders.SCHEDULING_EVENTS

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        if event.case_id is None:
            return
        await reminders.reschedule_case(uow, event.org_id, event.case_id, event.time)

    async def background(self, context: AppContext, stop: asyncio.Event, **options: Any) -> None:
        """The scheduler the flavor's service runs beside its consumer."""
        await run_scheduler(reminders.tick, context, stop, **options)
