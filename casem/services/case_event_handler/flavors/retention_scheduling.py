"""retention-scheduling: starts each archived case's retention workflow and cancels it on unarchive.

The workflow (caseworker) purges the case once it has been closed and archived for longer than its
retention, and re-checks eligibility in its own transaction, so a lost unarchive signal can never
purge a live case. Starting is idempotent (same workflow id), so redelivered events are harmless.
"""

from __future__ import annotations

from typing import ClassVar

from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor


@flavor
class RetentionScheduling:
    name: ClassVar[str] = "retention-scheduling"
    handles: ClassVar[frozenset[str]] = frozenset({"case.archived", "case.unarchived"})
    requires: ClassVar[tuple[str, ...]] = ("caseworker",)

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        caseworker = services.extras.get("caseworker")
        if caseworker is None:
            raise RuntimeError("retention-scheduling needs the caseworker's Temporal (CASEM_TEMPORAL_ADDRESS)")
        assert event.case_id is not None
        if event.type == "case.archived":
            await caseworker.case_archived(event.tenant, event.org_id, event.case_id)
        else:
            await caseworker.case_unarchived(event.tenant, event.org_id, event.case_id)
