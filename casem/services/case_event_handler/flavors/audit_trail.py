"""audit-trail: an append-only log of who changed what, queryable per case and per org."""

from __future__ import annotations

from typing import ClassVar

import sqlalchemy as sa

from casem.adapters.storage.tables import audit_log
from casem.adapters.storage.unit_of_work import UnitOfWork
from casem.services.case_event_handler.framework import Event, HandlerServices, flavor


@flavor
class AuditTrail:
    name: ClassVar[str] = "audit-trail"
    handles: ClassVar[frozenset[str]] = frozenset()  # every event is audited

    async def apply(self, event: Event, uow: UnitOfWork, services: HandlerServices) -> None:
        await uow.execute(
            sa.insert(audit_log).values(
                event_id=event.id,
                org_id=event.org_id,
                case_id=event.case_id,
                subject=event.subject,
                event_type=event.type,
                actor_id=event.actor_id,
                time=event.time,
                changes=event.data.get("changes") or event.data,
            )
        )
