"""duplicate-detection: suggests (and with a project's auto_merge, merges) look-alike cases as they are
created (casem/app/automation/duplicates.py)."""

from __future__ import annotations

from typing import ClassVar

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.app.automation import duplicates
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor


@flavor
class DuplicateDetection:
    name: ClassVar[str] = "duplicate-detection"
    handles: ClassVar[frozenset[str]] = frozenset({"case.created"})
    uses: ClassVar[tuple[str, ...]] = ("caseworker",)  # optional: only projects with auto_merge need it

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        await duplicates.detect(uow, event, services.extras.get("caseworker"), self.name)
