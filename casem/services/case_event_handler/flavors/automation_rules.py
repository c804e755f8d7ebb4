"""automation-rules: runs the project's enabled automation rules that a case event fires
(casem/app/automation/engine.py), acting as the rule through the same use cases as the API."""

from __future__ import annotations

from typing import ClassVar

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.automation import engine
from casem.domain.automation import TRIGGER_EVENTS
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor


@flavor
class AutomationRules:
    name: ClassVar[str] = "automation-rules"
    handles: ClassVar[frozenset[str]] = TRIGGER_EVENTS

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        await engine.run_rules(uow, event)
