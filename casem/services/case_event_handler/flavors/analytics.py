"""analytics: keeps the case_metrics projection (casem/app/analytics/service.py) in step with case events."""

from __future__ import annotations

from typing import ClassVar

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.analytics import service as analytics
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor


@flavor
class Analytics:
    name: ClassVar[str] = "analytics"
    handles: ClassVar[frozenset[str]] = analytics.HANDLED_EVENTS

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        await analytics.record(uow, event)
