"""sla-tracking: per-priority targets for time to acknowledge and to close (casem/app/automation/sla.py).

The flavor keeps each case's SLA clock in step with its events and runs the breach scheduler beside its
consumer; the rules and the clock's storage are the application layer's.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.automation import sla
from casem.app.automation.scheduler import run_scheduler
from casem.app.context import AppContext
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor


@flavor
class SlaTracking:
    name: ClassVar[str] = "sla-tracking"
    handles: ClassVar[frozenset[str]] = sla.TRACKED_EVENTS

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        await sla.track(uow, event)

    async def background(self, context: AppContext, stop: asyncio.Event, **options: Any) -> None:
        """The breach scheduler the flavor's service runs beside its consumer."""
        await run_scheduler(sla.tick, context, stop, **options)
